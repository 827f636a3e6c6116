"""One article added, edited or retired without a rebuild; searches never see half of it."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from knowledge import index as index_module
from knowledge.articles import Article, load_articles
from knowledge.chunking import Chunk
from knowledge.index import (
    KnowledgeIndex,
    RetrievalMode,
    SearchHit,
    best_passage,
    build_index,
    load_or_build_index,
    sweep_index_dir,
)
from knowledge.lexical import tokenize
from tests.knowledge.kb import write_article
from tests.nlu.fake_embedder import HashingEmbedder

EMBEDDER_NAME = "hashing"


def article(article_id: str, title: str, body: str) -> Article:
    return Article(id=article_id, title=title, body=body, path=Path(f"{article_id}.md"))


VPN = article("vpn", "Connect to the VPN", "## Steps\nOpen the VPN app and click connect.")
PRINTER_V1 = article("printer", "Add a printer", "## Paper jam\nOpen the tray, pull the paper.")
PRINTER_V2 = article("printer", "Add a printer", "## Toner\nSwap the toner cartridge.")
WIFI = article("wifi", "Join the office Wi-Fi", "Pick the corp network and sign in.")


def ask(index: KnowledgeIndex, text: str, limit: int = 3) -> list[SearchHit]:
    return index.search(HashingEmbedder().embed([text])[0], limit=limit, query_text=text)


@pytest.fixture
def index() -> KnowledgeIndex:
    return build_index([VPN, PRINTER_V1], HashingEmbedder(), EMBEDDER_NAME)


def test_an_added_article_is_found_and_only_it_was_embedded(index: KnowledgeIndex) -> None:
    embedder = HashingEmbedder()

    assert index.add_or_update(WIFI, embedder)

    assert embedder.embedded == ["Join the office Wi-Fi\nPick the corp network and sign in."]
    assert ask(index, "corp network wifi")[0].article_id == "wifi"
    assert index.article_count == 3


def test_an_edited_article_is_found_by_its_new_words_only(index: KnowledgeIndex) -> None:
    index.add_or_update(PRINTER_V2, HashingEmbedder())

    assert ask(index, "toner cartridge")[0].article_id == "printer"
    passages = [hit.passage for hit in ask(index, "paper jam tray toner", limit=5)]
    assert "Swap the toner cartridge." in passages
    assert not any("tray" in passage for passage in passages)
    assert [chunk.text for chunk in index.chunks if chunk.article_id == "printer"] == [
        "Swap the toner cartridge."
    ]


def test_an_unchanged_article_is_not_embedded_again(index: KnowledgeIndex) -> None:
    embedder = HashingEmbedder()

    assert not index.add_or_update(VPN, embedder)
    assert embedder.embedded == []


def test_a_retired_article_is_never_found_again(index: KnowledgeIndex) -> None:
    assert index.retire("printer")

    for mode in RetrievalMode:
        hits = index.search(
            HashingEmbedder().embed(["paper jam"])[0], limit=5, query_text="paper jam", mode=mode
        )
        assert "printer" not in {hit.article_id for hit in hits}
    assert not index.retire("printer")  # already gone
    assert index.article_count == 1
    assert "printer" not in index.titles()


def test_an_internal_article_is_found_only_when_internal_articles_are_asked_for(
    index: KnowledgeIndex, tmp_path: Path
) -> None:
    runbook = replace(
        article("vpn-runbook", "Restart the VPN gateway", "Restart the gateway cluster."),
        audience="agents",
    )
    index.add_or_update(runbook, HashingEmbedder())
    vector = HashingEmbedder().embed(["restart the vpn gateway"])[0]

    def found(searched: KnowledgeIndex, include_internal: bool) -> list[str]:
        hits = searched.search(
            vector, limit=3, query_text="restart the vpn gateway", include_internal=include_internal
        )
        return [hit.article_id for hit in hits]

    assert found(index, True)[0] == "vpn-runbook"
    assert "vpn-runbook" not in found(index, False) and found(index, False)[0] == "vpn"
    index.save(tmp_path)
    loaded = KnowledgeIndex.load(tmp_path)
    assert loaded is not None and "vpn-runbook" not in found(loaded, False)

    # Made public by its editor: the same text, now for everyone.
    assert index.add_or_update(replace(runbook, audience="everyone"), HashingEmbedder())
    assert found(index, False)[0] == "vpn-runbook"


def test_bm25_statistics_follow_retired_and_added_passages(index: KnowledgeIndex) -> None:
    index.retire("printer")
    index.add_or_update(WIFI, HashingEmbedder())

    rebuilt = build_index([VPN, WIFI], HashingEmbedder(), EMBEDDER_NAME)

    for query in ("vpn connect", "corp network", "open app"):
        assert ask(index, query) == ask(rebuilt, query)


def test_incremental_changes_survive_a_restart(index: KnowledgeIndex, tmp_path: Path) -> None:
    index.save(tmp_path)
    index.add_or_update(WIFI, HashingEmbedder())
    index.retire("vpn")
    index.save(tmp_path)

    loaded = KnowledgeIndex.load(tmp_path)

    assert loaded is not None
    assert loaded.article_fingerprints == index.article_fingerprints
    for query in ("corp network", "vpn connect", "paper jam"):
        assert ask(loaded, query) == ask(index, query)


def test_a_big_delta_is_merged_into_the_base(
    index: KnowledgeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "COMPACT_MIN_PASSAGES", 1)
    monkeypatch.setattr(index_module, "COMPACT_SHARE", 0.0)

    index.add_or_update(WIFI, HashingEmbedder())
    index.add_or_update(PRINTER_V2, HashingEmbedder())

    snapshot = index._snapshot
    assert snapshot.delta.size == 0 and not snapshot.retired_rows
    assert sorted(chunk.article_id for chunk in snapshot.base.chunks) == ["printer", "vpn", "wifi"]
    assert ask(index, "toner cartridge")[0].article_id == "printer"


def test_a_search_during_updates_always_sees_one_whole_version(index: KnowledgeIndex) -> None:
    stop = threading.Event()
    problems: list[str] = []

    def edit_back_and_forth() -> None:
        embedder = HashingEmbedder()
        while not stop.is_set():
            for version in (PRINTER_V2, PRINTER_V1):
                index.add_or_update(version, embedder)
            index.retire("wifi")
            index.add_or_update(WIFI, embedder)

    def search_all_the_time() -> None:
        while not stop.is_set():
            hits = ask(index, "printer paper jam toner cartridge tray", limit=5)
            ids = [hit.article_id for hit in hits]
            if "printer" not in ids:
                problems.append(f"printer missing: {ids}")
            if len(ids) != len(set(ids)):
                problems.append(f"an article twice: {ids}")

    threads = [threading.Thread(target=edit_back_and_forth)] + [
        threading.Thread(target=search_all_the_time) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join()

    assert problems == []


def test_a_reader_loading_while_a_writer_saves_always_gets_a_whole_index(
    tmp_path: Path,
) -> None:
    kb = tmp_path / "kb"
    write_article(kb, "vpn.md", "vpn", "Connect to the VPN", "Open the VPN app.")
    write_article(kb, "printer.md", "printer", "Add a printer", "Open the tray.")
    index_dir = tmp_path / "index"
    load_or_build_index(load_articles(kb), index_dir, HashingEmbedder(), EMBEDDER_NAME)
    stop = threading.Event()
    loaded: list[set[str] | None] = []

    def writer() -> None:
        body = 0
        while not stop.is_set():
            body += 1
            write_article(kb, "printer.md", "printer", "Add a printer", f"Open tray {body}.")
            load_or_build_index(load_articles(kb), index_dir, HashingEmbedder(), EMBEDDER_NAME)

    def reader() -> None:
        while not stop.is_set():
            found = KnowledgeIndex.load(index_dir)
            loaded.append(None if found is None else set(found.article_fingerprints))

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    stop.set()
    for thread in threads:
        thread.join()

    assert loaded and all(ids == {"vpn", "printer"} for ids in loaded)


def test_stale_build_folders_are_swept_and_fresh_ones_kept(tmp_path: Path) -> None:
    index = build_index([VPN], HashingEmbedder(), EMBEDDER_NAME)
    build = index.save(tmp_path)
    crashed = tmp_path / "build-crashed.tmp"
    crashed.mkdir()
    in_progress = tmp_path / "segment-in-progress.tmp"
    in_progress.mkdir()
    old = time.time() - 3600
    import os

    os.utime(crashed, (old, old))

    sweep_index_dir(tmp_path, keep={build.name})

    assert not crashed.exists()
    assert in_progress.exists()  # may belong to a writer still at work
    assert KnowledgeIndex.load(tmp_path) is not None


def test_beyond_the_exact_limit_an_approximate_index_keeps_recall() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(40, 32)).astype(np.float32)
    vectors = centres[rng.integers(0, 40, 4000)] + 0.3 * rng.normal(size=(4000, 32))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    chunks = [Chunk(f"a{n}", f"Article {n}", "", f"text {n}") for n in range(4000)]
    fingerprints = {f"a{n}": str(n) for n in range(4000)}

    approximate = KnowledgeIndex(chunks, vectors, fingerprints, {}, "x", approximate=True)
    exact = KnowledgeIndex(chunks, vectors, fingerprints, {}, "x", approximate=False)

    assert approximate.approximate and not exact.approximate
    queries = vectors[rng.choice(4000, 50, replace=False)]
    recall = np.mean(
        [
            len(
                {h.article_id for h in approximate.search(q, limit=5)}
                & {h.article_id for h in exact.search(q, limit=5)}
            )
            / 5
            for q in queries
        ]
    )
    assert recall >= 0.9


def test_an_approximate_index_from_disk_searches_as_before(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    vectors = rng.normal(size=(3000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(f"a{n}", f"Article {n}", "", f"text {n}") for n in range(3000)]
    fingerprints = {f"a{n}": str(n) for n in range(3000)}
    index = KnowledgeIndex(chunks, vectors, fingerprints, {}, "x", approximate=True)
    index.save(tmp_path)

    loaded = KnowledgeIndex.load(tmp_path)

    assert loaded is not None and loaded.approximate
    for query in vectors[:20]:
        assert loaded.search(query, limit=5) == index.search(query, limit=5)
        assert loaded.search(query, limit=1)[0].dense_score == pytest.approx(1.0, abs=1e-4)


def test_the_passage_shown_is_the_part_that_answers() -> None:
    filler = "This paragraph is about something else entirely and goes on. " * 8
    text = filler + "To clear a paper jam open the rear tray and pull gently. " + filler

    passage = best_passage(text, tokenize("paper jam rear tray"))

    assert "To clear a paper jam open the rear tray and pull gently." in passage
    assert passage.startswith("… ")
    assert len(passage) <= index_module.PASSAGE_CHARS + 4


def test_a_list_shown_from_one_of_its_items_stays_a_list() -> None:
    steps = [
        "1. From any device, open the reset page in a browser and wait for it to load fully.",
        "2. Enter your work email address and complete the captcha shown under it.",
        "3. Approve the verification request in the authenticator app on your phone.",
        "4. Choose a new password of at least fourteen characters, not one used before.",
        "5. Sign in again on your laptop first while connected to the office network.",
        "6. Update the password on your phone when the mail app prompts you for it.",
        "7. If the captcha never shows, post in the help channel with a screenshot.",
        "8. Never send your password to anyone, including the service desk itself.",
    ]
    text = "\n".join(steps)

    first = best_passage(text, tokenize("open the reset page from any device"))
    later = best_passage(text, tokenize("new password characters laptop network phone"))

    # From the first item: the whole items, each on its own line with its number.
    assert first.startswith("1. From any device") and "\n2. Enter your work email" in first
    # From a later one: the "…" on a line of its own, so the items stay a list.
    head, *items = later.split("\n")
    assert head == "…" and items[0] != steps[0]
    assert items == steps[steps.index(items[0]) : steps.index(items[0]) + len(items)]


def test_an_index_from_disk_updates_with_the_embedder_it_was_loaded_with(
    tmp_path: Path,
) -> None:
    kb = tmp_path / "kb"
    write_article(kb, "vpn.md", "vpn", "Connect to the VPN", "Open the VPN app.")
    embedder = HashingEmbedder()
    index, _ = load_or_build_index(load_articles(kb), tmp_path / "i", embedder, EMBEDDER_NAME)
    embedder.embedded.clear()

    assert index.add_or_update(WIFI)

    assert embedder.embedded == ["Join the office Wi-Fi\nPick the corp network and sign in."]
    bare = KnowledgeIndex.load(tmp_path / "i")
    assert bare is not None
    with pytest.raises(ValueError, match="embedder"):
        bare.add_or_update(PRINTER_V1)
