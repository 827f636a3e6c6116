"""Golden questions: each article may list `questions:` it must answer, and must answer first.

`tier0 kb check` asks every golden question the way an employee would and fails when
another article (or none) comes first. For each failure it names the edit most likely
to have broken it: the newest version among the articles involved — the one that should
have come first and the one that did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from knowledge.articles import Article
from knowledge.index import SearchHit
from knowledge.versions import ArticleVersions, VersionError, VersionView

# A question and the hits retrieval returns for it, best first.
Retriever = Callable[[str], Sequence[SearchHit]]


@dataclass(frozen=True)
class GoldenFailure:
    article_id: str
    article_title: str
    question: str
    first: SearchHit | None  # what came first instead (None: nothing was found)
    rank: int | None  # where the article came (1-based), None when not in the results
    culprit: VersionView | None  # the newest edit among the articles involved

    def describe(self) -> str:
        if self.first is None:
            instead = "nothing was found"
        else:
            first = self.first
            instead = f"{first.article_id} ({first.title!r}, score {first.score:.2f})"
        where = f"ranked {self.rank}" if self.rank else "not in the results"
        line = (
            f"{self.article_id}: {self.question!r} → {instead} came first; "
            f"{self.article_id} {where}"
        )
        if self.culprit is not None:
            line += f"; most recent edit involved: {self.culprit.describe()}"
        return line

    def as_json(self) -> dict[str, Any]:
        return {
            "article": self.article_id,
            "question": self.question,
            "first": None
            if self.first is None
            else {
                "id": self.first.article_id,
                "title": self.first.title,
                "score": self.first.score,
            },
            "rank": self.rank,
            "culprit": None
            if self.culprit is None
            else {
                "article": self.culprit.article_id,
                "version": self.culprit.version,
                "change": self.culprit.change,
                "author": self.culprit.author,
                "at": self.culprit.created_at.isoformat(),
            },
        }


@dataclass
class GoldenReport:
    checked: int = 0
    failures: list[GoldenFailure] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def golden_questions(articles: Sequence[Article]) -> list[tuple[Article, str]]:
    """The questions of published articles (drafts and retired ones answer nothing)."""
    return [
        (article, question)
        for article in articles
        if article.searchable
        for question in article.questions
    ]


def check_golden_questions(
    articles: Sequence[Article],
    retrieve: Retriever,
    versions: ArticleVersions | None = None,
) -> GoldenReport:
    report = GoldenReport()
    for article, question in golden_questions(articles):
        report.checked += 1
        hits = list(retrieve(question))
        if hits and hits[0].article_id == article.id:
            continue
        rank = next(
            (position for position, hit in enumerate(hits, 1) if hit.article_id == article.id),
            None,
        )
        first = hits[0] if hits else None
        involved = [article.id] + ([first.article_id] if first else [])
        report.failures.append(
            GoldenFailure(
                article_id=article.id,
                article_title=article.title,
                question=question,
                first=first,
                rank=rank,
                culprit=_newest_edit(versions, involved) if versions else None,
            )
        )
    return report


def _newest_edit(versions: ArticleVersions, article_ids: Sequence[str]) -> VersionView | None:
    newest: VersionView | None = None
    for article_id in dict.fromkeys(article_ids):
        try:
            candidate = versions.version(article_id)
        except VersionError:
            continue  # not synced yet: no history to blame
        if newest is None or (candidate.created_at, candidate.version) > (
            newest.created_at,
            newest.version,
        ):
            newest = candidate
    return newest
