"""What tier0 sends to Slack goes through the notifications outbox: an outage of Slack's
Web API loses nothing and doubles nothing, a thread keeps its order, and an article that
did not help is its owner's news."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from bot.slack.inbox import InboxState
from bot.slack.sends import SLACK_RETRY_POLICY
from knowledge.feedback import ArticleFeedbackLog
from tests.conftest import TEST_BOT_TOKEN
from tests.fake_slack import SlackCall
from tests.slack.conftest import (
    DM_CHANNEL,
    EMPLOYEE,
    SlackDesk,
    as_shown,
    button,
    eventually,
    posted_in,
    settled,
)
from tickets.delivery import OutboxDelivery, SlackSender, make_slack_client
from tickets.models import utc_now
from tickets.outbox import OutboxChannel, OutboxStatus, RetryPolicy, list_messages

QUESTIONS = {
    "1700000501.000001": "i forgot my password, how do i reset it",
    "1700000502.000001": "how do i connect to the vpn from home",
    "1700000503.000001": "my laptop screen is cracked, please send someone",
}


def replies_in(slack: SlackDesk, thread_ts: str) -> list[SlackCall]:
    return [
        call
        for call in slack.api.calls_to("chat.postMessage")
        if call.args.get("thread_ts") == thread_ts
    ]


def quick_retries(slack: SlackDesk) -> None:
    """The outage below lasts seconds, not a minute: retry as often as a test can wait."""
    slack.service.sends.delivery.policy = RetryPolicy(
        first_delay=timedelta(milliseconds=100), max_delay=timedelta(milliseconds=500)
    )


def test_slack_answering_500_then_429_loses_nothing_and_sends_everything_once(
    slack: SlackDesk,
) -> None:
    quick_retries(slack)
    slack.api.fail_with(500, "internal_error")
    for ts, question in QUESTIONS.items():
        status, _ = slack.direct_message(question, ts=ts, event_id=f"EvOUTAGE{ts[-8:-7]}{ts[8:10]}")
        assert status == 200  # tier0 acknowledges: the events are its to answer

    # Slack down: every reply is tried and refused, none is lost.
    eventually(lambda: slack.api.refused_calls >= 6)
    slack.api.fail_with(429, "ratelimited", retry_after=1)
    refused = slack.api.refused_calls
    eventually(lambda: slack.api.refused_calls > refused)
    assert slack.api.calls_to("chat.postMessage") == []
    assert all(
        entry.status is not OutboxStatus.DEAD
        for entry in list_messages(slack.tier0.session_factory)
    )

    slack.api.recover()
    # Each question answered once; the cracked screen also became one ticket on triage.
    for ts in QUESTIONS:
        eventually(lambda ts=ts: len(replies_in(slack, ts)) >= 1)
    eventually(lambda: slack.service.sends.pending() == 0)
    time.sleep(1.0)  # a message sent twice would show by now
    for ts in QUESTIONS:
        assert len([r for r in replies_in(slack, ts) if r.args["channel"] == DM_CHANNEL]) in (
            1,
            2,  # the answer, and for the ticket its number
        )
    texts = [call.args["text"] for call in slack.api.calls_to("chat.postMessage")]
    assert len(texts) == len(set(texts)), "a message reached Slack twice"
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    triage_posts = [
        call
        for call in slack.api.calls_to("chat.postMessage")
        if call.args["channel"] == "it-triage"
    ]
    assert len(triage_posts) == 1 and ticket.number in triage_posts[0].args["text"]
    eventually(lambda: slack.tier0.tickets.get(ticket.number).triage_ts is not None)
    assert slack.tier0.tickets.get(ticket.number).triage_ts == triage_posts[0].response["ts"]


def test_a_minute_long_outage_under_the_real_retry_policy_loses_nothing(
    slack: SlackDesk,
) -> None:
    """The outage lasts a minute of the outbox's clock (500s, then 429s asking to wait),
    retried under the desk's own policy (no shortened delays): nothing goes dead, and
    once Slack is back every message is delivered, once."""
    slack.api.fail_with(500, "internal_error")
    events = {f"EvMINUTE{n}": ts for n, ts in enumerate(QUESTIONS)}
    for (event_id, ts), question in zip(events.items(), QUESTIONS.values(), strict=True):
        status, _ = slack.direct_message(question, ts=ts, event_id=event_id)
        assert status == 200
    eventually(lambda: all(slack.service.inbox.state_of(e) is InboxState.DONE for e in events))
    owed = slack.service.sends.pending()
    assert owed >= len(QUESTIONS)

    # The worker's delivery, on a clock that runs through the minute in 5-second steps.
    start = utc_now()
    now = [start]
    worker = OutboxDelivery(
        slack.tier0.session_factory,
        {OutboxChannel.SLACK: SlackSender(make_slack_client(TEST_BOT_TOKEN, slack.api.base_url))},
        policy=SLACK_RETRY_POLICY,
        clock=lambda: now[0],
    )
    for second in range(0, 61, 5):
        now[0] = start + timedelta(seconds=second)
        if second == 30:
            slack.api.fail_with(429, "ratelimited", retry_after=20)
        worker.deliver_all_due()
    assert slack.api.calls_to("chat.postMessage") == []
    assert slack.service.sends.pending() == owed
    assert not list_messages(slack.tier0.session_factory, status=OutboxStatus.DEAD)

    slack.api.recover()
    now[0] = start + timedelta(minutes=5)  # past every backoff the minute ran up
    worker.deliver_all_due()
    settled(slack)
    time.sleep(0.5)
    posts = slack.api.calls_to("chat.postMessage")
    assert len(posts) == owed
    keys = [call.args["metadata"]["event_payload"]["outbox_key"] for call in posts]
    assert len(keys) == len(set(keys)), "a message reached Slack twice"
    for ts in QUESTIONS:
        assert replies_in(slack, ts)


def test_replies_in_one_thread_reach_slack_in_the_order_they_were_written(
    slack: SlackDesk,
) -> None:
    quick_retries(slack)
    sends = slack.service.sends
    slack.api.fail_with(503, "service_unavailable")
    first = sends.post(DM_CHANNEL, "first", thread_ts="1700000510.000001", key="order:1")
    eventually(lambda: slack.api.refused_calls >= 1)  # the first is now backing off
    slack.api.recover()
    sends.post(DM_CHANNEL, "second", thread_ts="1700000510.000001", key="order:2")
    sends.post(DM_CHANNEL, "elsewhere", thread_ts="1700000511.000001", key="order:3")

    eventually(lambda: len(replies_in(slack, "1700000510.000001")) == 2)
    assert [call.args["text"] for call in replies_in(slack, "1700000510.000001")] == [
        "first",
        "second",
    ]
    assert sends.wait_for(first, timeout=1.0) is not None
    eventually(lambda: len(replies_in(slack, "1700000511.000001")) == 1)


def test_an_article_that_did_not_help_is_its_owners_news_and_counts_as_a_failure(
    slack: SlackDesk,
) -> None:
    # vpn-connect's front matter names its owner by email; Slack knows them by id.
    slack.api.users_by_email["it-network@northwind.example"] = "UNETOWNER"
    feedback = ArticleFeedbackLog(slack.tier0.session_factory)
    before = feedback.stats().get("vpn-connect")
    assert before is None or before.failures == 0

    slack.direct_message("how do i connect to the vpn from home", ts="1700000520.000001")
    [answer] = slack.api.wait_for("chat.postMessage")
    assert "vpn-connect" in json.dumps(answer.args["blocks"])
    slack.click(EMPLOYEE, as_shown(answer), DM_CHANNEL, button(answer.args, "feedback_need_help"))

    def to_owner() -> list[SlackCall]:
        return [
            call
            for call in slack.api.calls_to("chat.postMessage")
            if call.args["channel"] == "UNETOWNER"
        ]

    eventually(lambda: len(to_owner()) == 1)
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    [dm] = to_owner()
    assert ticket.number in dm.args["text"]
    assert "how do i connect to the vpn from home" in dm.args["text"]
    assert "Connect to Northwind VPN" in dm.args["text"]
    # Every article shown is asked after (the others' owners are not in this workspace).
    looked_up = [call.args["email"] for call in slack.api.calls_to("users.lookupByEmail")]
    assert "it-network@northwind.example" in looked_up
    assert feedback.stats()["vpn-connect"].failures == 1

    # Clicking again (or Slack retrying) tells the owner nothing more, counts nothing more.
    slack.click(EMPLOYEE, as_shown(answer), DM_CHANNEL, button(answer.args, "feedback_need_help"))
    slack.api.wait_for("chat.update", count=2)
    time.sleep(0.5)
    assert len(to_owner()) == 1
    assert feedback.stats()["vpn-connect"].failures == 1


def test_an_owner_slack_does_not_know_is_skipped_and_the_ticket_still_opens(
    slack: SlackDesk,
) -> None:
    slack.direct_message("how do i connect to the vpn from home", ts="1700000521.000001")
    [answer] = slack.api.wait_for("chat.postMessage")
    slack.click(EMPLOYEE, as_shown(answer), DM_CHANNEL, button(answer.args, "feedback_need_help"))
    eventually(lambda: len(slack.api.calls_to("users.lookupByEmail")) >= 1)
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    eventually(
        lambda: any(ticket.number in c.args["text"] for c in replies_in(slack, "1700000521.000001"))
    )
    assert not [c for c in slack.api.calls_to("chat.postMessage") if c.args["channel"][0] == "U"]


def test_an_article_owner_is_told_after_a_slack_outage_not_forgotten(slack: SlackDesk) -> None:
    """The owner given by email is looked up when the DM is delivered: a lookup that
    fails because Slack is down is retried with the message."""
    quick_retries(slack)
    slack.api.users_by_email["it-network@northwind.example"] = "UNETOWNER"
    slack.direct_message("how do i connect to the vpn from home", ts="1700000522.000001")
    [answer] = slack.api.wait_for("chat.postMessage")

    slack.api.fail_with(500, "internal_error")
    slack.click(EMPLOYEE, as_shown(answer), DM_CHANNEL, button(answer.args, "feedback_need_help"))
    eventually(lambda: len(slack.tier0.tickets.list_for_requester(EMPLOYEE)) == 1)
    refused = slack.api.refused_calls
    eventually(lambda: slack.api.refused_calls > refused + 3)  # lookups and posts refused
    assert not [
        c for c in slack.api.calls_to("chat.postMessage") if c.args["channel"] == "UNETOWNER"
    ]

    slack.api.recover()
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    [dm] = posted_in(slack, "UNETOWNER")
    assert ticket.number in dm.args["text"] and "Connect to Northwind VPN" in dm.args["text"]
    settled(slack)
    time.sleep(0.5)
    assert len(posted_in(slack, "UNETOWNER")) == 1
