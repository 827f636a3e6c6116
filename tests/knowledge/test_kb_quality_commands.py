"""What tells editors how their articles do: golden questions, feedback, stale reviews, gaps."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.assistant import IncomingMessage
from bot.config import Settings
from bot.runtime import build_tier0
from knowledge.feedback import ArticleFeedbackLog
from knowledge.records import FeedbackKind
from nlu.embedding import SentenceEmbedder
from tests.conftest import TEST_BOT_TOKEN, make_settings
from tests.fake_slack import FakeSlackApi
from tests.knowledge.editors import Editor, article_source, editor_script, write_kb
from tests.knowledge.kb import article_text
from tests.local_smtp import LocalSmtpServer
from tickets.models import utc_now


@pytest.fixture
def editor(home: Path, tmp_path: Path) -> Editor:
    return Editor(home=home, kb=write_kb(tmp_path / "kb"))


# -- golden questions -----------------------------------------------------------------


def test_check_passes_when_every_golden_question_finds_its_article(editor: Editor) -> None:
    editor.kb_command("sync")

    result = editor.kb_command("check")

    assert result.exit_code == 0, result.output
    assert "3 of 3 golden questions find their article first" in result.stdout


def test_an_edit_that_breaks_a_golden_question_is_named_and_fails_the_check(
    editor: Editor, tmp_path: Path
) -> None:
    editor.kb_command("sync", "--author", "alice")
    # Mallory turns the password article into one about printers: the golden question
    # "I forgot my password" now lands elsewhere.
    hijacked = article_source("password-reset").split("# Reset a forgotten password")[0] + (
        "# Printer toner\n\nReplace the toner cartridge in the office printer when the "
        "display shows a low toner warning.\n"
    )
    hijacked = hijacked.replace("title: Reset a forgotten password", "title: Printer toner")
    synced = editor.kb_command(
        "edit", "password-reset", "--author", "mallory", EDITOR=editor_script(tmp_path, hijacked)
    )
    assert synced.exit_code == 0, synced.output  # sync warns, it does not fail
    assert "golden question regressed" in synced.output

    result = editor.kb_command("check", "--json")

    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["checked"] == 3 and report["passed"] == 2
    (failure,) = report["failures"]
    assert failure["article"] == "password-reset"
    assert failure["question"] == "I forgot my password"
    assert failure["first"] is None or failure["first"]["id"] != "password-reset"
    assert failure["culprit"]["article"] == "password-reset"
    assert failure["culprit"]["version"] == 2
    assert failure["culprit"]["author"] == "mallory"

    readable = editor.kb_command("check")
    assert readable.exit_code == 1
    assert "password-reset: 'I forgot my password'" in readable.output
    assert "password-reset v2 (changed by mallory" in readable.output


def test_golden_questions_of_drafts_are_not_checked(editor: Editor) -> None:
    draft = article_source("expense-tool").replace(
        "updated: 2026-11-01", "updated: 2026-11-01\nquestions:\n  - how do I file expenses"
    )
    editor.file("expense-tool").write_text(draft)

    result = editor.kb_command("check", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["checked"] == 3


# -- per-article feedback -------------------------------------------------------------


def test_stats_count_shown_helpful_unhelpful_and_tickets_per_article(
    editor: Editor, embedder: SentenceEmbedder
) -> None:
    settings = make_settings(editor.home, TIER0_KB_DIR=str(editor.kb))
    tier0 = build_tier0(settings, embedder)

    def say(key: str, text: str) -> None:
        tier0.assistant.respond(IncomingMessage(key, "alice", text))

    say("console:alice:1", "how do I connect to the vpn from home")
    say("console:alice:1", "yes that worked")
    say("console:alice:2", "how do I get on the vpn when working from home")
    say("console:alice:2", "no")
    say("console:alice:2", "yes")  # open the ticket
    say("console:alice:3", "vpn from home please")
    tier0.assistant.mark_helpful("console:alice:3", "alice")
    tier0.assistant.mark_helpful("console:alice:3", "alice")  # a double click counts once

    result = editor.kb_command("stats", "--json")

    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    vpn = rows["vpn-connect"]
    assert (vpn["shown"], vpn["helpful"], vpn["not_helpful"]) == (3, 2, 1)
    assert vpn["tickets_after_shown"] == 1
    assert vpn["helpful_rate"] == pytest.approx(2 / 3)
    assert rows["printer-jam"]["shown"] == 0
    table = editor.kb_command("stats")
    assert "vpn-connect" in table.stdout and "67%" in table.stdout


def test_stats_since_a_period_count_only_what_happened_in_it(
    editor: Editor, embedder: SentenceEmbedder
) -> None:
    tier0 = build_tier0(make_settings(editor.home, TIER0_KB_DIR=str(editor.kb)), embedder)
    before_the_edit = ArticleFeedbackLog(
        tier0.tickets.session_factory, clock=lambda: utc_now() - timedelta(days=10)
    )
    before_the_edit.record(FeedbackKind.SHOWN, ["vpn-connect"], conversation_key="c1")
    before_the_edit.record(FeedbackKind.NOT_HELPFUL, ["vpn-connect"], conversation_key="c1")
    tier0.assistant.respond(
        IncomingMessage("console:ann:1", "ann", "how do I connect to the vpn from home")
    )
    tier0.assistant.respond(IncomingMessage("console:ann:1", "ann", "yes that worked"))

    recent = editor.kb_command("stats", "--since", "7d", "--json")
    ever = editor.kb_command("stats", "--json")

    assert recent.exit_code == 0, recent.output
    vpn = next(row for row in json.loads(recent.stdout) if row["id"] == "vpn-connect")
    assert (vpn["shown"], vpn["helpful"], vpn["not_helpful"], vpn["failures"]) == (1, 1, 0, 0)
    vpn = next(row for row in json.loads(ever.stdout) if row["id"] == "vpn-connect")
    assert (vpn["shown"], vpn["helpful"], vpn["not_helpful"], vpn["failures"]) == (2, 1, 1, 1)
    assert "the last 7d" in editor.kb_command("stats", "--since", "7d").stdout
    assert editor.kb_command("stats", "--since", "0d").exit_code == 2


def test_did_this_help_counts_for_the_cited_article_not_the_related_links(
    editor: Editor, embedder: SentenceEmbedder
) -> None:
    (editor.kb / "vpn-slow.md").write_text(
        article_text(
            "vpn-slow",
            "Fix a slow or dropping VPN connection from home",
            """
            If the VPN from home is slow or keeps dropping, quit GlobalProtect, restart
            your home router and connect again. Try a wired connection.
            """,
        ),
        encoding="utf-8",
    )
    tier0 = build_tier0(make_settings(editor.home, TIER0_KB_DIR=str(editor.kb)), embedder)

    answer = tier0.assistant.respond(
        IncomingMessage("console:bob:1", "bob", "how do I connect to the vpn from home")
    )
    cited, *related = [hit.article_id for hit in answer.articles]
    assert cited == "vpn-connect" and "vpn-slow" in related  # a related link was shown
    tier0.assistant.respond(IncomingMessage("console:bob:1", "bob", "no"))

    rows = {row["id"]: row for row in json.loads(editor.kb_command("stats", "--json").stdout)}

    # The verdict is on the answer whose text was shown and whose source was cited; a
    # link below it was shown, not judged.
    assert (rows["vpn-connect"]["shown"], rows["vpn-connect"]["not_helpful"]) == (1, 1)
    assert (rows["vpn-slow"]["shown"], rows["vpn-slow"]["not_helpful"]) == (1, 0)
    assert rows["vpn-slow"]["helpful_rate"] is None


# -- stale articles -------------------------------------------------------------------


@pytest.fixture
def fake_slack() -> Iterator[FakeSlackApi]:
    api = FakeSlackApi(TEST_BOT_TOKEN).start()
    yield api
    api.stop()


def make_stale(editor: Editor, *article_ids: str) -> None:
    for article_id in article_ids:
        path = editor.file(article_id)
        path.write_text(path.read_text().replace("review_by: 2099-01-01", "review_by: 2020-01-01"))


def test_stale_lists_articles_past_their_review_date(editor: Editor) -> None:
    make_stale(editor, "vpn-connect")

    result = editor.kb_command("stale", "--json")

    assert result.exit_code == 0, result.output
    (stale,) = json.loads(result.stdout)["stale"]
    assert stale["id"] == "vpn-connect" and stale["owner"] == "U0NETWORK1"
    assert stale["days_overdue"] > 365
    assert "vpn-connect" in editor.kb_command("stale").stdout


def test_stale_notify_messages_slack_owners_and_names_those_slack_cannot_reach(
    editor: Editor, fake_slack: FakeSlackApi
) -> None:
    make_stale(editor, "vpn-connect", "printer-jam")

    result = editor.kb_command(
        "stale",
        "--notify",
        SLACK_BOT_TOKEN=TEST_BOT_TOKEN,
        TIER0_SLACK_API_URL=fake_slack.base_url,
    )

    assert result.exit_code == 0, result.output
    (dm,) = fake_slack.calls_to("chat.postMessage")
    assert dm.args["channel"] == "U0NETWORK1"
    assert "vpn-connect" in dm.args["text"] and "2020-01-01" in dm.args["text"]
    assert "Sent U0NETWORK1 a Slack DM about vpn-connect" in result.stdout
    assert (
        "it-workplace@northwind.example cannot be reminded without mail (TIER0_SMTP_HOST)"
        in result.output
    )
    assert dm.args["metadata"]["event_payload"]["outbox_key"].startswith("kb-stale:U0NETWORK1:")

    # Through the outbox: once a day per owner, however often the command runs.
    again = editor.kb_command(
        "stale",
        "--notify",
        SLACK_BOT_TOKEN=TEST_BOT_TOKEN,
        TIER0_SLACK_API_URL=fake_slack.base_url,
    )
    assert again.exit_code == 0, again.output
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


def test_stale_notify_reports_an_owner_slack_would_not_message(
    editor: Editor, fake_slack: FakeSlackApi
) -> None:
    make_stale(editor, "vpn-connect")

    result = editor.kb_command(
        "stale",
        "--notify",
        SLACK_BOT_TOKEN="xoxb-revoked",
        TIER0_SLACK_API_URL=fake_slack.base_url,
    )

    assert result.exit_code == 2
    assert "could not remind U0NETWORK1: Slack refused the message: invalid_auth" in result.output
    # The reminder went through the outbox: it stays owed, for the worker to retry.
    assert "still owed: the worker retries it" in result.output
    assert fake_slack.calls_to("chat.postMessage") == []


def test_stale_notify_without_slack_or_mail_is_a_clear_error(editor: Editor) -> None:
    make_stale(editor, "vpn-connect")

    result = editor.kb_command("stale", "--notify")

    assert result.exit_code == 2
    assert "--notify needs Slack (SLACK_BOT_TOKEN) or mail (TIER0_SMTP_HOST)" in result.output


def test_stale_notify_mails_an_owner_given_as_an_email_address(editor: Editor) -> None:
    make_stale(editor, "vpn-connect", "printer-jam")
    smtp = LocalSmtpServer().start()
    try:
        mail = {
            "TIER0_SMTP_HOST": "127.0.0.1",
            "TIER0_SMTP_PORT": str(smtp.port),
            "TIER0_SMTP_FROM": "it@northwind.test",
        }
        result = editor.kb_command("stale", "--notify", **mail)
        again = editor.kb_command("stale", "--notify", **mail)
        (reminder,) = smtp.wait_for(1)
    finally:
        smtp.stop()

    assert result.exit_code == 0, result.output
    assert reminder["To"] == "it-workplace@northwind.example"
    assert reminder["Subject"] == "1 knowledge article(s) of yours past their review date"
    body = reminder.get_content()
    assert "printer-jam" in body and "2020-01-01" in body and "vpn-connect" not in body
    assert "Sent it-workplace@northwind.example a mail about printer-jam" in result.stdout
    # The Slack owner, with no Slack configured, is named for the editor to tell.
    assert "U0NETWORK1 cannot be reminded without Slack (SLACK_BOT_TOKEN)" in result.output
    assert again.exit_code == 0 and len(smtp.messages) == 1  # once a day per owner


# -- the gap report -------------------------------------------------------------------

ESCALATED = [
    "how do I book a meeting room",
    "how can I reserve a conference room for tomorrow",
    "book a meeting room for 10 people",
    "where do I reserve meeting rooms",
    "my expense report was rejected in concur",
    "concur rejected my travel expenses",
]


def test_gaps_group_unanswered_and_unhelpful_questions_biggest_first(
    editor: Editor, embedder: SentenceEmbedder
) -> None:
    settings: Settings = make_settings(editor.home, TIER0_KB_DIR=str(editor.kb))
    tier0 = build_tier0(settings, embedder)
    for number, question in enumerate(ESCALATED):
        tier0.assistant.respond(IncomingMessage(f"console:bob:{number}", "bob", question))
    # An answer that did not help is a gap too.
    tier0.assistant.respond(IncomingMessage("console:bob:vpn", "bob", "vpn from home"))
    tier0.assistant.respond(IncomingMessage("console:bob:vpn", "bob", "no"))

    result = editor.kb_command("gaps", "--since", "1d", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["questions"] == 7
    rooms, expenses = report["gaps"][0], report["gaps"][1]
    assert rooms["volume"] == 4
    assert set(rooms["samples"]) == set(ESCALATED[:4])
    assert expenses["volume"] == 2
    assert "concur" in " ".join(expenses["samples"])
    unhelpful = [gap for gap in report["gaps"] if "not_helpful" in gap["reasons"]]
    assert unhelpful and unhelpful[0]["nearest_article"]["id"] == "vpn-connect"

    table = editor.kb_command("gaps")
    assert "meeting room" in table.stdout


def test_each_gap_names_the_words_its_nearest_article_never_uses(
    editor: Editor, embedder: SentenceEmbedder
) -> None:
    tier0 = build_tier0(make_settings(editor.home, TIER0_KB_DIR=str(editor.kb)), embedder)
    # Two people get the VPN article for the hotel's wifi and say it did not help: the
    # article only tells how to connect from home.
    for person in ("bob", "cleo"):
        conversation = f"console:{person}:hotel"
        tier0.assistant.respond(
            IncomingMessage(conversation, person, "vpn from the hotel wifi, how do i connect")
        )
        tier0.assistant.respond(IncomingMessage(conversation, person, "no"))

    result = editor.kb_command("gaps", "--json")

    assert result.exit_code == 0, result.output
    (hotel,) = json.loads(result.stdout)["gaps"]
    assert hotel["reasons"] == {"not_helpful": 2}
    nearest = hotel["nearest_article"]
    assert nearest["id"] == "vpn-connect"
    # "vpn", "connect" and "from" are the article's; "how", "do", "i", "the" say nothing.
    assert nearest["missing_words"] == ["hotel", "wifi"]
    table = editor.kb_command("gaps")
    assert "hotel, wifi" in table.stdout


def test_gaps_with_nothing_escalated_and_with_a_bad_window(editor: Editor) -> None:
    quiet = editor.kb_command("gaps", "--since", "7d")
    assert quiet.exit_code == 0
    assert "No escalated or unhelpful questions in the last 7d" in quiet.stdout

    bad = editor.kb_command("gaps", "--since", "last week")
    assert bad.exit_code == 2
    assert "--since takes a period like 30d, 8w or 12h" in bad.output

    empty = editor.kb_command("gaps", "--since", "0d")
    assert empty.exit_code == 2
    assert "the period must be at least 1h" in empty.output


def test_gaps_count_general_tickets_opened_outside_a_conversation_but_not_requests(
    editor: Editor, embedder: SentenceEmbedder
) -> None:
    tier0 = build_tier0(make_settings(editor.home, TIER0_KB_DIR=str(editor.kb)), embedder)
    # An agent logs two phone calls about the same thing, and a hardware request.
    tier0.tickets.open_ticket(
        requester="carl", title="How do I book a meeting room?", description=""
    )
    tier0.tickets.open_ticket(requester="dina", title="reserve a conference room", description="")
    tier0.tickets.open_ticket(
        requester="erik", title="laptop screen cracked", description="", category="hardware"
    )

    result = editor.kb_command("gaps", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["questions"] == 2
    (rooms,) = report["gaps"]
    assert rooms["volume"] == 2 and rooms["reasons"] == {"ticket": 2}


def test_feedback_a_store_cannot_take_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class NoStore:
        def begin(self) -> object:
            raise OSError("the database is down")

    log = ArticleFeedbackLog(NoStore())  # type: ignore[arg-type]

    with caplog.at_level(logging.ERROR, logger="knowledge.feedback"):
        log.record_quietly(FeedbackKind.SHOWN, ["vpn-connect"], conversation_key="c1")
    with pytest.raises(OSError):
        log.record(FeedbackKind.SHOWN, ["vpn-connect"], conversation_key="c1")

    assert "could not record shown feedback for c1" in caplog.text
