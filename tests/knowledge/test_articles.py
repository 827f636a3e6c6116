"""An editor writes Markdown articles with front matter; tier0 reads them or names what is wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import knowledge
from knowledge.articles import Article, ArticleError, article_link, load_articles, parse_article
from tests.knowledge.kb import write_article

VPN_ARTICLE = """\
---
id: vpn-connect
title: Connect to the VPN
tags: [vpn, remote]
owner: it-network@example.com
updated: 2026-06-18
audience: everyone
---

# Connect to the VPN

Open the VPN app and click **Connect**.
"""


def test_front_matter_fields_are_read(tmp_path: Path) -> None:
    path = tmp_path / "vpn.md"

    article = parse_article(VPN_ARTICLE, path)

    assert article.id == "vpn-connect"
    assert article.title == "Connect to the VPN"
    assert article.tags == ("vpn", "remote")
    assert article.owner == "it-network@example.com"
    assert article.updated == "2026-06-18"
    assert article.meta["audience"] == "everyone"
    assert article.path == path
    assert article.body == "# Connect to the VPN\n\nOpen the VPN app and click **Connect**."


def test_optional_fields_may_be_left_out_and_tags_may_be_a_list_in_a_string() -> None:
    text = "---\nid: wifi\ntitle: Wi-Fi\ntags: wifi, wireless , \n---\nJoin the office network.\n"

    article = parse_article(text, Path("wifi.md"))

    assert article.tags == ("wifi", "wireless")
    assert article.owner is None
    assert article.updated is None


@pytest.mark.parametrize(
    "text",
    [
        VPN_ARTICLE.replace("\n", "\r\n"),  # saved on Windows
        "\ufeff" + VPN_ARTICLE,  # with a byte-order mark, as some editors write
    ],
    ids=["CRLF", "BOM"],
)
def test_files_saved_by_windows_editors_are_read(text: str) -> None:
    article = parse_article(text, Path("vpn.md"))

    assert (article.id, article.title) == ("vpn-connect", "Connect to the VPN")
    assert "\r" not in article.body


BROKEN_ARTICLES = {
    "no front matter": ("# Just a heading\n\nSome text.\n", "no YAML front matter"),
    "front matter never closed": ("---\nid: a\ntitle: A\n\nBody.\n", "no YAML front matter"),
    "invalid YAML": ("---\nid: a\ntitle: [unclosed\n---\nBody.\n", "not valid YAML"),
    "front matter not a mapping": ("---\n- id\n- title\n---\nBody.\n", "must be a mapping"),
    "missing id": ("---\ntitle: A\n---\nBody.\n", "missing id"),
    "missing title": ("---\nid: a\n---\nBody.\n", "missing title"),
    "blank title": ("---\nid: a\ntitle: '  '\n---\nBody.\n", "missing title"),
    "missing both": ("---\nowner: me\n---\nBody.\n", "missing id, title"),
    "id with a space": ("---\nid: vpn connect\ntitle: A\n---\nBody.\n", "'vpn connect'"),
    "id with a slash": ("---\nid: ../etc\ntitle: A\n---\nBody.\n", "may use only letters"),
    "empty body": ("---\nid: a\ntitle: A\n---\n\n   \n", "has no body"),
    "title a list": ("---\nid: a\ntitle: [VPN]\n---\nBody.\n", "title must be plain text"),
    "id a list": ("---\nid: [a, b]\ntitle: A\n---\nBody.\n", "id must be plain text"),
}


@pytest.mark.parametrize(("text", "problem"), BROKEN_ARTICLES.values(), ids=BROKEN_ARTICLES.keys())
def test_a_broken_article_is_reported_by_name_with_the_problem(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "kb" / "broken-article.md"

    with pytest.raises(ArticleError) as caught:
        parse_article(text, path)

    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_fingerprint_follows_the_content_not_the_file() -> None:
    original = parse_article(VPN_ARTICLE, Path("a.md"))
    moved = parse_article(VPN_ARTICLE, Path("elsewhere/b.md"))
    edited = parse_article(VPN_ARTICLE.replace("click", "press"), Path("a.md"))
    retitled = parse_article(VPN_ARTICLE.replace("title: Connect", "title: Join"), Path("a.md"))

    assert original.fingerprint == moved.fingerprint
    assert len({original.fingerprint, edited.fingerprint, retitled.fingerprint}) == 3


# -- a folder of articles -------------------------------------------------------------


def test_every_markdown_file_in_the_folder_and_below_is_loaded(tmp_path: Path) -> None:
    write_article(tmp_path, "vpn.md", "vpn", "VPN", "Connect the VPN.")
    write_article(tmp_path, "network/wifi.md", "wifi", "Wi-Fi", "Join the Wi-Fi.")
    (tmp_path / "README.txt").write_text("not an article")

    articles = load_articles(tmp_path)

    assert sorted(article.id for article in articles) == ["vpn", "wifi"]
    assert {article.id: article.path for article in articles}["wifi"] == (
        tmp_path / "network" / "wifi.md"
    )


def test_a_duplicate_id_names_both_files(tmp_path: Path) -> None:
    first = write_article(tmp_path, "a-vpn.md", "vpn", "VPN", "Connect the VPN.")
    second = write_article(tmp_path, "b-vpn-copy.md", "vpn", "VPN again", "Also the VPN.")

    with pytest.raises(ArticleError, match="duplicate id 'vpn'") as caught:
        load_articles(tmp_path)

    assert str(first) in str(caught.value)
    assert str(second) in str(caught.value)


def test_one_bad_file_stops_the_load_and_is_named(tmp_path: Path) -> None:
    write_article(tmp_path, "vpn.md", "vpn", "VPN", "Connect the VPN.")
    bad = tmp_path / "printer.md"
    bad.write_text(textwrap.dedent("# Printer\n\nNo front matter here.\n"))

    with pytest.raises(ArticleError, match="no YAML front matter") as caught:
        load_articles(tmp_path)

    assert str(bad) in str(caught.value)


def test_every_bad_file_of_the_folder_is_named_in_one_error(tmp_path: Path) -> None:
    write_article(tmp_path, "vpn.md", "vpn", "VPN", "Connect the VPN.")
    write_article(tmp_path, "vpn-again.md", "vpn", "VPN again", "Connect the VPN again.")
    (tmp_path / "printer.md").write_text("# Printer\n\nNo front matter here.\n")
    (tmp_path / "wifi.md").write_text("---\nid: wifi\ntitle: [Wi-Fi]\n---\nJoin it.\n")

    with pytest.raises(ArticleError) as caught:
        load_articles(tmp_path)

    lines = str(caught.value).splitlines()
    assert lines[0] == "3 files cannot be used:"
    assert [line.split(": ", 1)[0] for line in lines[1:]] == [
        str(tmp_path / name) for name in ("printer.md", "vpn.md", "wifi.md")
    ]
    assert "duplicate id 'vpn'" in lines[2]


def test_a_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.md"
    bad.write_bytes("---\nid: cafe\ntitle: Café\n---\nLe café.\n".encode("latin-1"))

    with pytest.raises(ArticleError, match="UTF-8") as caught:
        load_articles(tmp_path)

    assert str(bad) in str(caught.value)


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no articles here")

    with pytest.raises(ArticleError, match=r"no articles \(\*\.md\) found") as caught:
        load_articles(tmp_path)

    assert str(tmp_path) in str(caught.value)


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ArticleError, match="folder not found") as caught:
        load_articles(tmp_path / "kb")

    assert str(tmp_path / "kb") in str(caught.value)


def test_the_sample_knowledge_base_loads() -> None:
    articles = load_articles(Path(knowledge.__file__).parent / "sample_kb")

    assert len(articles) >= 30
    assert all(article.title and article.body for article in articles)


# -- life-cycle fields ----------------------------------------------------------------

LIFECYCLE_ARTICLE = """\
---
id: vpn-connect
title: Connect to the VPN
tags: [vpn, remote]
owner: U012ABCDEF
audience: employees
status: published
updated: 2026-06-18
review_by: 2027-06-18
questions:
  - how do I connect to the vpn
  - vpn from home
