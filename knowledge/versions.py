"""The versioned article store: every version of every article, with who saved it and when.

The folder of Markdown files is the source of truth; `sync_articles` brings the store in
line with it. A version is recorded whenever anything in a file changes (body or front
matter), when an article is retired (by status or by removing its file) and when it
comes back. Versions are never updated or deleted.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from knowledge.articles import Article
from knowledge.records import ArticleVersion, VersionChange
from tickets.models import utc_now


class VersionError(LookupError):
    """An article or version the store does not have; the message says which."""


@dataclass(frozen=True)
class VersionView:
    article_id: str
    version: int
    change: str
    status: str
    title: str
    owner: str | None
    review_by: str | None
    path: str
    content: str
    content_hash: str
    author: str
    created_at: datetime

    def describe(self) -> str:
        """ "pto-policy v3 (changed by alice, 2026-11-23 14:02 UTC)"."""
        when = self.created_at.strftime("%Y-%m-%d %H:%M UTC")
        return f"{self.article_id} v{self.version} ({self.change} by {self.author}, {when})"


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def touched(self) -> bool:
        return bool(self.added or self.changed or self.retired or self.restored)

    def summary(self) -> str:
        parts = [
            f"{len(self.added)} added",
            f"{len(self.changed)} changed",
            f"{len(self.retired)} retired",
        ]
        if self.restored:
            parts.append(f"{len(self.restored)} restored")
        parts.append(f"{self.unchanged} unchanged")
        return ", ".join(parts)


def _view(row: ArticleVersion) -> VersionView:
    return VersionView(
        article_id=row.article_id,
        version=row.version,
        change=row.change,
        status=row.status,
        title=row.title,
        owner=row.owner,
        review_by=row.review_by,
        path=row.path,
        content=row.content,
        content_hash=row.content_hash,
        author=row.author,
        created_at=row.created_at,
    )


class ArticleVersions:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._session_factory = session_factory
        self._clock = clock

    # -- reading ------------------------------------------------------------------------

    def latest(self) -> list[VersionView]:
        """The newest version of every article the store knows, by id."""
        with self._session_factory.begin() as session:
            newest = (
                select(ArticleVersion.article_id, func.max(ArticleVersion.version).label("v"))
                .group_by(ArticleVersion.article_id)
                .subquery()
            )
            rows = session.scalars(
                select(ArticleVersion)
                .join(
                    newest,
                    (ArticleVersion.article_id == newest.c.article_id)
                    & (ArticleVersion.version == newest.c.v),
                )
                .order_by(ArticleVersion.article_id)
            ).all()
            return [_view(row) for row in rows]

    def history(self, article_id: str) -> list[VersionView]:
        """Every version of the article, oldest first; an unknown id is an error."""
        with self._session_factory.begin() as session:
            rows = session.scalars(
                select(ArticleVersion)
                .where(ArticleVersion.article_id == article_id)
                .order_by(ArticleVersion.version)
            ).all()
            if not rows:
                raise VersionError(f"no article {article_id!r} in the store (run `tier0 kb sync`)")
            return [_view(row) for row in rows]

    def version(self, article_id: str, number: int | None = None) -> VersionView:
        """One version of the article; the newest when no number is given."""
        versions = self.history(article_id)
        if number is None:
            return versions[-1]
        for candidate in versions:
            if candidate.version == number:
                return candidate
        raise VersionError(
            f"{article_id} has no version {number} (it has versions 1 to {versions[-1].version})"
        )

    def diff(self, article_id: str, old: int | None = None, new: int | None = None) -> str:
        """A unified diff between two versions: by default the one before the newest and the
        newest; with only `old`, that version against the newest."""
        versions = self.history(article_id)
        if old is None and new is None:
            if len(versions) < 2:
                raise VersionError(f"{article_id} has only one version: nothing to compare")
            before, after = versions[-2], versions[-1]
        else:
            before = self.version(article_id, old)
            after = self.version(article_id, new)
        return "".join(
            difflib.unified_diff(
                before.content.splitlines(keepends=True),
                after.content.splitlines(keepends=True),
                fromfile=f"{article_id} v{before.version}",
                tofile=f"{article_id} v{after.version}",
            )
        )

    # -- writing ------------------------------------------------------------------------

    def sync(
        self,
        articles: Sequence[Article],
        author: str,
        *,
        author_of: Callable[[Article], str | None] | None = None,
    ) -> SyncReport:
        """Record a version for every article that differs from its newest stored version,
        and retire every stored article whose file is gone. `author_of` may name who wrote
        a changed article (e.g. from git); `author` is who ran the sync, the fallback.
        One transaction: another sync running at the same moment makes this one fail
        rather than interleave."""
        try:
            with self._session_factory.begin() as session:
                return self._sync(session, articles, author, author_of)
        except IntegrityError as error:
            raise VersionError(
                "another `kb sync` recorded versions at the same moment; run it again"
            ) from error

    def _sync(
        self,
        session: Session,
        articles: Sequence[Article],
        author: str,
        author_of: Callable[[Article], str | None] | None,
    ) -> SyncReport:
        now = self._clock()
        report = SyncReport()
        newest = {
            row.article_id: row
            for row in session.scalars(
                select(ArticleVersion).order_by(ArticleVersion.article_id, ArticleVersion.version)
            )
        }  # later versions overwrite earlier ones: the newest of each article remains

        def record(article: Article, previous: ArticleVersion | None, change: str) -> None:
            session.add(
                ArticleVersion(
                    article_id=article.id,
                    version=(previous.version + 1) if previous else 1,
                    change=change,
                    status=article.status,
                    title=article.title,
                    owner=article.owner,
                    review_by=article.review_by,
                    path=str(article.path),
                    content=article.source,
                    content_hash=article.content_hash,
                    author=(author_of(article) if author_of else None) or author,
                    created_at=now,
                )
            )

        in_folder: set[str] = set()
        for article in articles:
            in_folder.add(article.id)
            previous = newest.get(article.id)
            if previous is None:
                record(article, None, VersionChange.ADDED)
                (report.retired if article.status == "retired" else report.added).append(article.id)
                continue
            if (
                previous.content_hash == article.content_hash
                and previous.path == str(article.path)
                and previous.status == article.status
            ):
                report.unchanged += 1
                continue
            if article.status == "retired" and previous.status != "retired":
                record(article, previous, VersionChange.RETIRED)
                report.retired.append(article.id)
            elif previous.status == "retired" and article.status != "retired":
                record(article, previous, VersionChange.RESTORED)
                report.restored.append(article.id)
            else:
                record(article, previous, VersionChange.CHANGED)
                report.changed.append(article.id)

        for article_id, previous in newest.items():
            if article_id in in_folder or previous.status == "retired":
                continue
            # The file is gone: the article is retired, its last text kept as it was.
            session.add(
                ArticleVersion(
                    article_id=article_id,
                    version=previous.version + 1,
                    change=VersionChange.RETIRED,
                    status="retired",
                    title=previous.title,
                    owner=previous.owner,
                    review_by=previous.review_by,
                    path=previous.path,
                    content=previous.content,
                    content_hash=previous.content_hash,
                    author=author,
                    created_at=now,
                )
            )
            report.retired.append(article_id)
        return report
