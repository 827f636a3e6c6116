"""Passages are stored as one blob and decoded when shown: what goes in comes out."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.chunking import Chunk
from knowledge.passages import ArticleRows, PassageTable

PASSAGES = [
    Chunk("vpn", "Connect to the VPN", "", "Open the client — pick “Office”."),
    Chunk("vpn", "Connect to the VPN", "Steps › On macOS", "Allow the profile. 日本語 🎉"),
    Chunk("printer", "Printer jams", "Steps", ""),
    Chunk("vpn", "Connect to the VPN", "Still stuck?", "Post in #it-help."),
]


def test_passages_come_back_as_they_were_stored(tmp_path: Path) -> None:
    PassageTable.from_chunks(PASSAGES).save(tmp_path)

    table = PassageTable.load(tmp_path)

    assert len(table) == 4
    assert list(table) == PASSAGES
    assert table[-1] == PASSAGES[-1] and table[1:3] == PASSAGES[1:3]
    assert table.rows_of("vpn") == [0, 1, 3]
    assert table.rows_of("printer") == [2]
    assert table.rows_of("retired-long-ago") == []
    with pytest.raises(IndexError):
        table[4]


def test_an_empty_segment_stores_no_passages(tmp_path: Path) -> None:
    PassageTable.from_chunks([]).save(tmp_path)
    assert list(PassageTable.load(tmp_path)) == []


def test_passages_cut_short_on_disk_are_refused(tmp_path: Path) -> None:
    PassageTable.from_chunks(PASSAGES).save(tmp_path)
    stored = (tmp_path / "passages.bin").read_bytes()
    (tmp_path / "passages.bin").write_bytes(stored[:-5])

    with pytest.raises(ValueError, match="past the stored text"):
        PassageTable.load(tmp_path)


def test_article_rows_find_every_passage_of_an_article_even_apart() -> None:
    def passage(article_id: str) -> Chunk:
        return Chunk(article_id, article_id.title(), "", f"text of {article_id}")

    chunks = [passage(a) for a in ("vpn", "vpn", "printer", "vpn", "wifi", "wifi", "printer")]

    rows = ArticleRows.of(chunks)

    assert [rows.rows_of(a) for a in ("vpn", "printer", "wifi")] == [[0, 1, 3], [2, 6], [4, 5]]
    assert rows.rows_of("retired-long-ago") == []
    assert ArticleRows.of([]).rows_of("vpn") == []
