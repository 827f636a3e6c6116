"""A ticket's two threads: the requester's and the agents' (triage). What one side writes
reaches the other as a ticket comment; an agent's `//` note stays with the agents."""

from __future__ import annotations

import time

from tests.slack.conftest import (
    AGENT,
    DM_CHANNEL,
    EMPLOYEE,
    SlackDesk,
    eventually,
)
from tickets.directory import Directory

DM_THREAD = "1700000401.000001"


def thread_reply(
    slack: SlackDesk, *, channel: str, user: str, thread_ts: str, text: str, ts: str
) -> None:
    slack.send_event(
        {
            "type": "message",
            "channel_type": "im" if channel.startswith("D") else "channel",
            "channel": channel,
            "user": user,
            "text": text,
            "ts": ts,
            "thread_ts": thread_ts,
            "event_ts": ts,
        }
    )


def test_replies_travel_between_the_requester_and_the_agents(slack: SlackDesk) -> None:
    Directory(slack.tier0.session_factory).register_user(AGENT, roles=["agent"])
    slack.direct_message("my laptop screen is cracked, please send someone", ts=DM_THREAD)
    slack.api.wait_for("chat.postMessage", count=2)
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    eventually(lambda: slack.tier0.tickets.get(ticket.number).triage_ts is not None)
    triage = slack.tier0.tickets.get(ticket.number)
    assert triage.triage_channel and triage.triage_ts
    slack.tier0.tickets.claim(ticket.number, AGENT)
    # A claim made outside Slack is told to the requester by the service, via the outbox.
    slack.api.wait_for("chat.postMessage", count=3)

    # The requester adds a detail in their thread: a comment, shown to the agents.
    thread_reply(
        slack,
        channel=DM_CHANNEL,
        user=EMPLOYEE,
        thread_ts=DM_THREAD,
        text="it is the left corner &lt;!here&gt;",
        ts="1700000401.000005",
    )
    to_agents = slack.api.wait_for("chat.postMessage", count=4)[-1]
    assert (to_agents.args["channel"], to_agents.args["thread_ts"]) == (
        triage.triage_channel,
        triage.triage_ts,
    )
    assert "left corner" in to_agents.args["text"] and "<!here>" not in to_agents.args["text"]

    # An agent answers in the triage thread: a public comment, relayed to the requester.
    thread_reply(
        slack,
        channel=triage.triage_channel,
        user=AGENT,
        thread_ts=triage.triage_ts,
        text="A new screen is on its way, I will bring it at 3pm",
        ts="1700000401.000006",
    )
    to_requester = slack.api.wait_for("chat.postMessage", count=5)[-1]
    assert (to_requester.args["channel"], to_requester.args["thread_ts"]) == (DM_CHANNEL, DM_THREAD)
    assert "3pm" in to_requester.args["text"]

    # An internal note stays in the triage thread.
    thread_reply(
        slack,
        channel=triage.triage_channel,
        user=AGENT,
        thread_ts=triage.triage_ts,
        text="// warranty expired, charge to cost centre 42",
        ts="1700000401.000007",
    )
    eventually(lambda: len(slack.tier0.tickets.comments(ticket.number, as_user=AGENT)) == 3)
    time.sleep(0.5)
    assert len(slack.api.calls_to("chat.postMessage")) == 5
    assert "warranty" not in slack.api.posted_text()

    comments = slack.tier0.tickets.comments(ticket.number, as_user=AGENT)
    assert [(c.author, c.internal) for c in comments] == [
        (EMPLOYEE, False),
        (AGENT, False),
        (AGENT, True),
    ]
    assert all(
        "warranty" not in c.body
        for c in slack.tier0.tickets.comments(ticket.number, as_user=EMPLOYEE)
    )


def test_a_reply_in_a_thread_without_a_ticket_is_not_relayed(slack: SlackDesk) -> None:
    thread_reply(
        slack,
        channel="CHELP",
        user=EMPLOYEE,
        thread_ts="1700000402.000001",
        text="thanks all",
        ts="1700000402.000002",
    )
    time.sleep(0.5)
    assert slack.api.calls_to("chat.postMessage") == []
