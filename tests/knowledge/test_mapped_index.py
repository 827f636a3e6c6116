"""A loaded index maps its segment's files read-only instead of copying them, and a
reader holding a build keeps answering from it while writers swap newer builds in and
sweep its files away."""

from __future__ import annotations

import json
import mmap
from pathlib import Path

import numpy as np
import pytest

from knowledge import index as index_module
from knowledge.articles import Article
from knowledge.index import (
    BinaryPrefilter,
    KnowledgeIndex,
    ProductQuantizedPrefilter,
    QuantizedExactScan,
    SearchHit,
    build_index,
)
from knowledge.passages import PassageTable
from tests.nlu.fake_embedder import HashingEmbedder

TOPICS = ["vpn", "printer", "laptop", "badge", "mailbox", "wifi", "monitor", "zoom"]
QUESTIONS = ["restart the vpn", "badge number 12", "printer number 33", "zoom meeting"]


def articles(version: str, count: int = 80) -> list[Article]:
    return [
        Article(
            f"kb-{n}",
            f"Fix the {TOPICS[n % 8]} issue {n}",
            f"## Steps\nRestart the {TOPICS[n % 8]} number {n} ({version}).\n\n"
            "## Still stuck\nAsk the desk.",
            Path(f"kb-{n}.md"),
        )
        for n in range(count)
    ]


def ask(index: KnowledgeIndex, text: str) -> list[SearchHit]:
    return index.search(HashingEmbedder().embed([text])[0], limit=5, query_text=text)


def mapped(array: object) -> bool:
    """Whether the array's memory is a file mapping (through any views of it)."""
    while array is not None and not isinstance(array, mmap.mmap):
        array = getattr(array, "base", None)
    return array is not None


@pytest.fixture(autouse=True)
def float16_scan_from_100(monkeypatch: pytest.MonkeyPatch) -> None:
    # The float16 codes are persisted and mapped too: have this small index use them.
    monkeypatch.setattr(index_module, "QUANTIZED_SCAN_FROM", 100)


def test_a_loaded_index_maps_its_files_read_only_and_makes_no_codes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    writer = build_index(articles("v1"), HashingEmbedder(), "hashing")
    writer.save(tmp_path)

    def no_encoding(*_: object) -> None:
        raise AssertionError("loading encoded the vectors again instead of mapping the codes")

    monkeypatch.setattr(QuantizedExactScan, "__init__", no_encoding)
    reader = KnowledgeIndex.load(tmp_path)

    assert reader is not None
    base = reader._snapshot.base
    assert mapped(base.vectors) and not base.vectors.flags.writeable
    assert isinstance(base.chunks, PassageTable) and isinstance(base.chunks._blob, mmap.mmap)
    assert isinstance(base.dense, QuantizedExactScan)
    frequencies = base.lexical.frequencies
    for array in (frequencies.data, frequencies.indices, frequencies.indptr, base.lexical.lengths):
        assert mapped(array) and not array.flags.writeable
    for question in QUESTIONS:
        assert ask(reader, question) == ask(writer, question)


def test_an_approximate_index_loads_its_saved_codes_instead_of_encoding_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    writer = build_index(articles("v1", 600), HashingEmbedder(), "hashing", approximate=True)
    assert writer.approximate
    writer.save(tmp_path)

    def no_encoding(*_: object) -> None:
        raise AssertionError("loading encoded the vectors again instead of reading the codes")

    monkeypatch.setattr(ProductQuantizedPrefilter, "__init__", no_encoding)
    reader = KnowledgeIndex.load(tmp_path)

    assert reader is not None and reader.approximate
    assert isinstance(reader._snapshot.base.dense, ProductQuantizedPrefilter)
    assert mapped(reader._snapshot.base.vectors)
    for question in QUESTIONS:
        assert ask(reader, question) == ask(writer, question)


def test_a_reader_keeps_its_answers_while_writers_swap_builds_and_sweep_its_files(
    tmp_path: Path,
) -> None:
    embedder = HashingEmbedder()
    build_index(articles("v1"), embedder, "hashing").save(tmp_path)
    reader = KnowledgeIndex.load(tmp_path)
    assert reader is not None
    old_segment = tmp_path / str(reader._snapshot.base.name)
    answers = {question: ask(reader, question) for question in QUESTIONS}
    assert all(hits and "(v1)" in hits[0].passage for hits in answers.values())

    # A reader mid-search holds its snapshot: it does not follow CURRENT meanwhile.
    following = reader.refresh
    reader.refresh = lambda: False  # type: ignore[method-assign]
    # Two full rebuilds: each writes a new base segment, and the second sweeps the first.
    build_index(articles("v2"), embedder, "hashing").save(tmp_path)
    latest = build_index(articles("v3"), embedder, "hashing")
    latest.save(tmp_path)
    assert not old_segment.exists()

    for question, hits in answers.items():
        assert ask(reader, question) == hits  # read through the mappings of swept files

    reader.refresh = following  # type: ignore[method-assign]
    for question in QUESTIONS:
        hits = ask(reader, question)
        assert hits == ask(latest, question)
        assert "(v3)" in hits[0].passage


def test_an_index_saved_before_codes_were_kept_still_loads(tmp_path: Path) -> None:
    writer = build_index(articles("v1", 600), HashingEmbedder(), "hashing", approximate=True)
    writer.save(tmp_path)
    segment = tmp_path / str(writer._snapshot.base.name)
    # Saved as the binary prefilter was, before its codes were kept: candidates only.
    base = writer._snapshot.base
    base.dense = BinaryPrefilter(base.vectors, 200)
    (segment / index_module.PRODUCT_CODES_FILE).unlink()
    (segment / "dense.json").write_text(json.dumps({"kind": "binary", "candidates": 200}))
    parts = ("data", "indices", "indptr", "shape", "lengths")
    lexical = {part: np.load(segment / f"lexical_{part}.npy") for part in parts}
    np.savez(segment / "lexical.npz", **lexical)  # the BM25 arrays as one file, as before
    for part in parts:
        (segment / f"lexical_{part}.npy").unlink()

    reader = KnowledgeIndex.load(tmp_path)

    assert reader is not None and reader.approximate
    assert isinstance(reader._snapshot.base.dense, BinaryPrefilter)
    for question in QUESTIONS:
        assert ask(reader, question) == ask(writer, question)
