"""Knowledge editors turn a resolved ticket into an article from Slack: "Save as article
draft" on the ticket's triage thread, then Edit / Publish / Discard in the editors' channel.
A published draft answers employees' questions."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BUNDLED_KB_DIR
from bot.runtime import Tier0
from knowledge.versions import ArticleVersions
from tests.fake_slack import FakeSlackApi
from tests.slack.conftest import (
    AGENT,
    DM_CHANNEL,
    EMPLOYEE,
    SlackDesk,
    as_shown,
    button,
    posted_in,
    serve_slack,
    settled,
    updates_of,
)
from tickets.directory import Directory
from tickets.service import TicketView

EDITOR = "UEDITOR1"
EDITORS = "kb-editors"
PROBLEM = "The plotter in the design studio prints everything in magenta only"
RESOLUTION = "Replaced the cyan cartridge <!channel> and ran the plotter's colour calibration."
QUESTION = "why does the design studio plotter print only magenta"


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    shutil.copytree(BUNDLED_KB_DIR, folder)
    return folder


@pytest.fixture
def desk(
    make_tier0: Callable[..., Tier0], slack_api: FakeSlackApi, kb: Path
) -> Iterator[SlackDesk]:
    tier0 = make_tier0(TIER0_SLACK_API_URL=slack_api.base_url, TIER0_KB_DIR=str(kb))
    Directory(tier0.session_factory).register_user(EDITOR, roles=["editor"])
    yield from serve_slack(tier0, slack_api)


def triage_post(desk: SlackDesk, *, resolved: bool) -> tuple[TicketView, dict[str, Any]]:
    """A ticket with its post in the triage channel, resolved by an agent or not."""
    ticket = desk.tier0.tickets.open_ticket(
        requester=EMPLOYEE, title=PROBLEM, description=PROBLEM, category="hardware", source="slack"
    )
    post = {"type": "message", "ts": f"1700000900.{ticket.id:06d}", "text": ticket.number}
    desk.api.seed_message("CTRIAGE", {**post, "bot_id": "BTIER0"})
    desk.tier0.tickets.record_triage_message(ticket.number, "CTRIAGE", post["ts"])
    if resolved:
        ticket = desk.tier0.tickets.resolve(ticket.number, AGENT, RESOLUTION)
    return ticket, post


def test_an_editor_drafts_edits_and_publishes_an_article_that_then_answers(
    desk: SlackDesk, kb: Path
) -> None:
    ticket, post = triage_post(desk, resolved=True)
    reply = {
        "type": "message",
        "ts": "1700000999.000001",
        "thread_ts": post["ts"],
        "user": AGENT,
        "text": "fixed",
    }

    desk.shortcut("save_article_draft", EDITOR, "CTRIAGE", reply)
    # The requester's resolution notice may reach Slack first: wait for the draft itself.
    [drafted] = posted_in(desk, EDITORS, showing="draft_publish")
    shown = json.dumps(drafted.args["blocks"])
    assert "Replaced the cyan cartridge &lt;!channel&gt;" in shown and "<!channel>" not in shown
    [confirmed] = desk.api.wait_for("chat.postEphemeral")
    assert confirmed.args["user"] == EDITOR and ticket.number in confirmed.args["text"]

    publish = button(drafted.args, "draft_publish")
    article_id = publish["value"]
    assert article_id.endswith(ticket.number.lower())
    assert {button(drafted.args, a)["value"] for a in ("draft_edit", "draft_discard")} == {
        article_id
    }
    source = (kb / f"{article_id}.md").read_text()
    assert "status: draft" in source and 'tags: ["hardware"]' in source
    assert "## Problem" in source and "## Solution" in source and RESOLUTION in source
    [first] = ArticleVersions(desk.tier0.session_factory).history(article_id)
    assert (first.version, first.status, first.author) == (1, "draft", EDITOR)
    assert article_id not in desk.tier0.knowledge.titles()  # a draft answers nothing

    # Someone who is not an editor may not publish it.
    desk.click(EMPLOYEE, as_shown(drafted), EDITORS, publish)
    refusal = desk.api.wait_for("chat.postEphemeral", count=2)[-1]
    assert refusal.args["user"] == EMPLOYEE and "Only knowledge editors" in refusal.args["text"]
    assert "status: draft" in (kb / f"{article_id}.md").read_text()

    # The editor sharpens the title in the edit form.
    desk.click(EDITOR, as_shown(drafted), EDITORS, button(drafted.args, "draft_edit"))
    [form] = desk.api.wait_for("views.open")
    values = {b["block_id"]: b["element"].get("initial_value") for b in form.args["view"]["blocks"]}
    assert values["title"] == PROBLEM and RESOLUTION in values["body"]
    _status, body = desk.submit_view(
        form.response["view"], {"title": "", "body": values["body"]}, user=EDITOR
    )
    assert json.loads(body)["errors"] == {"title": "This cannot be empty."}
    desk.submit_view(
        form.response["view"],
        {"title": "Design studio plotter prints only in magenta", "body": values["body"]},
        user=EDITOR,
    )
    [edited] = updates_of(desk, drafted.response["ts"])
    assert "Design studio plotter prints only in magenta" in json.dumps(edited.args["blocks"])

    desk.click(EDITOR, as_shown(drafted), EDITORS, publish)
    published = updates_of(desk, drafted.response["ts"], count=2)[-1]
    assert "Published by" in json.dumps(published.args["blocks"])
    assert "draft_publish" not in json.dumps(published.args["blocks"])
    history = ArticleVersions(desk.tier0.session_factory).history(article_id)
    assert [(v.version, v.status, v.author) for v in history] == [
        (1, "draft", EDITOR),
        (2, "draft", EDITOR),
        (3, "published", EDITOR),
    ]

    # An employee's question is now answered from it.
    desk.direct_message(QUESTION, ts="1700000999.000100")
    posted_in(desk, DM_CHANNEL, showing=f"`{article_id}`")  # the answer cites the article


def test_discarding_a_draft_removes_its_file_and_keeps_its_history(
    desk: SlackDesk, kb: Path
) -> None:
    _ticket, post = triage_post(desk, resolved=True)
    desk.shortcut("save_article_draft", EDITOR, "CTRIAGE", {**post, "user": "UTIER0BOT"})
    [drafted] = posted_in(desk, EDITORS, showing="draft_discard")
    discard = button(drafted.args, "draft_discard")

    desk.click(EDITOR, as_shown(drafted), EDITORS, discard)
    [gone] = updates_of(desk, drafted.response["ts"])
    assert "discarded by" in json.dumps(gone.args["blocks"])
    assert not (kb / f"{discard['value']}.md").exists()
    history = ArticleVersions(desk.tier0.session_factory).history(discard["value"])
    assert [v.status for v in history] == ["draft", "retired"]


def test_the_shortcut_explains_itself_to_non_editors_and_off_a_resolved_ticket(
    desk: SlackDesk, kb: Path
) -> None:
    _open_ticket, open_post = triage_post(desk, resolved=False)
    stray = {"type": "message", "ts": "1700000950.000001", "user": EMPLOYEE, "text": "lunch?"}

    desk.shortcut("save_article_draft", EMPLOYEE, "CTRIAGE", open_post)
    desk.shortcut("save_article_draft", EDITOR, "CGENERAL", stray)
    desk.shortcut("save_article_draft", EDITOR, "CTRIAGE", open_post)

    told = desk.api.wait_for("chat.postEphemeral", count=3)
    by = {(c.args["user"], c.args["channel"]): c.args["text"] for c in told}
    assert "Only knowledge editors" in by[(EMPLOYEE, "CTRIAGE")]
    assert "not part of a ticket's thread" in by[(EDITOR, "CGENERAL")]
    assert "is not resolved yet" in by[(EDITOR, "CTRIAGE")]
    settled(desk)
    assert [c for c in desk.api.calls_to("chat.postMessage") if c.args["channel"] == EDITORS] == []
    assert sorted(kb.glob("*.md")) == sorted(
        kb / p.name for p in BUNDLED_KB_DIR.glob("*.md")
    )  # nothing written
