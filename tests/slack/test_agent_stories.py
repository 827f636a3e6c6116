"""Agents work tickets from the triage channel: claim, resolve with a note; the requester
hears the resolution in their thread and rates the service."""

from __future__ import annotations

import json

from sqlalchemy import select

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
)
from tickets.directory import Directory
from tickets.models import CsatResponse


def escalated(slack: SlackDesk, ts: str) -> tuple[dict[str, object], str]:
    """A ticket in the triage channel: the triage post (as Slack shows it) and its number."""
    slack.direct_message("my laptop screen is cracked, please send someone", ts=ts)
    posts = slack.api.wait_for("chat.postMessage", count=2)
    triage = next(p for p in posts if p.args["channel"] == "it-triage")
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    eventually(lambda: slack.tier0.tickets.get(ticket.number).triage_ts is not None)
    return {**as_shown(triage), "args": triage.args}, ticket.number


def test_an_agent_resolves_with_a_note_and_the_requester_rates_it(slack: SlackDesk) -> None:
    triage, number = escalated(slack, "1700000301.000001")
    args = triage.pop("args")
    assert isinstance(args, dict)
    resolve = button(args, "resolve_ticket")
    assert resolve["value"] == number

    slack.click(AGENT, triage, "CTRIAGE", resolve)
    [form] = slack.api.wait_for("views.open")
    assert form.args["view"]["callback_id"] == "resolve_ticket"

    # An empty note is sent back.
    _status, body = slack.submit_view(form.response["view"], {"resolution": " "}, user=AGENT)
    assert json.loads(body)["response_action"] == "errors"

    slack.submit_view(
        form.response["view"], {"resolution": "Replaced the screen <!channel>"}, user=AGENT
    )
    [updated] = slack.api.wait_for("chat.update")
    assert updated.args["ts"] == triage["ts"]
    shown = json.dumps(updated.args["blocks"])
    assert "resolve_ticket" not in shown and "Replaced the screen" in shown
    resolved = slack.tier0.tickets.get(number)
    assert resolved.status == "resolved" and resolved.assignee == AGENT

    told = slack.api.wait_for("chat.postMessage", count=3)[-1]
    assert told.args["channel"] == DM_CHANNEL
    assert told.args["thread_ts"] == "1700000301.000001"
    assert "<!channel>" not in json.dumps(told.args)  # the agent's text is escaped too
    four = button(told.args, "csat_4")

    slack.click(EMPLOYEE, as_shown(told), DM_CHANNEL, four)
    thanked = slack.api.wait_for("chat.update", count=2)[-1]
    still_offered = [
        element["action_id"]
        for block in thanked.args["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert "rated" in json.dumps(thanked.args["blocks"]) and still_offered == ["csat_comment"]
    # Rating twice is refused politely.
    slack.click(EMPLOYEE, as_shown(told), DM_CHANNEL, four)
    [again] = slack.api.wait_for("chat.postEphemeral")
    assert "already rated 4/5" in again.args["text"]

    # The optional comment: a button under the thanks, a form, kept with the rating.
    rated = {**as_shown(told), "blocks": thanked.args["blocks"]}
    slack.click(EMPLOYEE, rated, DM_CHANNEL, button(thanked.args, "csat_comment"))
    comment_form = slack.api.wait_for("views.open", count=2)[-1]
    assert comment_form.args["view"]["callback_id"] == "csat_comment"
    _status, body = slack.submit_view(comment_form.response["view"], {"comment": "  "})
    assert json.loads(body)["response_action"] == "errors"
    slack.submit_view(comment_form.response["view"], {"comment": "Quick and kind <!channel>"})
    [thanks] = posted_in(slack, DM_CHANNEL, saying="Thanks for your comment")
    assert thanks.args["thread_ts"] == "1700000301.000001"
    with slack.tier0.session_factory() as session:
        rating = session.scalars(select(CsatResponse)).one()
    assert (rating.score, rating.comment) == (4, "Quick and kind <!channel>")


def test_someone_who_is_not_an_agent_cannot_open_the_resolve_form(slack: SlackDesk) -> None:
    triage, _number = escalated(slack, "1700000302.000001")
    args = triage.pop("args")
    assert isinstance(args, dict)
    slack.click("UCOLLEAGUE", triage, "CTRIAGE", button(args, "resolve_ticket"))
    [refusal] = slack.api.wait_for("chat.postEphemeral")
    assert refusal.args["user"] == "UCOLLEAGUE"
    assert slack.api.calls_to("views.open") == []


def test_an_agent_by_the_desk_directory_may_claim_without_being_in_the_channel(
    slack: SlackDesk,
) -> None:
    Directory(slack.tier0.session_factory).register_user("UDIRAGENT", roles=["agent"])
    triage, number = escalated(slack, "1700000303.000001")
    args = triage.pop("args")
    assert isinstance(args, dict)
    slack.click("UDIRAGENT", triage, "CTRIAGE", button(args, "claim_ticket"))
    slack.api.wait_for("chat.update")
    assert slack.tier0.tickets.get(number).assignee == "UDIRAGENT"
    assert slack.api.calls_to("chat.postEphemeral") == []


def test_an_internal_note_stays_with_the_agents(slack: SlackDesk) -> None:
    Directory(slack.tier0.session_factory).register_user(AGENT, roles=["agent"])
    triage, number = escalated(slack, "1700000304.000001")
    args = triage.pop("args")
    assert isinstance(args, dict)
    slack.tier0.tickets.claim(number, AGENT)

    slack.click(AGENT, triage, "CTRIAGE", button(args, "internal_note"))
    [form] = slack.api.wait_for("views.open")
    assert form.args["view"]["callback_id"] == "internal_note"
    slack.submit_view(form.response["view"], {"note": "VIP, handle first"}, user=AGENT)

    # The claim above (made outside Slack) tells the requester through the outbox too.
    def notes() -> list[SlackCall]:
        return [
            call
            for call in slack.api.calls_to("chat.postMessage")
            if call.args["channel"] == "CTRIAGE" and call.args.get("thread_ts") == triage["ts"]
        ]

    eventually(lambda: len(notes()) == 1)
    assert "VIP, handle first" in notes()[0].args["text"]
    [comment] = slack.tier0.tickets.comments(number, as_user=AGENT)
    assert comment.internal and comment.body == "VIP, handle first"
    assert slack.tier0.tickets.comments(number, as_user=EMPLOYEE) == []
    assert not any(
        "VIP" in json.dumps(call.args)
        for call in slack.api.calls_to("chat.postMessage")
        if call.args["channel"] == DM_CHANNEL
    )
