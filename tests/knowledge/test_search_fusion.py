"""The search fuses its candidates with array arithmetic; the hits are those of fusing
them one candidate at a time, as the index did before: same articles, same order (ties
included), same passages and scores, in every mode, fused either way, with edits and
retirements pending and after a reload."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from knowledge.articles import Article
from knowledge.index import (
    RRF_K,
    Fusion,
    KnowledgeIndex,
    RetrievalMode,
    SearchHit,
    best_passage,
    build_index,
)
from knowledge.lexical import K1, tokenize
from tests.nlu.fake_embedder import HashingEmbedder

PRODUCTS = ["vpn client", "printer", "laptop", "mailbox", "badge", "monitor", "wifi"]
PROBLEMS = ["keeps disconnecting", "is slow", "shows an error", "will not start"]
QUESTIONS = [
    "my vpn client keeps disconnecting, how do i fix it",
    "printer shows an error",
    "how do i reset my laptop",
    "badge",
    "wifi wifi wifi is slow",
    "mailbox will not start after the update",
    "something nobody wrote about",
]


@dataclass
class _OneCandidate:
    article_id: str
    segment: int
    row: int
    dense: float = 0.0
    lexical: float = 0.0
    dense_rank: int | None = None
    lexical_rank: int | None = None


def searched_one_candidate_at_a_time(
    index: KnowledgeIndex,
    query_vector: npt.NDArray[np.float32],
    limit: int,
    query_text: str | None,
    mode: RetrievalMode | None,
) -> list[SearchHit]:
    """The search as the index computed it before its fusion used arrays."""
    snapshot = index._snapshot
    if mode is None:
        mode = index.text_mode if query_text else RetrievalMode.DENSE
    terms = tokenize(query_text) if query_text and mode is not RetrievalMode.DENSE else []
    wanted = max(limit * 10, 50)
    candidates: dict[tuple[int, int], _OneCandidate] = {}
    segments = (snapshot.base, snapshot.delta)
    query = np.asarray(query_vector, dtype=np.float32).reshape(-1)
    extra = len(snapshot.retired_rows)

    def add(ranked: list[tuple[float, int, int]], dense: bool) -> None:
        ranked.sort(key=lambda item: -item[0])
        for rank, (score, number, row) in enumerate(ranked[:wanted]):
            candidate = candidates.get((number, row))
            if candidate is None:
                candidate = candidates[number, row] = _OneCandidate(
                    segments[number].article_id(row), number, row
                )
            if dense:
                candidate.dense, candidate.dense_rank = score, rank
            else:
                candidate.lexical, candidate.lexical_rank = score, rank

    if mode is not RetrievalMode.LEXICAL:
        ranked = []
        for number, segment in enumerate(segments):
            rows, scores = segment.dense_search(query, wanted + extra)
            for row, score in zip(rows.tolist(), scores.tolist(), strict=True):
                if not (number == 0 and row in snapshot.retired_rows):
                    ranked.append((score, number, row))
        add(ranked, dense=True)
    if terms:
        ceiling = sum(snapshot.stats.idf(term) for term in terms) * (K1 + 1.0)
        ranked = []
        for number, segment in enumerate(segments):
            rows, scores = segment.lexical.scores(terms, snapshot.stats, top=wanted + extra)
            for row, score in zip(rows.tolist(), scores.tolist(), strict=True):
                if not (number == 0 and row in snapshot.retired_rows):
                    ranked.append((score / ceiling if ceiling else 0.0, number, row))
        add(ranked, dense=False)
        if mode is RetrievalMode.HYBRID:
            for (number, row), candidate in candidates.items():
                if candidate.dense_rank is None:
                    candidate.dense = float(segments[number].vectors[row] @ query)

    def fused(candidate: _OneCandidate) -> float:
        if mode is RetrievalMode.DENSE:
            return candidate.dense
        if mode is RetrievalMode.LEXICAL:
            return candidate.lexical
        if index.fusion is Fusion.RRF:
            return sum(
                1.0 / (RRF_K + rank + 1)
                for rank in (candidate.dense_rank, candidate.lexical_rank)
                if rank is not None
            )
        weight = index.dense_weight
        return weight * candidate.dense + (1.0 - weight) * candidate.lexical

    best: dict[str, tuple[float, _OneCandidate]] = {}
    for candidate in candidates.values():
        score = fused(candidate)
        held = best.get(candidate.article_id)
        if held is None or score > held[0]:
            best[candidate.article_id] = (score, candidate)
    ordered = sorted(best.values(), key=lambda item: (-item[0], item[1].article_id))
    hits = []
    for score, candidate in ordered[:limit]:
        chunk = segments[candidate.segment].chunks[candidate.row]
        hits.append(
            SearchHit(
                article_id=chunk.article_id,
                title=chunk.article_title,
                passage=best_passage(chunk.text, terms),
                heading=chunk.heading,
                score=round(score, 4),
                path=snapshot.paths.get(chunk.article_id, ""),
                dense_score=round(candidate.dense, 4),
                lexical_score=round(candidate.lexical, 4),
            )
        )
    return hits


def help_desk_articles(count: int) -> list[Article]:
    """Articles that repeat each other's words, and whole twins (tied scores)."""
    articles = []
    for number in range(count):
        product = PRODUCTS[number % len(PRODUCTS)]
        problem = PROBLEMS[(number // len(PRODUCTS)) % len(PROBLEMS)]
        body = (
            f"If the {product} {problem}, restart it and sign in again.\n\n"
            f"## Steps\nOpen the settings of the {product}. Approve the prompt on your phone."
        )
        if number % 5 == 0:
            body += "\n\n## Still stuck?\nPost in the help channel with the error code."
        articles.append(
            Article(f"kb-{number:03d}", f"How to fix the {product}", body, Path(f"{number}.md"))
        )
    return articles


def assert_same_hits(index: KnowledgeIndex, embedder: HashingEmbedder) -> None:
    vectors = embedder.embed(QUESTIONS)
    for vector, question in zip(vectors, QUESTIONS, strict=True):
        for fusion in Fusion:
            index.fusion = fusion
            for mode in (None, *RetrievalMode):
                for limit in (1, 3, 10):
                    for text in (question, None):
                        wanted = searched_one_candidate_at_a_time(index, vector, limit, text, mode)
                        assert index.search(vector, limit, query_text=text, mode=mode) == wanted


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(dimension=32)  # few dimensions: many equal cosines


def test_a_fresh_index_finds_what_fusing_one_candidate_at_a_time_found(
    embedder: HashingEmbedder,
) -> None:
    index = build_index(help_desk_articles(120), embedder, "hashing")
    assert_same_hits(index, embedder)


def test_with_edits_and_retirements_pending_and_after_a_reload(
    embedder: HashingEmbedder, tmp_path: Path
) -> None:
    articles = help_desk_articles(120)
    index = build_index(articles, embedder, "hashing")
    for article in articles[10:40:3]:
        edited = Article(
            article.id, article.title, article.body + "\n\nThe vpn is slow.", article.path
        )
        index.add_or_update(edited, embedder)
    for article in articles[50:60]:
        index.retire(article.id)
    assert index._snapshot.retired_rows and index._snapshot.delta.size
    assert_same_hits(index, embedder)

    index.save(tmp_path)
    loaded = KnowledgeIndex.load(tmp_path)
    assert loaded is not None
    assert_same_hits(loaded, embedder)


def test_equal_scores_keep_the_earlier_passage_and_the_smaller_article_id(
    embedder: HashingEmbedder,
) -> None:
    twin = "If the printer shows an error, restart it."
    articles = [
        Article(article_id, "Printer errors", twin, Path(f"{article_id}.md"))
        for article_id in ("kb-b", "kb-a", "kb-c")
    ]
    index = build_index(articles, embedder, "hashing")
    vector = embedder.embed(["printer error"])[0]
    hits = index.search(vector, 3, query_text="printer error")
    assert [hit.article_id for hit in hits] == ["kb-a", "kb-b", "kb-c"]
    assert len({hit.score for hit in hits}) == 1
