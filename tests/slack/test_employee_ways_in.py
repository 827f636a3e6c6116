"""The other ways an employee reaches the desk: /helpdesk, the request form, App Home,
"Talk to a person", the 🎫 reaction and the "Create ticket" shortcut."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.runtime import Tier0
from tests.fake_slack import FakeSlackApi, SlackCall
from tests.knowledge.kb import (
    RUNBOOK_ID,
    RUNBOOK_QUESTION,
    RUNBOOK_WORDS,
    sample_kb_with_an_internal_runbook,
)
from tests.slack.conftest import (
    AGENT,
    DM_CHANNEL,
    EMPLOYEE,
    OTHER_AGENT,
    SlackDesk,
    as_shown,
    button,
    eventually,
    serve_slack,
    settled,
)

HELP_CHANNEL = "CHELP"
COLLEAGUE = "UCOLLEAGUE"


@pytest.fixture
def desk_with_agents(
    make_tier0: Callable[..., Tier0], slack_api: FakeSlackApi
) -> Iterator[SlackDesk]:
    tier0 = make_tier0(
        TIER0_SLACK_API_URL=slack_api.base_url, TIER0_AGENTS=f"{AGENT},{OTHER_AGENT}"
    )
    yield from serve_slack(tier0, slack_api)


def test_helpdesk_with_a_question_answers_it_in_a_direct_message_thread(slack: SlackDesk) -> None:
    status, body = slack.command("how do i reset my forgotten password")
    assert status == 200
    assert json.loads(body)["response_type"] == "ephemeral"

    [opened] = slack.api.wait_for("conversations.open")
    assert opened.args["users"] == EMPLOYEE
    asked, answer = slack.api.wait_for("chat.postMessage", count=2)
    assert asked.args["channel"] == DM_CHANNEL
    assert "how do i reset my forgotten password" in asked.args["text"]
    assert answer.args["channel"] == DM_CHANNEL
    assert answer.args["thread_ts"] == asked.response["ts"]
    assert "Source: `password-reset`" in json.dumps(answer.args["blocks"])


def test_helpdesk_alone_opens_the_request_form_and_submitting_it_opens_a_ticket(
    slack: SlackDesk,
) -> None:
    status, _ = slack.command("")
    assert status == 200
    [opened] = slack.api.wait_for("views.open")
    form = opened.args["view"]
    assert form["callback_id"] == "new_request"
    assert {block["block_id"] for block in form["blocks"]} == {
        "title",
        "description",
        "category",
        "impact",
        "urgency",
        "asset",
    }

    status, body = slack.submit_view(
        opened.response["view"],
        {
            "title": "Laptop will not charge",
            "description": "The charger light is off since this morning.",
            "category": ("select", "hardware"),
            "impact": ("select", "medium"),
            "urgency": ("select", "high"),
            "asset": "NW-0423",
        },
    )
    assert status == 200 and body == ""
    posts = slack.api.wait_for("chat.postMessage", count=3)
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    assert (ticket.title, ticket.category, ticket.priority) == (
        "Laptop will not charge",
        "hardware",
        "P2",
    )
    assert "NW-0423" in ticket.description
    root, number, triage = posts
    assert root.args["channel"] == DM_CHANNEL
    assert number.args["thread_ts"] == root.response["ts"] and ticket.number in number.args["text"]
    assert triage.args["channel"] == "it-triage"
    assert (ticket.requester_channel, ticket.requester_thread_ts) == (
        DM_CHANNEL,
        root.response["ts"],
    )


def test_a_request_form_without_a_title_is_sent_back_with_the_reason(slack: SlackDesk) -> None:
    slack.command("")
    [opened] = slack.api.wait_for("views.open")
    status, body = slack.submit_view(
        opened.response["view"],
        {
            "title": "  ",
            "description": "",
            "category": ("select", "general"),
            "impact": ("select", "low"),
            "urgency": ("select", "medium"),
        },
    )
    assert status == 200
    answer = json.loads(body)
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"title"}
    time.sleep(0.5)
    assert slack.tier0.tickets.list_for_requester(EMPLOYEE) == []


def test_my_tickets_lists_status_and_assignee(slack: SlackDesk) -> None:
    opened = slack.tier0.tickets.open_ticket(
        requester=EMPLOYEE, title="Monitor flickers", description="Monitor flickers", source="slack"
    )
    slack.tier0.tickets.claim(opened.number, AGENT)

    slack.command("my tickets")
    [listed] = slack.api.wait_for("response_url")
    shown = json.dumps(listed.args["blocks"])
    assert opened.number in shown and "in progress" in shown and f"<@{AGENT}>" in shown

    slack.direct_message(f"what's the status of {opened.number}", ts="1700000201.000001")
    # The claim (made outside Slack) is also told to the employee, through the outbox.
    eventually(lambda: len(replies_in_thread(slack, "1700000201.000001")) == 1)
    [reply] = replies_in_thread(slack, "1700000201.000001")
    assert opened.number in json.dumps(reply.args["blocks"])
    assert "Monitor flickers" in json.dumps(reply.args["blocks"])


def test_app_home_shows_my_open_tickets_and_the_popular_articles(slack: SlackDesk) -> None:
    slack.direct_message("how do I reset a forgotten password", ts="1700000202.000001")
    slack.api.wait_for("chat.postMessage")
    opened = slack.tier0.tickets.open_ticket(
        requester=EMPLOYEE, title="Printer jams", description="Printer jams", source="slack"
    )
    slack.tier0.tickets.claim(opened.number, AGENT)
    [resolution_clock] = [
        clock
        for clock in slack.tier0.tickets.sla(opened.number, as_user=EMPLOYEE)
        if clock.kind.value == "resolution"
    ]
    assert resolution_clock.due_at is not None

    slack.send_event(
        {"type": "app_home_opened", "user": EMPLOYEE, "tab": "home", "channel": DM_CHANNEL}
    )
    [published] = slack.api.wait_for("views.publish")
    assert published.args["user_id"] == EMPLOYEE
    home = published.args["view"]
    assert home["type"] == "home"
    shown = json.dumps(home)
    # My open tickets, each with its status, assignee and SLA due.
    assert opened.number in shown and "Printer jams" in shown
    assert "in progress" in shown and f"<@{AGENT}>" in shown
    assert f"<!date^{int(resolution_clock.due_at.timestamp())}^" in shown
    assert "password-reset" in shown  # the article employees were answered with
    assert button({"blocks": home["blocks"]}, "home_new_request")
    assert button({"blocks": home["blocks"]}, "browse_catalog")

    slack.click(EMPLOYEE, {"ts": "0"}, DM_CHANNEL, {"action_id": "home_new_request", "value": ""})
    [form] = slack.api.wait_for("views.open")
    assert form.args["view"]["callback_id"] == "new_request"


def test_talk_to_a_person_opens_a_ticket_and_pings_the_agents(
    desk_with_agents: SlackDesk,
) -> None:
    slack = desk_with_agents
    slack.direct_message("how do i connect to the vpn from home", ts="1700000203.000001")
    [answer] = slack.api.wait_for("chat.postMessage")

    slack.click(EMPLOYEE, as_shown(answer), DM_CHANNEL, button(answer.args, "talk_to_person"))
    posts = slack.api.wait_for("chat.postMessage", count=4)
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    triage = next(p for p in posts if p.args["channel"] == "it-triage" and "blocks" in p.args)
    [ping] = [p for p in posts if "needs someone now" in p.args["text"]]
    assert ping.args["thread_ts"] == triage.response["ts"]
    assert f"<@{AGENT}>" in ping.args["text"] and f"<@{OTHER_AGENT}>" in ping.args["text"]
    assert ticket.number in ping.args["text"]

    # Asking again (or Slack delivering the click again): one ticket, one ping.
    slack.click(EMPLOYEE, as_shown(answer), DM_CHANNEL, button(answer.args, "talk_to_person"))
    slack.api.wait_for("chat.update", count=2)
    settled(slack)
    time.sleep(0.5)
    assert len(slack.tier0.tickets.list_for_requester(EMPLOYEE)) == 1
    pings = [
        p for p in slack.api.calls_to("chat.postMessage") if "needs someone now" in p.args["text"]
    ]
    assert len(pings) == 1


def test_a_ticket_reaction_turns_a_help_channel_message_into_a_ticket_for_its_author(
    slack: SlackDesk,
) -> None:
    slack.api.seed_message(
        HELP_CHANNEL,
        {
            "type": "message",
            "user": COLLEAGUE,
            "text": "the printer on floor 3 says paper jam but there is no paper stuck",
            "ts": "1700000204.000001",
        },
    )
    reaction = {
        "type": "reaction_added",
        "user": AGENT,
        "reaction": "ticket",
        "item_user": COLLEAGUE,
        "item": {"type": "message", "channel": HELP_CHANNEL, "ts": "1700000204.000001"},
        "event_ts": "1700000204.000009",
    }
    for retry in ("", "1", "2"):
        slack.send_event(
            reaction, event_id="EvREACT", headers={"X-Slack-Retry-Num": retry} if retry else {}
        )
    told, triage = slack.api.wait_for("chat.postMessage", count=2)
    [ticket] = slack.tier0.tickets.list_for_requester(COLLEAGUE)
    assert "paper jam" in ticket.title
    assert told.args["channel"] == HELP_CHANNEL
    assert told.args["thread_ts"] == "1700000204.000001"
    assert ticket.number in told.args["text"]
    assert triage.args["channel"] == "it-triage"
    time.sleep(1.0)
    assert len(slack.api.calls_to("chat.postMessage")) == 2

    # Other emoji are just emoji.
    slack.send_event({**reaction, "reaction": "thumbsup", "event_ts": "1700000204.000010"})
    time.sleep(0.5)
    assert len(slack.tier0.tickets.list_for_requester(COLLEAGUE)) == 1


def test_the_create_ticket_shortcut_opens_a_ticket_for_the_messages_author(
    slack: SlackDesk,
) -> None:
    message = {
        "type": "message",
        "user": COLLEAGUE,
        "text": "is anyone else unable to reach the wiki?",
        "ts": "1700000205.000001",
    }
    status, _ = slack.shortcut("create_ticket", AGENT, HELP_CHANNEL, message)
    assert status == 200
    told, _triage = slack.api.wait_for("chat.postMessage", count=2)
    [ticket] = slack.tier0.tickets.list_for_requester(COLLEAGUE)
    assert ticket.title == "is anyone else unable to reach the wiki?"
    assert told.args["thread_ts"] == "1700000205.000001"

    # On a bot's post there is no one to open it for.
    status, _ = slack.shortcut(
        "create_ticket",
        AGENT,
        HELP_CHANNEL,
        {"type": "message", "bot_id": "B1", "text": "x", "ts": "1.2"},
    )
    [refusal] = slack.api.wait_for("chat.postEphemeral")
    assert refusal.args["user"] == AGENT


def test_only_agents_may_claim_and_others_are_told_privately(slack: SlackDesk) -> None:
    slack.direct_message("my laptop screen is cracked, please send someone", ts="1700000206.000001")
    posts = slack.api.wait_for("chat.postMessage", count=2)
    triage = next(p for p in posts if p.args["channel"] == "it-triage")

    slack.click(COLLEAGUE, as_shown(triage), "CTRIAGE", button(triage.args, "claim_ticket"))
    [refusal] = slack.api.wait_for("chat.postEphemeral")
    assert refusal.args["user"] == COLLEAGUE and "Only IT agents" in refusal.args["text"]
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    assert ticket.assignee is None
    assert slack.api.calls_to("chat.update") == []


def replies_in_thread(slack: SlackDesk, thread_ts: str) -> list[SlackCall]:
    return [
        call
        for call in slack.api.calls_to("chat.postMessage")
        if call.args.get("thread_ts") == thread_ts
    ]


@pytest.fixture
def desk_with_a_runbook(
    make_tier0: Callable[..., Tier0], slack_api: FakeSlackApi, tmp_path: Path
) -> Iterator[SlackDesk]:
    kb = sample_kb_with_an_internal_runbook(tmp_path / "kb")
    tier0 = make_tier0(
        TIER0_SLACK_API_URL=slack_api.base_url, TIER0_AGENTS=AGENT, TIER0_KB_DIR=str(kb)
    )
    yield from serve_slack(tier0, slack_api)


def test_an_internal_article_answers_an_agent_and_is_never_shown_to_an_employee(
    desk_with_a_runbook: SlackDesk,
) -> None:
    slack = desk_with_a_runbook
    asked_by = {AGENT: "DAGENT", EMPLOYEE: DM_CHANNEL}
    for number, (user, channel) in enumerate(asked_by.items()):
        ts = f"1700000301.00000{number}"
        message = {"type": "message", "channel_type": "im", "channel": channel, "user": user}
        slack.send_event({**message, "text": RUNBOOK_QUESTION, "ts": ts, "event_ts": ts})
    answers = {
        call.args["channel"]: json.dumps(call.args)
        for call in slack.api.wait_for("chat.postMessage", count=2)
    }

    assert RUNBOOK_ID in answers["DAGENT"]
    assert RUNBOOK_ID not in answers[DM_CHANNEL]
    assert RUNBOOK_WORDS not in answers[DM_CHANNEL]

    # Popular in App Home only for those who may read it.
    for user in asked_by:
        slack.send_event({"type": "app_home_opened", "user": user, "tab": "home"})
    homes = {
        call.args["user_id"]: json.dumps(call.args["view"])
        for call in slack.api.wait_for("views.publish", count=2)
    }
    assert RUNBOOK_ID in homes[AGENT]
    assert RUNBOOK_ID not in homes[EMPLOYEE]
