"""An agent's click changes the ticket and causes Slack messages (the triage card's edit,
the requester's news): both are one unit of work. A replica dying right after the ticket
service commits loses none of the messages, and the same interaction handled again
doubles none."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.fake_slack import SlackCall
from tests.slack.conftest import (
    AGENT,
    DM_CHANNEL,
    EMPLOYEE,
    SlackDesk,
    as_shown,
    button,
    eventually,
    posted_in,
    settled,
    updates_of,
)
from tickets.service import TicketService


class ReplicaDied(RuntimeError):
    """The process stopped right after the ticket service committed."""


def dies_after_commit(
    monkeypatch: pytest.MonkeyPatch, tickets: TicketService, step: str
) -> list[int]:
    """The next call of `step` commits, then the replica "dies" before the desk goes on."""
    original: Callable[..., Any] = getattr(tickets, step)
    deaths: list[int] = []

    def committed_then_died(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if not deaths:
            deaths.append(1)
            raise ReplicaDied(f"died right after {step} committed")
        return result

    monkeypatch.setattr(tickets, step, committed_then_died)
    return deaths


def a_ticket_in_triage(slack: SlackDesk, ts: str) -> tuple[dict[str, Any], str]:
    slack.direct_message("my laptop screen is cracked, please send someone", ts=ts)
    [triage] = posted_in(slack, "it-triage")
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    eventually(lambda: slack.tier0.tickets.get(ticket.number).triage_ts is not None)
    return {**as_shown(triage), "args": triage.args}, ticket.number


def in_requester_thread(slack: SlackDesk, ts: str, saying: str) -> list[SlackCall]:
    return [
        call
        for call in slack.api.calls_to("chat.postMessage")
        if call.args["channel"] == DM_CHANNEL
        and call.args.get("thread_ts") == ts
        and saying in str(call.args.get("text"))
    ]


def test_a_claim_whose_replica_dies_after_the_commit_still_reaches_slack_once(
    slack: SlackDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = "1700000901.000001"
    triage, number = a_ticket_in_triage(slack, thread)
    died = dies_after_commit(monkeypatch, slack.tier0.tickets, "claim")
    claim = button(triage["args"], "claim_ticket")

    slack.click(AGENT, triage, "CTRIAGE", claim, action_ts="1700000902.000100")

    eventually(lambda: bool(died))
    assert slack.tier0.tickets.get(number).assignee == AGENT
    # The claim committed, so the card and the requester's news were owed with it.
    [edit] = updates_of(slack, triage["ts"])
    assert f"<@{AGENT}>" in json.dumps(edit.args["blocks"])
    [told] = posted_in(slack, DM_CHANNEL, saying="is now working on")
    assert told.args["thread_ts"] == thread

    # Slack delivers the same click again, and the agent clicks once more: nothing twice.
    slack.click(AGENT, triage, "CTRIAGE", claim, action_ts="1700000902.000100")
    slack.click(AGENT, triage, "CTRIAGE", claim, action_ts="1700000903.000100")
    eventually(lambda: len(slack.api.calls_to("chat.update")) == 2)
    settled(slack)
    time.sleep(0.5)
    assert len(in_requester_thread(slack, thread, "is now working on")) == 1
    # One edit per click Slack told tier0 about, whatever the deliveries.
    assert len(slack.api.calls_to("chat.update")) == 2


def test_a_resolution_whose_replica_dies_after_the_commit_still_tells_the_requester_once(
    slack: SlackDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = "1700000911.000001"
    triage, number = a_ticket_in_triage(slack, thread)
    slack.click(AGENT, triage, "CTRIAGE", button(triage["args"], "resolve_ticket"))
    [form] = slack.api.wait_for("views.open")
    died = dies_after_commit(monkeypatch, slack.tier0.tickets, "resolve")

    slack.submit_view(form.response["view"], {"resolution": "Replaced the screen"}, user=AGENT)

    eventually(lambda: bool(died))
    assert slack.tier0.tickets.get(number).status == "resolved"
    [edit] = updates_of(slack, triage["ts"])
    assert "Replaced the screen" in json.dumps(edit.args["blocks"])
    [told] = posted_in(slack, DM_CHANNEL, saying="is resolved")
    assert told.args["thread_ts"] == thread
    assert button(told.args, "csat_5")["value"] == f"{number}:5"

    # The same form submitted again is refused; the requester is not told twice.
    slack.submit_view(form.response["view"], {"resolution": "Replaced the screen"}, user=AGENT)
    [refused] = slack.api.wait_for("chat.postEphemeral")
    assert refused.args["user"] == AGENT and "resolved" in refused.args["text"]
    settled(slack)
    assert len(in_requester_thread(slack, thread, "is resolved")) == 1
    assert len(slack.api.calls_to("chat.update")) == 1


def test_a_change_that_rolls_back_sends_nothing(
    slack: SlackDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other half of one unit of work: no change, no message."""
    thread = "1700000921.000001"
    triage, number = a_ticket_in_triage(slack, thread)
    sends = slack.service.sends
    original_update = sends.update
    failures: list[int] = []

    def update_fails_once(*args: Any, **kwargs: Any) -> Any:
        if not failures:
            failures.append(1)
            raise OSError("the store connection dropped while writing the card's edit")
        return original_update(*args, **kwargs)

    monkeypatch.setattr(sends, "update", update_fails_once)

    slack.click(AGENT, triage, "CTRIAGE", button(triage["args"], "claim_ticket"))
    [sorry] = slack.api.wait_for("chat.postEphemeral")
    assert sorry.args["user"] == AGENT and "went wrong" in sorry.args["text"]
    settled(slack)
    assert slack.tier0.tickets.get(number).assignee is None  # the claim rolled back
    assert slack.api.calls_to("chat.update") == []
    assert in_requester_thread(slack, thread, "is now working on") == []

    # Clicking again works.
    slack.click(AGENT, triage, "CTRIAGE", button(triage["args"], "claim_ticket"))
    updates_of(slack, triage["ts"])
    posted_in(slack, DM_CHANNEL, saying="is now working on")
    assert slack.tier0.tickets.get(number).assignee == AGENT


