"""The exact dense search that scans float16 codes first answers as the full float scan,
and edits to such an index reach readers and survive a restart."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt
import pytest

from knowledge import index as index_module
from knowledge.articles import Article
from knowledge.chunking import Chunk
from knowledge.index import ExactScan, KnowledgeIndex, QuantizedExactScan, Segment, build_index
from tests.nlu.fake_embedder import HashingEmbedder


def clustered(count: int, dimension: int, seed: int) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, dimension))
    vectors = centres[rng.integers(0, 30, count)] + 0.4 * rng.normal(size=(count, dimension))
    if count > 100:
        vectors[count // 2 : count // 2 + 40] = vectors[:40]  # passages with the same text
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(unit, dtype=np.float32)


def flat_search(
    vectors: npt.NDArray[np.float32], query: npt.NDArray[np.float32], k: int
) -> tuple[list[int], list[float]]:
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    scores, rows = flat.search(query.reshape(1, -1), k)
    order = np.lexsort((rows[0], -scores[0]))  # equal scores in row order, as segments give
    return rows[0][order].tolist(), scores[0][order].tolist()


def segment_of(vectors: npt.NDArray[np.float32], dense: object) -> Segment:
    chunks = [Chunk(f"a{n}", "t", "", "") for n in range(len(vectors))]
    return Segment(chunks, vectors, dense=dense)  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [1, 5, 100])
def test_the_float16_scan_returns_the_flat_scans_rows_and_scores(k: int) -> None:
    vectors = clustered(6000, 48, seed=1)
    quantized = segment_of(vectors, QuantizedExactScan(vectors))
    queries = np.vstack([vectors[:10], clustered(30, 48, seed=2)])  # stored ones and others

    for query in queries:
        rows, scores = quantized.dense_search(query, k)
        assert (rows.tolist(), scores.tolist()) == flat_search(vectors, query, k)


def test_when_float16_cannot_tell_the_scores_apart_it_scans_exactly() -> None:
    # Vectors closer to each other than float16 can resolve: no proof from the codes,
    # so the answer must come from the full float32 scan.
    rng = np.random.default_rng(5)
    base = rng.normal(size=48)
    near = base + 1e-5 * rng.normal(size=(5000, 48))
    vectors: npt.NDArray[np.float32] = np.ascontiguousarray(
        near / np.linalg.norm(near, axis=1, keepdims=True), dtype=np.float32
    )
    quantized = segment_of(vectors, QuantizedExactScan(vectors))

    for query in vectors[:5]:
        rows, scores = quantized.dense_search(query, 50)
        assert (rows.tolist(), scores.tolist()) == flat_search(vectors, query, 50)


def test_a_large_exact_index_searches_as_the_plain_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    vectors = clustered(3000, 32, seed=3)
    chunks = [Chunk(f"a{n // 3}", f"Article {n // 3}", "", f"text {n}") for n in range(3000)]
    fingerprints = {f"a{n}": str(n) for n in range(1000)}
    plain = KnowledgeIndex(chunks, vectors, fingerprints, {}, "x")
    monkeypatch.setattr(index_module, "QUANTIZED_SCAN_FROM", 2000)
    scanned = KnowledgeIndex(chunks, vectors, fingerprints, {}, "x")

    assert isinstance(plain._snapshot.base.dense, ExactScan)
    assert isinstance(scanned._snapshot.base.dense, QuantizedExactScan)
    assert not scanned.approximate
    for query in clustered(20, 32, seed=4):
        assert scanned.search(query, limit=10) == plain.search(query, limit=10)


def test_edits_saved_by_one_process_reach_a_reader_of_a_float16_scanned_index(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(index_module, "QUANTIZED_SCAN_FROM", 100)
    embedder = HashingEmbedder()
    topics = ["vpn", "printer", "laptop", "badge", "mailbox", "wifi", "monitor", "zoom"]
    articles = [
        Article(
            f"kb-{n}",
            f"Fix the {topics[n % 8]} issue {n}",
            f"## Steps\nRestart the {topics[n % 8]} number {n}.\n\n## Still stuck\nAsk the desk.",
            Path(f"kb-{n}.md"),
        )
        for n in range(80)
    ]
    writer = build_index(articles, embedder, "hashing")
    assert isinstance(writer._snapshot.base.dense, QuantizedExactScan)
    writer.save(tmp_path)
    reader = KnowledgeIndex.load(tmp_path)
    assert reader is not None

    edited = Article(
        "kb-7", "Fix the printer issue 7", "Toner smudges: swap the drum.", articles[7].path
    )
    moved = Article("kb-8", articles[8].title, articles[8].body, Path("archive/kb-8.md"))
    writer.apply_changes([edited, moved], retirements=["kb-9"], embedder=embedder)
    writer.save(tmp_path)

    question = "toner smudges drum"
    hits = reader.search(embedder.embed([question])[0], limit=3, query_text=question)
    assert hits[0].article_id == "kb-7"  # the reader followed CURRENT to the new build
    assert reader.article_paths["kb-8"] == "archive/kb-8.md"
    assert "kb-9" not in reader.article_fingerprints
    restarted = KnowledgeIndex.load(tmp_path)
    assert restarted is not None
    assert restarted.article_fingerprints == writer.article_fingerprints
    assert restarted.article_paths == writer.article_paths
    for text in (question, "restart the vpn", "badge number 12"):
        vector = embedder.embed([text])[0]
        assert restarted.search(vector, limit=5, query_text=text) == writer.search(
            vector, limit=5, query_text=text
        )
