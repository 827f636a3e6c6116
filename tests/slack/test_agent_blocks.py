"""The agents' Slack payloads stay within Block Kit's limits and never carry user markup."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from bot.assistant import Decision, Reply
from bot.slack.blocks import (
    as_payload,
    handed_over_blocks,
    reply_blocks,
    ticket_of_controls,
    triage_blocks,
)
from bot.slack.markup import titled_link
from bot.slack.sla_due import SlaDue, due_words
from bot.slack.views import QUEUE_SHOWN, queue_blocks, stats_blocks
from knowledge.index import SearchHit
from tickets.models import TicketSource, TicketStatus, Tier
from tickets.service import TicketView

HOSTILE = "<!channel> <@U0BOSS> <https://evil.example|payroll> & more " * 80


def ticket(number: str = "T-1001", **changes: object) -> TicketView:
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    view = TicketView(
        id=1,
        number=number,
        requester="UEMPLOYEE1",
        title=HOSTILE,
        description=HOSTILE,
        status=TicketStatus.NEW,
        priority="P3",
        category="hardware",
        source=TicketSource.SLACK,
        transcript=tuple({"role": "requester", "text": HOSTILE} for _ in range(20)),
        articles_tried=(),
        assignee=None,
        resolution=None,
        idempotency_key=None,
        requester_channel=None,
        requester_thread_ts=None,
        triage_channel=None,
        triage_ts=None,
        created_at=now,
        updated_at=now,
        resolved_at=None,
        team="Service Desk L1",
    )
    return replace(view, **changes)  # type: ignore[arg-type]


def test_a_hostile_long_ticket_makes_a_valid_triage_post_with_every_control() -> None:
    due = SlaDue(
        first_response=datetime(2026, 11, 27, 14, 0, tzinfo=UTC),
        resolution=datetime(2026, 12, 2, 14, 0, tzinfo=UTC),
    )
    payload = as_payload(triage_blocks(ticket(), due))  # slack_sdk checks the limits here
    shown = json.dumps(payload)
    for markup in ("<!channel>", "<@U0BOSS>", "<https://evil"):
        assert markup not in shown
    assert "respond by <!date^1795788000^" in shown and "resolve by <!date^1796220000^" in shown
    [controls] = [b for b in payload if b.get("block_id", "").startswith("triage_controls:")]
    assert ticket_of_controls(controls["block_id"]) == "T-1001"
    kinds = {e["action_id"]: e["type"] for e in controls["elements"]}
    assert kinds == {"assign_ticket": "users_select", "set_priority": "static_select"}
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in payload)


def test_only_a_slack_user_is_offered_as_the_current_assignee() -> None:
    def assignee_shown(assignee: str) -> object:
        payload = as_payload(triage_blocks(ticket(assignee=assignee)))
        [select] = [
            e
            for b in payload
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == "assign_ticket"
        ]
        return select.get("initial_user")

    assert assignee_shown("UAGENT1") == "UAGENT1"
    assert assignee_shown("alice") is None  # a console agent has no Slack id


def test_an_l2_ticket_has_no_escalate_button_and_a_handed_over_post_no_buttons() -> None:
    l2 = triage_blocks(ticket(tier=Tier.L2, team="Service Desk L2"))
    assert "escalate_ticket" not in json.dumps(as_payload(l2))
    assert "escalate_ticket" in json.dumps(as_payload(triage_blocks(ticket())))
    handed = as_payload(handed_over_blocks(l2, "⬆️ moved"))
    assert all(b["type"] != "actions" for b in handed)


def test_a_long_queue_stays_within_fifty_blocks_and_says_how_many_are_left() -> None:
    queue = [ticket(f"T-{1000 + n}") for n in range(150)]
    payload = as_payload(queue_blocks(queue, "*Open tickets*", {}))
    assert len(payload) == QUEUE_SHOWN + 2 <= 50
    assert "…and 130 more" in json.dumps(payload, ensure_ascii=False)
    assert "<!channel>" not in json.dumps(payload)


def test_sla_due_words() -> None:
    assert due_words(SlaDue()) == "no SLA target"
    assert "paused" in due_words(SlaDue(paused=True))
    assert due_words(SlaDue(resolution=datetime(2026, 12, 2, 14, 0, tzinfo=UTC))).startswith(
        "due <!date^1796220000^"
    )


def test_stats_before_anyone_asked_anything() -> None:
    payload = as_payload(
        stats_blocks(
            day="Fri 27 Nov (UTC)",
            opened=0,
            resolved=0,
            backlog=0,
            sla_breaches=0,
            questions=0,
            deflected=0,
        )
    )
    assert "no questions yet" in json.dumps(payload)
    asked = as_payload(
        stats_blocks(
            day="d", opened=1, resolved=1, backlog=0, sla_breaches=0, questions=4, deflected=3
        )
    )
    assert "75% (3 of 4 questions)" in json.dumps(asked)


def test_the_answer_card_names_the_related_articles_under_the_best_passage() -> None:
    def hit(article_id: str, title: str, passage: str) -> SearchHit:
        return SearchHit(article_id, title, passage, "", 0.8, f"{article_id}.md", dense_score=0.7)

    reply = Reply(
        text="Reset it yourself",
        decision=Decision.ANSWER,
        articles=(
            hit("password-reset", "Reset a forgotten password", "Open the reset page."),
            hit("mfa-reset", "Reset MFA <!here>", "Ask for a new MFA enrolment."),
        ),
        asks_feedback=True,
    )

    shown = json.dumps(as_payload(reply_blocks(reply, "slack:D1:1.0")))

    assert "*Reset a forgotten password*" in shown and "Open the reset page." in shown
    assert "Related: Reset MFA &lt;!here&gt; (`mfa-reset`)" in shown
    assert "Ask for a new MFA enrolment." not in shown  # only the best passage is quoted


def test_the_answer_card_links_the_titles_of_articles_that_have_a_link() -> None:
    def hit(article_id: str, title: str) -> SearchHit:
        return SearchHit(article_id, title, "Open the page.", "", 0.8, f"{article_id}.md")

    reply = Reply(
        text="Reset it yourself",
        decision=Decision.ANSWER,
        articles=(hit("password-reset", "Reset <a> password"), hit("mfa-reset", "Reset MFA")),
    )
    links = {"password-reset": "https://wiki.example/reset?a=1&b=2"}

    shown = json.dumps(as_payload(reply_blocks(reply, "slack:D1:1.0", links)))

    assert "<https://wiki.example/reset?a=1&amp;b=2|Reset &lt;a&gt; password>" in shown
    assert "Related: Reset MFA (`mfa-reset`)" in shown  # no link known: plain text


def test_a_link_that_would_break_the_markup_is_shown_as_plain_text() -> None:
    assert titled_link("VPN", "https://wiki.example/vpn") == "<https://wiki.example/vpn|VPN>"
    assert titled_link("VPN", "https://x.example/a|<!channel>") == "VPN"
    assert titled_link("VPN", "https://x.example/a>b") == "VPN"
    assert titled_link("VPN", None) == "VPN"