def test_a_rating_whose_replica_dies_after_the_commit_still_thanks_once(
    slack: SlackDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = "1700000931.000001"
    triage, number = a_ticket_in_triage(slack, thread)
    slack.click(AGENT, triage, "CTRIAGE", button(triage["args"], "resolve_ticket"))
    [form] = slack.api.wait_for("views.open")
    slack.submit_view(form.response["view"], {"resolution": "Replaced the screen"}, user=AGENT)
    [told] = posted_in(slack, DM_CHANNEL, saying="is resolved")
    updates_of(slack, triage["ts"])  # the triage card's edit
    died = dies_after_commit(monkeypatch, slack.tier0.tickets, "rate")

    slack.click(EMPLOYEE, as_shown(told), DM_CHANNEL, button(told.args, "csat_4"))

    eventually(lambda: bool(died))
    [thanked] = updates_of(slack, str(told.response["ts"]))
    assert f"You rated {number} 4/5" in json.dumps(thanked.args["blocks"])
    # The same click again is refused politely; the thanks is not edited in twice.
    slack.click(EMPLOYEE, as_shown(told), DM_CHANNEL, button(told.args, "csat_4"))
    # (the first ephemeral is the apology of the replica that "died")
    again = slack.api.wait_for("chat.postEphemeral", count=2)[-1]
    assert "already rated 4/5" in again.args["text"]
    settled(slack)
    assert len(updates_of(slack, str(told.response["ts"]))) == 1

    # The comment under the thanks: its own thank-you survives a crash after its commit.
    rated = {**as_shown(told), "blocks": thanked.args["blocks"]}
    slack.click(EMPLOYEE, rated, DM_CHANNEL, button(thanked.args, "csat_comment"))
    comment_form = slack.api.wait_for("views.open", count=2)[-1]
    died = dies_after_commit(monkeypatch, slack.tier0.tickets, "comment_on_rating")
    slack.submit_view(comment_form.response["view"], {"comment": "Quick and kind"})
    eventually(lambda: bool(died))
    [thanks] = posted_in(slack, DM_CHANNEL, saying="Thanks for your comment")
    assert thanks.args["thread_ts"] == thread


def test_that_solved_it_whose_replica_dies_after_the_commit_still_closes_the_card(
    slack: SlackDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack.direct_message("i forgot my password, how do i reset it", ts="1700000941.000001")
    [card] = posted_in(slack, DM_CHANNEL, showing="feedback_solved")
    assistant = slack.service.desk.assistant
    original: Callable[..., Any] = assistant.mark_helpful
    died: list[int] = []

    def committed_then_died(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        died.append(1)
        raise ReplicaDied("died right after the verdict committed")

    monkeypatch.setattr(assistant, "mark_helpful", committed_then_died)

    slack.click(EMPLOYEE, as_shown(card), DM_CHANNEL, button(card.args, "feedback_solved"))

    eventually(lambda: bool(died))
    [closed] = updates_of(slack, str(card.response["ts"]))
    shown = json.dumps(closed.args["blocks"])
    assert "Marked as solved" in shown and "feedback_solved" not in shown
