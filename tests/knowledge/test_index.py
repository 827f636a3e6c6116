"""The persisted search index: one hit per article, rebuilt only as far as the articles changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from knowledge.articles import Article, load_articles
from knowledge.chunking import chunk_article
from knowledge.index import (
    PASSAGE_CHARS,
    KnowledgeIndex,
    SearchHit,
    build_index,
    load_or_build_index,
)
from tests.knowledge.kb import write_article
from tests.nlu.fake_embedder import HashingEmbedder

EMBEDDER_NAME = "hashing"


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    write_article(
        folder,
        "vpn.md",
        "vpn",
        "Connect to the VPN",
        """
        The VPN gives you the intranet from home.

        ## Steps
        Open the VPN app and click connect.

        ## VPN errors
        If the VPN says gateway unreachable, restart the VPN app.
        """,
    )
    write_article(
        folder,
        "printer.md",
        "printer",
        "Add a printer",
        """
        ## Steps
        Open printer settings and add the floor printer.

        ## Paper jam
        Open the printer tray and remove the jammed paper.
        """,
    )
    write_article(folder, "password.md", "password", "Reset your password", "Use the reset page.")
    write_article(folder, "wifi.md", "wifi", "Join the office Wi-Fi", "Pick the corp network.")
    return folder


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "home" / "index"


def search(index: KnowledgeIndex, query: str, limit: int = 3) -> list[SearchHit]:
    return index.search(HashingEmbedder().embed([query])[0], limit=limit)


def chunk_count(articles: list[Article], *ids: str) -> int:
    return sum(len(chunk_article(a)) for a in articles if a.id in ids)


def build_dirs(index_dir: Path) -> list[str]:
    return sorted(path.name for path in index_dir.iterdir() if path.is_dir())


# -- searching -------------------------------------------------------------------------


def test_search_gives_one_hit_per_article_best_first(kb: Path) -> None:
    index = build_index(load_articles(kb), HashingEmbedder(), EMBEDDER_NAME)

    hits = search(index, "vpn gateway unreachable printer", limit=4)

    assert hits[0].article_id == "vpn"
    assert hits[0].heading == "VPN errors"
    assert hits[0].passage == "If the VPN says gateway unreachable, restart the VPN app."
    assert hits[0].title == "Connect to the VPN"
    assert hits[0].path == str(kb / "vpn.md")
    ids = [hit.article_id for hit in hits]
    assert len(ids) == len(set(ids))
    assert "printer" in ids
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert 0 < scores[0] <= 1.0


def test_search_returns_at_most_limit_articles(kb: Path) -> None:
    index = build_index(load_articles(kb), HashingEmbedder(), EMBEDDER_NAME)

    assert len(search(index, "open the app", limit=2)) == 2
    assert len(search(index, "open the app", limit=10)) == 4  # only four articles exist


def test_a_long_passage_is_shortened_at_a_sentence(tmp_path: Path) -> None:
    sentence = "Restart the laptop and check the cable first. "  # 600 is no multiple of it
    write_article(tmp_path, "long.md", "long", "Long", sentence * 30)
    index = build_index(load_articles(tmp_path), HashingEmbedder(), EMBEDDER_NAME)

    passage = search(index, "restart laptop")[0].passage

    assert passage.endswith("cable first. …")
    assert len(passage) <= PASSAGE_CHARS + 2


def test_a_step_list_cut_in_two_is_shown_on_from_the_step_found(tmp_path: Path) -> None:
    steps = [f"{n}. Step {n}: click the button marked {word}." for n, word in enumerate(
        ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november"], start=1)]  # fmt: skip
    body = "## Steps\n\n" + "\n".join(steps) + "\n\n## Who to contact\nPost in #it-help."
    write_article(tmp_path, "steps.md", "steps", "Long steps", body)
    article = load_articles(tmp_path)[0]
    first, second, *_ = [chunk for chunk in chunk_article(article) if chunk.heading == "Steps"]
    assert "delta" in first.text and "kilo" in second.text  # the list spans passages
    index = build_index([article], HashingEmbedder(), EMBEDDER_NAME)

    passage = search(index, "which button is delta")[0].passage

    # The passage found, read on into the next one of the same section, as far as a
    # reply shows; never into the next section.
    assert passage.startswith("1. Step 1")
    assert "\n4. Step 4: click the button marked delta." in passage
    assert "kilo" in passage
    assert "#it-help" not in passage
    assert len(passage) <= PASSAGE_CHARS + 2


def test_a_passage_read_on_across_a_cut_keeps_the_paragraphs_apart(tmp_path: Path) -> None:
    opening = " ".join(["Printers on every floor take jobs sent from a laptop on the network."] * 4)
    after = " ".join(["Jobs wait in the queue until you badge in at the printer."] * 3)
    write_article(tmp_path, "print.md", "print", "Printing", f"## Printing\n\n{opening}\n\n{after}")
    article = load_articles(tmp_path)[0]
    assert [chunk.joined_by for chunk in chunk_article(article)] == ["", "\n\n"]  # one cut
    index = build_index([article], HashingEmbedder(), EMBEDDER_NAME)

    passage = search(index, "printers on every floor")[0].passage

    assert passage == f"{opening}\n\n{after}"


def test_an_empty_index_finds_nothing() -> None:
    index = build_index([], HashingEmbedder(), EMBEDDER_NAME)

    assert search(index, "vpn") == []


# -- persistence and incremental rebuilds ----------------------------------------------


def test_a_persisted_index_is_reused_as_it_was(kb: Path, index_dir: Path) -> None:
    articles = load_articles(kb)
    embedder = HashingEmbedder()
    built, rebuilt = load_or_build_index(articles, index_dir, embedder, EMBEDDER_NAME)
    assert rebuilt
    assert len(embedder.embedded) == len(built.chunks) == chunk_count(articles, *built.titles())
    embedder.embedded.clear()

    loaded, rebuilt = load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)

    assert not rebuilt
    assert embedder.embedded == []
    assert loaded.chunks == built.chunks
    np.testing.assert_array_equal(loaded.vectors, built.vectors)
    for query in ("vpn gateway", "paper jam", "reset password", "wifi network"):
        assert search(loaded, query, limit=4) == search(built, query, limit=4)


def test_editing_one_article_re_embeds_only_that_article(kb: Path, index_dir: Path) -> None:
    embedder = HashingEmbedder()
    load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)
    embedder.embedded.clear()
    write_article(
        kb,
        "printer.md",
        "printer",
        "Add a printer",
        """
        ## Steps
        Open printer settings and add the floor printer.

        ## Toner
        When the toner light blinks, swap the toner cartridge.
        """,
    )

    index, rebuilt = load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)

    assert rebuilt
    assert len(embedder.embedded) == 2
    assert all(text.startswith("Add a printer") for text in embedder.embedded)
    toner = search(index, "toner cartridge")[0]
    assert (toner.article_id, toner.heading) == ("printer", "Toner")
    assert "Paper jam" not in {chunk.heading for chunk in index.chunks}
    assert search(index, "vpn gateway unreachable")[0].article_id == "vpn"


def test_adding_an_article_embeds_only_the_new_one(kb: Path, index_dir: Path) -> None:
    embedder = HashingEmbedder()
    load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)
    embedder.embedded.clear()
    write_article(kb, "mfa.md", "mfa", "Set up MFA", "Install the authenticator app.")

    index, rebuilt = load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)

    assert rebuilt
    assert embedder.embedded == ["Set up MFA\nInstall the authenticator app."]
    assert search(index, "authenticator")[0].article_id == "mfa"
    assert index.article_count == 5


def test_a_removed_article_is_no_longer_found(kb: Path, index_dir: Path) -> None:
    embedder = HashingEmbedder()
    load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)
    embedder.embedded.clear()
    (kb / "vpn.md").unlink()

    index, rebuilt = load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)

    assert rebuilt
    assert embedder.embedded == []
    assert "vpn" not in {hit.article_id for hit in search(index, "vpn gateway", limit=10)}
    assert "vpn" not in index.titles()
    reloaded = KnowledgeIndex.load(index_dir)
    assert reloaded is not None
    assert "vpn" not in {chunk.article_id for chunk in reloaded.chunks}


def test_a_moved_article_keeps_its_vectors_but_shows_its_new_path(
    kb: Path, index_dir: Path
) -> None:
    embedder = HashingEmbedder()
    load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)
    embedder.embedded.clear()
    (kb / "network").mkdir()
    (kb / "wifi.md").rename(kb / "network" / "office-wifi.md")

    index, _ = load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)

    assert embedder.embedded == []
    assert search(index, "corp network")[0].path == str(kb / "network" / "office-wifi.md")


def test_another_embedder_re_embeds_everything(kb: Path, index_dir: Path) -> None:
    articles = load_articles(kb)
    load_or_build_index(articles, index_dir, HashingEmbedder(), EMBEDDER_NAME)
    other = HashingEmbedder(dimension=64)

    index, rebuilt = load_or_build_index(articles, index_dir, other, "hashing-64")

    assert rebuilt
    assert len(other.embedded) == len(index.chunks)
    assert index.vectors.shape == (len(index.chunks), 64)


def test_current_always_names_one_complete_build(kb: Path, index_dir: Path) -> None:
    embedder = HashingEmbedder()
    load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)
    first_build = (index_dir / "CURRENT").read_text().strip()
    write_article(kb, "wifi.md", "wifi", "Join the office Wi-Fi", "Pick the guest network.")

    load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)

    current = (index_dir / "CURRENT").read_text().strip()
    assert current != first_build
    manifest = json.loads((index_dir / current / "manifest.json").read_text())
    # the replaced build stays for readers still loading it, until the next swap
    assert sorted(path.name for path in index_dir.iterdir()) == sorted(
        [".lock", "CURRENT", current, first_build, manifest["base"]]
    )
    write_article(kb, "wifi.md", "wifi", "Join the office Wi-Fi", "Pick the corp network.")
    load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)
    assert not (index_dir / first_build).exists()
    base = index_dir / manifest["base"]
    base_articles = np.load(base / "passage_articles.npy")
    assert np.load(base / "vectors.npy").shape[0] == base_articles.shape[0]
    assert set(json.loads((base / "articles.json").read_text())) == {
        "vpn",
        "printer",
        "password",
        "wifi",
    }
    delta = np.load(index_dir / current / "delta_vectors.npy")
    assert delta.shape[0] == len(manifest["delta_chunks"]) == 1  # only the edited article
    # The build records only what changed since its base segment was written.
    assert set(manifest["articles"]) == {"wifi"} and manifest["gone"] == []
    reloaded = KnowledgeIndex.load(index_dir)
    assert reloaded is not None
    assert set(reloaded.article_fingerprints) == {"vpn", "printer", "password", "wifi"}


@pytest.mark.parametrize(
    "damage",
    [
        "no CURRENT",
        "CURRENT names a missing build",
        "manifest not JSON",
        "manifest incomplete",
        "previous format",
        "passages cut short",
    ],
)
def test_a_damaged_index_is_rebuilt(kb: Path, index_dir: Path, damage: str) -> None:
    embedder = HashingEmbedder()
    load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)
    build = index_dir / (index_dir / "CURRENT").read_text().strip()
    if damage == "no CURRENT":
        (index_dir / "CURRENT").unlink()
    elif damage == "CURRENT names a missing build":
        (index_dir / "CURRENT").write_text("build-gone")
    elif damage == "manifest not JSON":
        (build / "manifest.json").write_text("{ truncated")
    elif damage == "previous format":  # passages as JSON, every article in the manifest
        manifest = json.loads((build / "manifest.json").read_text())
        manifest |= {"format": 2, "articles": {"vpn": "x"}, "paths": {}}
        (build / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "passages cut short":
        segment = index_dir / json.loads((build / "manifest.json").read_text())["base"]
        stored = (segment / "passages.bin").read_bytes()
        (segment / "passages.bin").write_bytes(stored[: len(stored) // 2])
    else:
        (build / "manifest.json").write_text(json.dumps({"format": 1, "embedder": "hashing"}))
    assert KnowledgeIndex.load(index_dir) is None
    embedder.embedded.clear()

    index, rebuilt = load_or_build_index(load_articles(kb), index_dir, embedder, EMBEDDER_NAME)

    assert rebuilt
    assert len(embedder.embedded) == len(index.chunks)
    assert search(index, "paper jam")[0].article_id == "printer"
    assert KnowledgeIndex.load(index_dir) is not None