---

# Connect to the VPN

Open the VPN app and click **Connect**.
"""


def test_life_cycle_fields_are_read() -> None:
    article = parse_article(LIFECYCLE_ARTICLE, Path("vpn.md"))

    assert article.owner == "U012ABCDEF"
    assert article.audience == "employees"
    assert article.status == "published" and article.searchable
    assert article.review_by == "2027-06-18"
    assert article.questions == ("how do I connect to the vpn", "vpn from home")
    assert article.source == LIFECYCLE_ARTICLE


def test_an_article_without_a_status_is_published_and_drafts_are_not_searchable() -> None:
    assert parse_article(VPN_ARTICLE, Path("vpn.md")).searchable
    for status in ("draft", "retired", "Retired"):
        text = LIFECYCLE_ARTICLE.replace("status: published", f"status: {status}")
        article = parse_article(text, Path("vpn.md"))
        assert article.status == status.lower()
        assert not article.searchable


def test_any_change_to_the_file_is_a_new_content_hash_but_not_a_new_fingerprint() -> None:
    original = parse_article(LIFECYCLE_ARTICLE, Path("vpn.md"))
    reviewed = parse_article(
        LIFECYCLE_ARTICLE.replace("review_by: 2027-06-18", "review_by: 2028-01-01"), Path("vpn.md")
    )

    assert original.content_hash != reviewed.content_hash
    assert original.fingerprint == reviewed.fingerprint  # the index need not re-embed


BROKEN_LIFECYCLE = {
    "unknown status": (("status: published", "status: live"), "status 'live' is not one of"),
    "review date not a date": (("review_by: 2027-06-18", "review_by: soon"), "is not a date"),
    "updated not a date": (("updated: 2026-06-18", "updated: 2026-13-45"), "is not a date"),
    "owner neither Slack id nor email": (
        ("owner: U012ABCDEF", "owner: the network team"),
        "must be a Slack user id",
    ),
    "questions not a list of text": (
        ("  - vpn from home", "  - [nested, list]"),
        "questions must be a list",
    ),
    "audience a mapping": (("audience: employees", "audience: {a: b}"), "must be plain text"),
    "tags a mapping": (("tags: [vpn, remote]", "tags: {vpn: 1}"), "tags must be a list"),
}


@pytest.mark.parametrize(
    ("change", "problem"), BROKEN_LIFECYCLE.values(), ids=BROKEN_LIFECYCLE.keys()
)
def test_bad_life_cycle_fields_are_reported_by_file_name(
    change: tuple[str, str], problem: str
) -> None:
    path = Path("kb/vpn-connect.md")
    text = LIFECYCLE_ARTICLE.replace(*change)
    assert text != LIFECYCLE_ARTICLE

    with pytest.raises(ArticleError) as caught:
        parse_article(text, path)

    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_the_sample_knowledge_base_has_owners_review_dates_and_golden_questions() -> None:
    articles = load_articles(Path(knowledge.__file__).parent / "sample_kb")

    assert all(article.owner and article.review_by for article in articles)
    assert all(article.status == "published" for article in articles)
    assert sum(len(article.questions) for article in articles) >= 10


def test_a_huge_file_is_refused_by_name() -> None:
    huge = LIFECYCLE_ARTICLE + "A pasted log line.\n" * 40_000

    with pytest.raises(ArticleError, match="more than the 500,000 allowed") as caught:
        parse_article(huge, Path("kb/pasted-log.md"))

    assert "kb/pasted-log.md" in str(caught.value)


# -- links ---------------------------------------------------------------------------------


def test_an_article_links_to_its_own_url_else_to_the_base_url_and_its_path(
    tmp_path: Path,
) -> None:
    kb = tmp_path / "kb"
    own = VPN_ARTICLE.replace("audience:", "url: https://wiki.example/vpn?x=1&y=2\naudience:")
    (kb / "accounts").mkdir(parents=True)
    (kb / "vpn.md").write_text(own, encoding="utf-8")
    (kb / "accounts" / "pass word.md").write_text(
        VPN_ARTICLE.replace("vpn-connect", "reset"), encoding="utf-8"
    )
    vpn, reset = sorted(load_articles(kb), key=lambda article: article.id != "vpn-connect")

    assert vpn.url == "https://wiki.example/vpn?x=1&y=2"
    assert article_link(vpn, kb, "https://kb.example/it/") == vpn.url
    assert reset.url is None
    assert (
        article_link(reset, kb, "https://kb.example/it/")
        == "https://kb.example/it/accounts/pass%20word.md"
    )
    assert article_link(reset, kb, "https://kb.example/it") == (
        "https://kb.example/it/accounts/pass%20word.md"
    )
    assert article_link(reset, kb, None) is None


HOSTILE_URLS = {
    "ends the link": "https://wiki.example/a>b",
    "renames the link": "https://wiki.example/a|<!channel>",
    "javascript": "javascript:alert(1)",
    "no scheme": "wiki.example/vpn",
    "ftp": "ftp://wiki.example/vpn",
    "a space": "https://wiki.example/a b",
}


@pytest.mark.parametrize("url", HOSTILE_URLS.values(), ids=HOSTILE_URLS.keys())
def test_a_url_that_is_not_a_plain_web_address_is_refused_by_file_name(url: str) -> None:
    text = VPN_ARTICLE.replace("audience:", f"url: '{url}'\naudience:")

    with pytest.raises(ArticleError, match="url") as caught:
        parse_article(text, Path("kb/vpn-connect.md"))

    assert "kb/vpn-connect.md" in str(caught.value)
    assert "http" in str(caught.value) or "'>'" in str(caught.value)


def test_audience_is_everyone_or_the_it_agents_and_nothing_tier0_cannot_check() -> None:
    def audience_of(value: str) -> Article:
        return parse_article(VPN_ARTICLE.replace("audience: everyone", value), Path("vpn.md"))

    public, internal = audience_of("audience: Everyone"), audience_of("audience: agents")
    unset = audience_of("")

    assert (public.audience, public.internal) == ("everyone", False)
    assert (unset.audience, unset.internal) == ("everyone", False)
    assert (internal.audience, internal.internal) == ("agents", True)
    # The index tells internal articles by their fingerprint; a public one's is as before.
    assert internal.fingerprint != public.fingerprint == unset.fingerprint
    with pytest.raises(ArticleError, match="audience 'managers' is not one tier0 can check"):
        audience_of("audience: managers")
