"""Changing one front matter field leaves the rest of the editor's file exactly as written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from knowledge.articles import ArticleError, parse_article
from knowledge.editing import new_article_text, set_front_matter_field

WRITTEN = """\
---
id: vpn
title: "VPN: connect"   # quoted because of the colon
tags: [vpn]
status: published
---

# VPN

status: this line is body text, not front matter.
"""


def test_setting_an_existing_field_changes_only_that_line() -> None:
    changed = set_front_matter_field(WRITTEN, "status", "retired", Path("vpn.md"))

    assert changed == WRITTEN.replace("status: published\n---", "status: retired\n---")
    assert parse_article(changed, Path("vpn.md")).status == "retired"


def test_setting_a_missing_field_adds_it_at_the_end_of_the_front_matter() -> None:
    without = WRITTEN.replace("status: published\n", "")

    changed = set_front_matter_field(without, "status", "retired", Path("vpn.md"))

    assert "tags: [vpn]\nstatus: retired\n---" in changed
    assert changed.endswith("status: this line is body text, not front matter.\n")


def test_a_file_without_front_matter_is_named() -> None:
    with pytest.raises(ArticleError, match=r"notes\.md: no YAML front matter"):
        set_front_matter_field("# Notes\n", "status", "retired", Path("notes.md"))


def test_the_new_article_template_is_a_valid_draft_with_no_golden_questions() -> None:
    text = new_article_text("parking", 'Parking: "permits"', "U0FACILITY", dt.date(2026, 11, 23))

    article = parse_article(text, Path("parking.md"))

    assert (article.id, article.title, article.owner) == (
        "parking",
        'Parking: "permits"',
        "U0FACILITY",
    )
    assert article.status == "draft" and not article.searchable
    assert article.review_by == "2027-05-22"
    assert article.questions == ()
