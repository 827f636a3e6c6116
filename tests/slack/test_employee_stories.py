"""Stories told through Slack: signed requests in, Web API calls out, the store in between."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import BUNDLED_KB_DIR, Settings
from bot.runtime import Tier0
from tests.slack.conftest import (
    AGENT,
    DM_CHANNEL,
    EMPLOYEE,
    OTHER_AGENT,
    FakeSlackApi,
    SlackDesk,
    as_shown,
    button,
    eventually,
    posted_in,
    serve_slack,
)


def test_an_employee_asks_in_a_dm_and_gets_the_right_article_in_the_thread(
    slack: SlackDesk,
) -> None:
    status, _ = slack.direct_message(
        "i forgot my password, how do i reset it", ts="1700000001.000001"
    )
    assert status == 200

    [reply] = slack.api.wait_for("chat.postMessage")
    assert reply.args["channel"] == DM_CHANNEL
    assert reply.args["thread_ts"] == "1700000001.000001"
    rendered = json.dumps(reply.args["blocks"])
    # The card: the article's title, its best passage, where it comes from, the buttons.
    assert "*Reset a forgotten Northwind password*" in rendered
    assert "it.northwind.example/reset" in rendered  # the passage with the steps
    assert "Source: `password-reset`" in rendered
    solved = button(reply.args, "feedback_solved")
    need_help = button(reply.args, "feedback_need_help")
    person = button(reply.args, "talk_to_person")
    assert solved["value"] == need_help["value"] == f"slack:{DM_CHANNEL}:1700000001.000001"
    assert person["value"] == solved["value"]
    assert slack.tier0.tickets.list_for_requester(EMPLOYEE) == []


def test_still_need_help_opens_one_ticket_and_posts_it_to_triage(slack: SlackDesk) -> None:
    slack.direct_message("how do i connect to the vpn from home", ts="1700000002.000001")
    [answer] = slack.api.wait_for("chat.postMessage")

    status, _ = slack.click(
        EMPLOYEE, as_shown(answer), DM_CHANNEL, button(answer.args, "feedback_need_help")
    )
    assert status == 200
    posts = slack.api.wait_for("chat.postMessage", count=3)

    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    assert ticket.number == "T-1001"
    assert ticket.title == "how do i connect to the vpn from home"
    assert ticket.articles_tried[0]["id"] == "vpn-connect"
    assert any("vpn" in turn["text"] for turn in ticket.transcript if turn["role"] == "requester")

    told_requester = [
        p for p in posts if p.args["channel"] == DM_CHANNEL and "T-1001" in p.args["text"]
    ]
    assert told_requester and told_requester[0].args["thread_ts"] == "1700000002.000001"
    [triage] = [p for p in posts if p.args["channel"] == "it-triage"]
    triage_blocks = json.dumps(triage.args["blocks"])
    assert "T-1001" in triage_blocks and f"<@{EMPLOYEE}>" in triage_blocks
    assert "vpn-connect" in triage_blocks  # the articles already tried
    assert button(triage.args, "claim_ticket")["value"] == "T-1001"
    eventually(lambda: slack.tier0.tickets.get("T-1001").triage_ts == triage.response["ts"])

    # The answer's buttons are replaced by what the requester chose.
    [updated] = slack.api.wait_for("chat.update")
    assert updated.args["ts"] == answer.response["ts"]
    assert "actions" not in [block["type"] for block in updated.args["blocks"]]

    # A double click opens nothing more.
    slack.click(EMPLOYEE, as_shown(answer), DM_CHANNEL, button(answer.args, "feedback_need_help"))
    slack.api.wait_for("chat.update", count=2)
    assert len(slack.tier0.tickets.list_for_requester(EMPLOYEE)) == 1
    assert (
        len([p for p in slack.api.calls_to("chat.postMessage") if p.args["channel"] == "it-triage"])
        == 1
    )


def test_that_solved_it_closes_the_question_without_a_ticket(slack: SlackDesk) -> None:
    slack.direct_message("how do i add a printer", ts="1700000003.000001")
    [answer] = slack.api.wait_for("chat.postMessage")
    slack.click(EMPLOYEE, as_shown(answer), DM_CHANNEL, button(answer.args, "feedback_solved"))
    [updated] = slack.api.wait_for("chat.update")
    assert "Marked as solved" in json.dumps(updated.args["blocks"])
    assert slack.tier0.tickets.list_for_requester(EMPLOYEE) == []


def test_an_agent_claims_the_ticket_and_the_requester_hears_who_has_it(slack: SlackDesk) -> None:
    slack.direct_message("my laptop screen is cracked", ts="1700000004.000001")
    posts = slack.api.wait_for("chat.postMessage", count=2)
    [triage] = [p for p in posts if p.args["channel"] == "it-triage"]

    slack.click(AGENT, as_shown(triage), "CTRIAGE", button(triage.args, "claim_ticket"))
    [updated] = slack.api.wait_for("chat.update")
    assert updated.args["channel"] == "CTRIAGE" and updated.args["ts"] == triage.response["ts"]
    assert f"Claimed by <@{AGENT}>" in json.dumps(updated.args["blocks"])
    notice = slack.api.wait_for("chat.postMessage", count=3)[-1]
    assert notice.args["channel"] == DM_CHANNEL and f"<@{AGENT}>" in notice.args["text"]
    assert slack.tier0.tickets.get("T-1001").assignee == AGENT

    slack.click(OTHER_AGENT, as_shown(triage), "CTRIAGE", button(triage.args, "claim_ticket"))
    [ephemeral] = slack.api.wait_for("chat.postEphemeral")
    assert ephemeral.args["user"] == OTHER_AGENT
    assert f"already claimed by <@{AGENT}>" in ephemeral.args["text"]
    assert slack.tier0.tickets.get("T-1001").assignee == AGENT


def test_a_question_the_kb_cannot_answer_offers_a_ticket(slack: SlackDesk) -> None:
    slack.direct_message("when is the summer party this year", ts="1700000005.000001")
    [reply] = slack.api.wait_for("chat.postMessage")
    offer = button(reply.args, "open_ticket")
    slack.click(EMPLOYEE, as_shown(reply), DM_CHANNEL, offer)
    slack.api.wait_for("chat.postMessage", count=3)
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    assert ticket.articles_tried == ()
    assert ticket.title == "when is the summer party this year"


def test_a_bad_signature_is_refused_and_nothing_is_stored(slack: SlackDesk) -> None:
    status, _ = slack.direct_message(
        "my laptop screen is cracked", ts="1700000006.000001", secret="not-the-secret"
    )
    assert status == 401
    status, _ = slack.direct_message(
        "my laptop screen is cracked",
        ts="1700000006.000002",
        headers={"X-Slack-Request-Timestamp": "1000000000"},  # a replayed old request
    )
    assert status == 401
    assert slack.api.calls_to("chat.postMessage") == []
    assert slack.tier0.tickets.list_for_requester(EMPLOYEE) == []
    assert slack.tier0.assistant.conversations.load(f"slack:{DM_CHANNEL}:1700000006.000001") is None


def test_a_retried_event_gets_one_reply_and_opens_one_ticket(slack: SlackDesk) -> None:
    first, _ = slack.direct_message(
        "my laptop won't power on at all", ts="1700000007.000001", event_id="EvRETRY1"
    )
    retry, _ = slack.direct_message(
        "my laptop won't power on at all",
        ts="1700000007.000001",
        event_id="EvRETRY1",
        headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    )
    assert first == retry == 200
    slack.api.wait_for("chat.postMessage", count=2)  # the ticket number and the triage post
    assert len(slack.tier0.tickets.list_for_requester(EMPLOYEE)) == 1
    # Give a wrongly repeated handler the time to show itself.
    time.sleep(1.0)
    assert len(slack.api.calls_to("chat.postMessage")) == 2
    assert len(slack.tier0.tickets.list_for_requester(EMPLOYEE)) == 1


def test_user_text_cannot_ping_channels_or_forge_links(slack: SlackDesk) -> None:
    hostile = "<!channel> my laptop screen is cracked <https://evil.example|click here> <@UBOSS>"
    slack.direct_message(hostile.replace("<", "&lt;").replace(">", "&gt;"), ts="1700000008.000001")
    slack.api.wait_for("chat.postMessage", count=2)
    sent = slack.api.posted_text()
    assert "<!channel>" not in sent
    assert "<https://evil.example" not in sent
    assert "<@UBOSS>" not in sent
    assert "&lt;!channel&gt;" in sent


def test_pasted_secrets_never_reach_the_store_or_the_triage_channel(slack: SlackDesk) -> None:
    slack.direct_message(
        "my laptop screen is cracked. my password is Hunter2Secret! if you need to log in",
        ts="1700000009.000001",
    )
    slack.api.wait_for("chat.postMessage", count=2)
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    assert "Hunter2Secret" not in json.dumps(ticket.transcript) + ticket.title + ticket.description
    assert "Hunter2Secret" not in slack.api.posted_text()


def test_slack_url_verification_is_answered(slack: SlackDesk) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"})
    from tests.slack.conftest import sign

    status, text = slack.post(body, "application/json", sign(body))
    assert status == 200 and "abc123" in text


def test_when_answering_fails_the_message_is_kept_and_a_ticket_is_one_click_away(
    slack: SlackDesk,
) -> None:
    def broken_understanding(text: str) -> None:
        raise RuntimeError("the intent model is unreadable")

    slack.tier0.assistant.interpreter.understand = broken_understanding  # type: ignore[method-assign,assignment]
    slack.direct_message("my vpn drops every five minutes", ts="1700000010.000001")
    [apology] = slack.api.wait_for("chat.postMessage")
    assert "something went wrong" in apology.args["text"]
    offer = button(apology.args, "open_ticket")

    slack.click(EMPLOYEE, as_shown(apology), DM_CHANNEL, offer)
    slack.api.wait_for("chat.postMessage", count=3)
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    assert ticket.title == "my vpn drops every five minutes"


def test_an_at_mention_in_a_help_channel_is_answered_in_its_thread(slack: SlackDesk) -> None:
    slack.send_event(
        {
            "type": "app_mention",
            "channel": "CITHELP",
            "user": EMPLOYEE,
            "text": "<@UTIER0BOT> how do i add a printer on my laptop",
            "ts": "1700000011.000001",
            "event_ts": "1700000011.000001",
        }
    )
    [reply] = slack.api.wait_for("chat.postMessage")
    assert reply.args["channel"] == "CITHELP"
    assert reply.args["thread_ts"] == "1700000011.000001"
    assert "Source: `printer-setup`" in json.dumps(reply.args["blocks"])
    record = slack.tier0.assistant.conversations.load("slack:CITHELP:1700000011.000001")
    assert record is not None
    assert record.transcript[0]["text"] == "how do i add a printer on my laptop"


def test_a_follow_up_in_the_thread_continues_the_same_conversation(slack: SlackDesk) -> None:
    slack.direct_message(
        "outlook on my iphone keeps asking for my password", ts="1700000012.000001"
    )
    slack.api.wait_for("chat.postMessage")
    follow_up = {
        "type": "message",
        "channel_type": "im",
        "channel": DM_CHANNEL,
        "user": EMPLOYEE,
        "text": "no",
        "ts": "1700000012.000009",
        "thread_ts": "1700000012.000001",
    }
    slack.send_event(follow_up)
    [_, offer] = slack.api.wait_for("chat.postMessage", count=2)
    assert offer.args["thread_ts"] == "1700000012.000001"
    assert button(offer.args, "open_ticket")["value"] == f"slack:{DM_CHANNEL}:1700000012.000001"


def test_tier0_does_not_answer_its_own_messages(slack: SlackDesk) -> None:
    slack.send_event(
        {
            "type": "message",
            "channel_type": "im",
            "channel": DM_CHANNEL,
            "user": "UTIER0BOT",
            "bot_id": "BTIER0",
            "text": "I've opened ticket T-1001 for the IT team",
            "ts": "1700000013.000001",
        }
    )
    slack.direct_message("hello", ts="1700000013.000002")  # a real message, to know we waited
    [reply] = slack.api.wait_for("chat.postMessage")
    assert reply.args["thread_ts"] == "1700000013.000002"
    time.sleep(0.5)
    assert len(slack.api.calls_to("chat.postMessage")) == 1


@pytest.fixture
def linked_kb_desk(
    make_tier0: Callable[..., Tier0], slack_api: FakeSlackApi, tmp_path: Path
) -> Iterator[SlackDesk]:
    """The sample KB published on a wiki, its password article with a `url` of its own."""
    kb = tmp_path / "kb"
    shutil.copytree(BUNDLED_KB_DIR, kb)
    reset = kb / "password-reset.md"
    reset.write_text(
        reset.read_text().replace("status:", "url: https://id.northwind.example/help\nstatus:", 1)
    )
    tier0 = make_tier0(
        TIER0_SLACK_API_URL=slack_api.base_url,
        TIER0_KB_DIR=str(kb),
        TIER0_KB_BASE_URL="https://wiki.northwind.example/it-kb/",
    )
    yield from serve_slack(tier0, slack_api)


def test_the_answer_card_links_to_the_article_its_own_url_first_else_the_kb_site(
    linked_kb_desk: SlackDesk,
) -> None:
    desk = linked_kb_desk
    desk.direct_message("i forgot my password, how do i reset it", ts="1700000001.000001")
    [card] = posted_in(desk, DM_CHANNEL, showing="feedback_solved")
    assert "<https://id.northwind.example/help|Reset a forgotten Northwind password>" in (
        json.dumps(card.args["blocks"])
    )

    desk.direct_message("how do i connect to the vpn from home", ts="1700000002.000001")
    [_, card] = posted_in(desk, DM_CHANNEL, showing="feedback_solved", count=2)
    assert (
        "<https://wiki.northwind.example/it-kb/vpn-connect.md|"
        "Connect to Northwind VPN from home or on the road>" in json.dumps(card.args["blocks"])
    )


def test_a_kb_base_url_that_is_not_a_web_address_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="TIER0_KB_BASE_URL 'javascript:alert"):
        Settings(TIER0_KB_BASE_URL="javascript:alert(1)")
