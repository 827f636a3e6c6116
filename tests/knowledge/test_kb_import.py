"""An editor brings an existing knowledge base in: Markdown as it is, HTML pages converted."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from knowledge.articles import ArticleError, parse_article
from knowledge.html_import import collect_import, html_to_article_text
from tests.knowledge.editors import Editor, article_source

CONFLUENCE_PAGE = """\
<!DOCTYPE html>
<html>
<head><title>IT Help : Book a meeting room</title>
<style>body { font-family: sans-serif; }</style>
<script>trackPageView();</script></head>
<body>
<div id="breadcrumb-section"><ol><li>IT Help</li><li>Rooms</li></ol></div>
<h1 id="title-heading"><span id="title-text">IT Help : Book a meeting room</span></h1>
<div id="main-content" class="wiki-content">
<p>Meeting rooms are booked from <strong>Outlook</strong>, never by phone.</p>
<h2>Steps</h2>
<ol><li>Create a meeting and click <em>Room Finder</em>.</li>
<li>Pick the building, then a free room.</li></ol>
<h2>Rooms with video</h2>
<table><tr><th>Room</th><th>Seats</th></tr><tr><td>Fjord</td><td>10</td></tr></table>
</div>
<div id="footer">Powered by Confluence</div>
</body></html>
"""

INTRANET_PAGE = """\
<html><head><title>Parking permits</title></head><body>
<nav><a href="/">Home</a> | <a href="/hr">HR</a></nav>
<main><h1>Parking permits</h1><p>Ask reception for a permit; it is valid for a year.</p></main>
<footer>© Northwind</footer></body></html>
"""


def test_a_confluence_page_becomes_a_markdown_article_without_the_page_chrome() -> None:
    text = html_to_article_text(
        CONFLUENCE_PAGE.encode(),
        Path("export/Book-a-meeting-room_12345.html"),
        status="published",
        today=__import__("datetime").date(2026, 11, 23),
    )
    article = parse_article(text, Path("book.md"))

    assert article.id == "book-a-meeting-room_12345"
    assert article.title == "Book a meeting room"  # the space name is not part of it
    assert article.status == "published" and article.updated == "2026-11-23"
    assert article.meta["imported_from"] == "Book-a-meeting-room_12345.html"
    assert "## Steps" in article.body
    assert "1. Create a meeting and click *Room Finder*." in article.body
    assert "**Outlook**" in article.body
    assert "| Fjord | 10 |" in article.body
    for chrome in ("trackPageView", "font-family", "Powered by Confluence", "IT Help"):
        assert chrome not in article.body


def test_a_folder_of_markdown_and_html_is_validated_as_a_whole(tmp_path: Path) -> None:
    source = tmp_path / "export"
    (source / "pages").mkdir(parents=True)
    (source / "pages" / "Book-a-meeting-room.html").write_text(CONFLUENCE_PAGE)
    (source / "parking.htm").write_text(INTRANET_PAGE)
    (source / "vpn.md").write_text(article_source("vpn-connect"))
    (source / "logo.png").write_bytes(b"\x89PNG")

    files = collect_import(source)

    assert sorted(item.article.id for item in files) == [
        "book-a-meeting-room",
        "parking",
        "vpn-connect",
    ]
    parking = next(item for item in files if item.article.id == "parking")
    assert parking.article.body.startswith("# Parking permits")
    assert "Home" not in parking.article.body
    assert {str(item.relative_path) for item in files} == {
        "pages/book-a-meeting-room.md",
        "parking.md",
        "vpn.md",
    }


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.html", "<html><body><nav>menu</nav></body></html>", "has no text to import"),
        ("vpn-connect.html", "<html><body><p>Another VPN page</p></body></html>", "duplicate id"),
        ("broken.md", "# no front matter\n", "no YAML front matter"),
    ],
)
def test_one_bad_file_stops_the_import_and_is_named(
    tmp_path: Path, name: str, content: str, problem: str
) -> None:
    source = tmp_path / "export"
    source.mkdir()
    (source / "a-vpn.md").write_text(article_source("vpn-connect"))
    (source / name).write_text(content)

    with pytest.raises(ArticleError, match=problem) as caught:
        collect_import(source)

    assert name in str(caught.value)


def test_every_bad_file_is_named_in_one_error_and_nothing_is_collected(tmp_path: Path) -> None:
    source = tmp_path / "export"
    source.mkdir()
    (source / "parking.html").write_text(INTRANET_PAGE)
    (source / "empty.html").write_text("<html><body></body></html>")
    (source / "broken.md").write_text("# no front matter\n")
    (source / "latin.md").write_bytes(
        "---\nid: cafe\ntitle: Café\n---\nLe café.\n".encode("latin-1")
    )

    with pytest.raises(ArticleError) as caught:
        collect_import(source)

    message = str(caught.value)
    assert message.startswith("3 files cannot be used:")
    for name, problem in [
        ("empty.html", "no text to import"),
        ("broken.md", "no YAML front matter"),
        ("latin.md", "cannot be read as UTF-8"),
    ]:
        assert any(name in line and problem in line for line in message.splitlines())
    assert "parking" not in message


def test_links_that_would_run_something_are_imported_as_their_text() -> None:
    page = (
        "<html><head><title>Links</title></head><body><main><p>"
        '<a href="https://it.example/vpn">VPN guide</a>, '
        '<a href="mailto:help@example.com">mail us</a>, '
        '<a href="../rooms.html">rooms</a>, '
        '<a href="javascript:alert(1)">click me</a>, '
        '<a href=" JAVA\tSCRIPT:alert(2)">or me</a> and '
        '<a href="data:text/html;base64,PHNjcmlwdD4=">this</a>.'
        "</p></main></body></html>"
    )

    text = html_to_article_text(
        page.encode(), Path("links.html"), status="published", today=dt.date(2026, 11, 28)
    )
    body = parse_article(text, Path("links.md")).body

    assert "[VPN guide](https://it.example/vpn)" in body
    assert "[mail us](mailto:help@example.com)" in body
    assert "[rooms](../rooms.html)" in body
    assert "click me, or me and this." in body
    for target in ("javascript", "JAVA", "data:"):
        assert target not in body


def test_kb_import_of_an_html_export_makes_it_the_knowledge_base_and_syncs(
    home: Path, tmp_path: Path
) -> None:
    source = tmp_path / "export"
    source.mkdir()
    (source / "Book-a-meeting-room.html").write_text(CONFLUENCE_PAGE)
    (source / "parking.html").write_text(INTRANET_PAGE)
    editor = Editor(home=home, kb=home / "kb")

    result = editor.kb_command("import", str(source), "--author", "importer", TIER0_KB_DIR=None)

    assert result.exit_code == 0, result.output
    assert "Imported 2 articles (2 converted from HTML)" in result.stdout
    assert "2 added" in result.stdout
    assert (home / "kb" / "book-a-meeting-room.md").exists()
    listed = editor.kb_command("list", "--json", TIER0_KB_DIR=None)
    assert {row["id"] for row in json.loads(listed.stdout)} == {"book-a-meeting-room", "parking"}


def test_kb_import_of_a_folder_with_a_bad_page_changes_nothing(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "export"
    source.mkdir()
    (source / "parking.html").write_text(INTRANET_PAGE)
    (source / "empty.html").write_text("<html><body></body></html>")
    editor = Editor(home=home, kb=home / "kb")

    result = editor.kb_command("import", str(source), TIER0_KB_DIR=None)

    assert result.exit_code == 2
    assert "empty.html" in result.output and "no text to import" in result.output
    assert not (home / "kb").exists()
