"""Agents work their queue from Slack: assign a ticket to a colleague, change its priority,
escalate it to L2, list the team's queue and today's figures; everyone sees SLA targets,
and SLA warnings and breaches reach the ticket's triage thread."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.background import build_scheduler
from tests.conftest import TEST_BOT_TOKEN
from tests.fake_slack import SlackCall
from tests.slack.conftest import (
    AGENT,
    DM_CHANNEL,
    EMPLOYEE,
    OTHER_AGENT,
    SlackDesk,
    as_shown,
    button,
    eventually,
)
from tickets.delivery import OutboxDelivery, SlackSender, make_slack_client
from tickets.directory import Directory
from tickets.models import SlaClock, SlaKind, Ticket, utc_now
from tickets.outbox import OutboxChannel

L1 = "Service Desk L1"
L2 = "Service Desk L2"
L2_AGENT = "UL2AGENT1"
COLLEAGUE = "UCOLLEAGUE"


def staff_the_desk(slack: SlackDesk) -> None:
    """The desk's directory: two L1 agents and one L2 agent."""
    directory = Directory(slack.tier0.session_factory)
    directory.register_user(AGENT, name="Ada Agent", roles=["agent"], team=L1)
    directory.register_user(OTHER_AGENT, name="Bo Agent", roles=["agent"], team=L1)
    directory.register_user(L2_AGENT, name="Cy Specialist", roles=["agent"], team=L2)


def a_ticket_in_triage(slack: SlackDesk, ts: str, text: str) -> tuple[dict[str, Any], str]:
    """An employee's DM becomes a ticket: its triage post (as Slack shows it) and number."""
    before = len(slack.api.calls_to("chat.postMessage"))
    slack.direct_message(text, ts=ts)
    posts = slack.api.wait_for("chat.postMessage", count=before + 2)
    triage = next(p for p in posts[before:] if p.args["channel"] == "it-triage")
    number = next(
        t.number
        for t in slack.tier0.tickets.list_for_requester(EMPLOYEE)
        if t.requester_thread_ts == ts
    )
    eventually(lambda: slack.tier0.tickets.get(number).triage_ts is not None)
    return {**as_shown(triage), "args": triage.args}, number


def choose(
    slack: SlackDesk,
    user: str,
    message: dict[str, Any],
    action_id: str,
    *,
    selected_user: str | None = None,
    option: str | None = None,
    action_ts: str | None = None,
) -> None:
    """Pick in one of the triage post's selects, as Slack sends it (signed)."""
    block = next(
        b
        for b in message["blocks"]
        if b["type"] == "actions" and any(e["action_id"] == action_id for e in b["elements"])
    )
    action: dict[str, Any] = {
        "block_id": block["block_id"],
        "action_id": action_id,
        "action_ts": action_ts or str(time.time()),
    }
    if selected_user is not None:
        action |= {"type": "users_select", "selected_user": selected_user}
    else:
        action |= {"type": "static_select", "selected_option": {"value": option}}
    shown = {key: value for key, value in message.items() if key != "args"}
    slack.send_form(
        {
            "type": "block_actions",
            "team": {"id": "TNORTHWIND"},
            "user": {"id": user},
            "api_app_id": "ATIER0",
            "trigger_id": "trigger-select",
            "channel": {"id": "CTRIAGE"},
            "container": {"type": "message", "message_ts": message["ts"]},
            "message": shown,
            "actions": [action],
        }
    )


def deliver_outbox(
    slack: SlackDesk, now: datetime | None = None, *, since: int = 0
) -> list[SlackCall]:
    """Run the worker's delivery (as `tier0 worker` does) at `now` and let the desk's own
    delivery thread finish too; the calls made since the call numbered `since`."""
    delivery = OutboxDelivery(
        slack.tier0.session_factory,
        {OutboxChannel.SLACK: SlackSender(make_slack_client(TEST_BOT_TOKEN, slack.api.base_url))},
        clock=(lambda: now) if now is not None else utc_now,
    )
    outcome = delivery.deliver_all_due()
    assert outcome.errors == [] and outcome.dead == 0
    deadline = time.monotonic() + 10
    while slack.service.sends.pending() and time.monotonic() < deadline:
        time.sleep(0.05)
    return slack.api.calls[since:]


def wait_for_card_in(slack: SlackDesk, channel: str, since: int) -> SlackCall:
    """The first message with blocks posted in `channel` after the call numbered `since`."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for call in slack.api.calls[since:]:
            if (
                call.method == "chat.postMessage"
                and call.args.get("channel") == channel
                and call.args.get("blocks")
            ):
                return call
        time.sleep(0.02)
    raise AssertionError(f"nothing was posted in {channel}")


def resolution_due(slack: SlackDesk, number: str) -> datetime:
    clocks = slack.tier0.tickets.sla(number, as_user=AGENT)
    [due] = [c.due_at for c in clocks if c.kind is SlaKind.RESOLUTION]
    assert due is not None
    return due


def slack_date(when: datetime) -> str:
    return f"<!date^{int(when.timestamp())}^"


def triage_controls_shown(blocks: list[dict[str, Any]]) -> set[str]:
    return {
        element["action_id"]
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
    }


# -- the triage post ------------------------------------------------------------------------


def test_the_triage_post_shows_the_sla_due_and_every_way_to_work_the_ticket(
    slack: SlackDesk,
) -> None:
    staff_the_desk(slack)
    triage, number = a_ticket_in_triage(
        slack, "1700000601.000001", "my laptop screen is cracked, please send someone"
    )
    shown = json.dumps(triage["blocks"])
    assert number in shown and f"<@{EMPLOYEE}>" in shown and "cracked" in shown
    assert "*SLA due*" in shown and slack_date(resolution_due(slack, number)) in shown
    assert L1 in shown  # the team that owns it
    assert triage_controls_shown(triage["blocks"]) == {
        "claim_ticket",
        "resolve_ticket",
        "internal_note",
        "escalate_ticket",
        "assign_ticket",
        "set_priority",
    }
    # The requester was told the number and the SLA in their thread.
    told = next(
        c for c in slack.api.calls_to("chat.postMessage") if c.args["channel"] == DM_CHANNEL
    )
    assert number in told.args["text"]
    assert slack_date(resolution_due(slack, number)) in told.args["text"]


# -- Assign… --------------------------------------------------------------------------------


def test_an_agent_assigns_the_ticket_to_a_colleague(slack: SlackDesk) -> None:
    staff_the_desk(slack)
    triage, number = a_ticket_in_triage(
        slack, "1700000602.000001", "my laptop screen is cracked, please send someone"
    )

    since = len(slack.api.calls)
    choose(slack, AGENT, triage, "assign_ticket", selected_user=OTHER_AGENT)

    [updated] = slack.api.wait_for("chat.update")
    assert (updated.args["channel"], updated.args["ts"]) == ("CTRIAGE", triage["ts"])
    assert f"*Assignee*\\n<@{OTHER_AGENT}>" in json.dumps(updated.args["blocks"])
    ticket = slack.tier0.tickets.get(number)
    assert ticket.assignee == OTHER_AGENT and ticket.status == "in_progress"
    assert "claim_ticket" not in triage_controls_shown(updated.args["blocks"])

    # The worker tells the requester in their thread and the new assignee in a DM.
    delivered = [c for c in deliver_outbox(slack, since=since) if c.method == "chat.postMessage"]
    requester = [c for c in delivered if c.args["channel"] == DM_CHANNEL]
    assert [c.args["thread_ts"] for c in requester] == ["1700000602.000001"]
    assert "Bo Agent from IT is now working on" in requester[0].args["text"]
    assignee = [c for c in delivered if c.args["channel"] == OTHER_AGENT]
    assert len(assignee) == 1 and number in assignee[0].args["text"]
    assert "Ada Agent assigned you" in assignee[0].args["text"]


def test_the_same_click_delivered_twice_assigns_once(slack: SlackDesk) -> None:
    staff_the_desk(slack)
    triage, number = a_ticket_in_triage(
        slack, "1700000611.000001", "my laptop screen is cracked, please send someone"
    )
    since = len(slack.api.calls)
    for _ in range(2):
        choose(slack, AGENT, triage, "assign_ticket", selected_user=OTHER_AGENT, action_ts="1.5")
    slack.api.wait_for("chat.update")
    time.sleep(1.0)  # the second delivery had its chance to act
    assert len(slack.api.calls_to("chat.update")) == 1
    assert slack.tier0.tickets.get(number).assignee == OTHER_AGENT
    told = [c for c in deliver_outbox(slack, since=since) if c.args.get("channel") == DM_CHANNEL]
    assert len(told) == 1


def test_only_an_agent_can_be_assigned(slack: SlackDesk) -> None:
    staff_the_desk(slack)
    triage, number = a_ticket_in_triage(
        slack, "1700000603.000001", "my laptop screen is cracked, please send someone"
    )
    choose(slack, AGENT, triage, "assign_ticket", selected_user=COLLEAGUE)
    [refusal] = slack.api.wait_for("chat.postEphemeral")
    assert refusal.args["user"] == AGENT and "is not an agent" in refusal.args["text"]
    assert slack.tier0.tickets.get(number).assignee is None
    assert slack.api.calls_to("chat.update") == []


# -- Priority… ------------------------------------------------------------------------------


def test_an_agent_raises_the_priority_and_the_sla_due_moves(slack: SlackDesk) -> None:
    staff_the_desk(slack)
    triage, number = a_ticket_in_triage(
        slack, "1700000604.000001", "my laptop screen is cracked, please send someone"
    )
    before = slack.tier0.tickets.get(number)
    due_before = resolution_due(slack, number)
    assert before.priority != "P1"

    since = len(slack.api.calls)
    choose(slack, AGENT, triage, "set_priority", option=f"{number}:high:high")

    [updated] = slack.api.wait_for("chat.update")
    assert updated.args["ts"] == triage["ts"]
    assert slack.tier0.tickets.get(number).priority == "P1"
    due_after = resolution_due(slack, number)
    assert due_after < due_before  # P1 is resolved within 4 hours, around the clock
    shown = json.dumps(updated.args["blocks"], ensure_ascii=False)
    assert f"{number} · P1" in shown and slack_date(due_after) in shown
    assert slack_date(due_before) not in shown
    priority_select = next(
        e
        for b in updated.args["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "set_priority"
    )
    assert priority_select["initial_option"]["value"] == f"{number}:high:high"
    assert "P1: high impact × high urgency" in shown

    # The team hears of it in its channel.
    delivered = [c for c in deliver_outbox(slack, since=since) if c.method == "chat.postMessage"]
    assert [c.args["channel"] for c in delivered] == ["it-triage"]
    assert f"{number} is now P1 (was {before.priority})" in delivered[0].args["text"]


# -- Escalate to L2 -------------------------------------------------------------------------


def test_an_agent_escalates_to_l2_and_the_ticket_moves_to_the_l2_channel(
    slack: SlackDesk,
) -> None:
    staff_the_desk(slack)
    triage, number = a_ticket_in_triage(
        slack, "1700000605.000001", "my laptop screen is cracked, please send someone"
    )
    args = triage.pop("args")
    slack.click(AGENT, triage, "CTRIAGE", button(args, "escalate_ticket"))
    [form] = slack.api.wait_for("views.open")
    assert form.args["view"]["callback_id"] == "escalate_ticket"
    assert L2 in json.dumps(form.args["view"])

    # The service wants a reason: an empty one is sent back to the form.
    _status, body = slack.submit_view(form.response["view"], {"reason": "  "}, user=AGENT)
    assert json.loads(body)["response_action"] == "errors"

    since = len(slack.api.calls)
    slack.submit_view(form.response["view"], {"reason": "Needs a board swap <!here>"}, user=AGENT)

    # The L2 team gets the ticket's post, with the buttons, in its channel...
    l2_post = wait_for_card_in(slack, "it-l2", since)
    assert l2_post.args["channel"] == "it-l2"
    controls = triage_controls_shown(l2_post.args["blocks"])
    assert {"resolve_ticket", "assign_ticket", "set_priority"} <= controls
    assert "escalate_ticket" not in controls  # L2 is the top tier
    # ...and the L1 post says where it went, without buttons.
    [updated] = slack.api.wait_for("chat.update")
    assert (updated.args["channel"], updated.args["ts"]) == ("CTRIAGE", triage["ts"])
    assert triage_controls_shown(updated.args["blocks"]) == set()
    assert f"<@{AGENT}> escalated it to {L2}: now in <#it-l2>" in json.dumps(updated.args["blocks"])

    ticket = slack.tier0.tickets.get(number)
    assert ticket.team == L2 and ticket.tier == "L2"
    assert ticket.assignee == L2_AGENT  # L2 hands tickets to its least-loaded agent
    assert (ticket.triage_channel, ticket.triage_ts) == ("it-l2", l2_post.response["ts"])

    # The worker tells both teams and the requester; the agent's text stays text.
    delivered = [
        c
        for c in deliver_outbox(slack, since=since)
        if c.method == "chat.postMessage" and c is not l2_post
    ]
    channels = sorted(c.args["channel"] for c in delivered)
    assert channels == sorted([DM_CHANNEL, L2_AGENT, "it-l2", "it-triage"])
    for call in delivered:
        assert "<!here>" not in json.dumps(call.args)
    team_posts = [c for c in delivered if c.args["channel"] in ("it-l2", "it-triage")]
    assert all(f"escalated from {L1} to {L2}" in c.args["text"] for c in team_posts)
    requester = next(c for c in delivered if c.args["channel"] == DM_CHANNEL)
    assert requester.args["thread_ts"] == "1700000605.000001"
    assert "L2 specialists" in requester.args["text"]

    # The requester's next reply reaches the L2 team's thread.
    slack.send_event(
        {
            "type": "message",
            "channel_type": "im",
            "channel": DM_CHANNEL,
            "user": EMPLOYEE,
            "text": "it also smells burnt",
            "ts": "1700000605.000009",
            "thread_ts": "1700000605.000001",
        }
    )
    relayed = slack.api.wait_for("chat.postMessage", count=4 + len(delivered))[-1]
    assert relayed.args["channel"] == "it-l2"
    assert relayed.args["thread_ts"] == l2_post.response["ts"]
    assert "smells burnt" in relayed.args["text"]


# -- only agents ----------------------------------------------------------------------------


def test_someone_who_is_not_an_agent_is_refused_every_triage_control(slack: SlackDesk) -> None:
    staff_the_desk(slack)
    triage, number = a_ticket_in_triage(
        slack, "1700000606.000001", "my laptop screen is cracked, please send someone"
    )
    args = triage.pop("args")
    choose(slack, COLLEAGUE, {**triage, "args": args}, "assign_ticket", selected_user=COLLEAGUE)
    choose(slack, COLLEAGUE, {**triage, "args": args}, "set_priority", option=f"{number}:high:high")
    slack.click(COLLEAGUE, triage, "CTRIAGE", button(args, "escalate_ticket"))

    refusals = slack.api.wait_for("chat.postEphemeral", count=3)
    assert {r.args["user"] for r in refusals} == {COLLEAGUE}
    assert all("Only IT agents" in r.args["text"] for r in refusals)
    ticket = slack.tier0.tickets.get(number)
    assert ticket.assignee is None and ticket.priority != "P1" and ticket.team == L1
    assert slack.api.calls_to("chat.update") == [] and slack.api.calls_to("views.open") == []


def test_a_channel_agent_outside_the_ticket_team_hears_the_services_refusal(
    slack: SlackDesk,
) -> None:
    """In the triage channel but not in the directory: the ticket service, which knows the
    teams, refuses the change, and says why."""
    staff_the_desk(slack)
    triage, number = a_ticket_in_triage(
        slack, "1700000612.000001", "my laptop screen is cracked, please send someone"
    )
    choose(slack, "UAGENT03", triage, "set_priority", option=f"{number}:high:high")
    [refusal] = slack.api.wait_for("chat.postEphemeral")
    assert refusal.args["user"] == "UAGENT03"
    assert f"can change the priority of {number}" in refusal.args["text"]
    assert slack.tier0.tickets.get(number).priority != "P1"
    assert slack.api.calls_to("chat.update") == []


# -- /helpdesk queue and /helpdesk stats ----------------------------------------------------


def test_helpdesk_queue_lists_the_agents_team_tickets_most_urgent_first(
    slack: SlackDesk,
) -> None:
    staff_the_desk(slack)
    _first, routine = a_ticket_in_triage(
        slack, "1700000607.000001", "my laptop screen is cracked, please send someone"
    )
    _second, urgent = a_ticket_in_triage(
        slack, "1700000607.000002", "my monitor <b>flickers</b>, please send someone"
    )
    slack.tier0.tickets.change_priority(urgent, as_user=AGENT, priority="P1")
    slack.tier0.tickets.claim(urgent, OTHER_AGENT)

    slack.command("queue", user=AGENT, channel="CTRIAGE")
    [listed] = slack.api.wait_for("response_url")
    assert listed.args["response_type"] == "ephemeral"
    lines = [b["text"]["text"] for b in listed.args["blocks"] if b.get("text")]
    assert L1 in lines[0]
    assert lines[1].startswith(f"*{urgent}* · P1 · in progress · <@{OTHER_AGENT}> · due ")
    assert slack_date(resolution_due(slack, urgent)) in lines[1]
    assert "&lt;b&gt;flickers&lt;/b&gt;" in lines[1]  # what the employee wrote stays text
    assert lines[2].startswith(f"*{routine}* · ")
    assert "unassigned" in lines[2] and slack_date(resolution_due(slack, routine)) in lines[2]


def test_helpdesk_queue_is_for_agents_only(slack: SlackDesk) -> None:
    staff_the_desk(slack)
    slack.command("queue", user=COLLEAGUE)
    [refused] = slack.api.wait_for("response_url")
    assert "Only IT agents" in refused.args["text"] and "blocks" not in refused.args

    # A triage-channel member unknown to the directory has no team: told how to get one.
    slack.command("queue", user="UAGENT03", channel="CTRIAGE")
    advice = slack.api.wait_for("response_url", count=2)[-1]
    assert "tier0 user add UAGENT03 --role agent" in advice.args["text"]


def test_helpdesk_stats_gives_todays_figures(slack: SlackDesk) -> None:
    staff_the_desk(slack)
    _first, solved = a_ticket_in_triage(
        slack, "1700000608.000001", "my laptop screen is cracked, please send someone"
    )
    a_ticket_in_triage(slack, "1700000608.000002", "my monitor flickers, please send someone")
    slack.tier0.tickets.claim(solved, AGENT)
    slack.tier0.tickets.resolve(solved, AGENT, "Replaced the screen")

    slack.command("stats", user=AGENT, channel="CTRIAGE")
    [stats] = slack.api.wait_for("response_url")
    assert stats.args["response_type"] == "ephemeral"
    fields = {
        field["text"].split("\n")[0].strip("*"): field["text"].split("\n")[1]
        for block in stats.args["blocks"]
        for field in block.get("fields", [])
    }
    assert fields["Opened"] == "2" and fields["Resolved"] == "1"
    assert fields["Backlog (open now)"] == "1" and fields["SLA breaches"] == "0"
    assert "Deflection" in fields

    slack.command("stats", user=COLLEAGUE)
    refused = slack.api.wait_for("response_url", count=2)[-1]
    assert "Only IT agents" in refused.args["text"]


# -- SLA due in the employees' lists ----------------------------------------------------------


def test_employees_see_the_sla_due_of_their_tickets(slack: SlackDesk) -> None:
    staff_the_desk(slack)
    _triage, number = a_ticket_in_triage(
        slack, "1700000609.000001", "my laptop screen is cracked, please send someone"
    )
    due = slack_date(resolution_due(slack, number))

    slack.command("my tickets")
    [listed] = slack.api.wait_for("response_url")
    assert due in json.dumps(listed.args["blocks"])

    posts = len(slack.api.calls_to("chat.postMessage"))
    slack.direct_message(f"what's the status of {number}", ts="1700000609.000005")
    status = slack.api.wait_for("chat.postMessage", count=posts + 1)[-1]
    assert number in json.dumps(status.args["blocks"]) and due in json.dumps(status.args["blocks"])

    slack.send_event({"type": "app_home_opened", "user": EMPLOYEE, "tab": "home"})
    [home] = slack.api.wait_for("views.publish")
    assert due in json.dumps(home.args["view"])


# -- SLA warnings and breaches -----------------------------------------------------------------


def run_the_worker_sla_job(slack: SlackDesk, at: datetime) -> list[SlackCall]:
    """`tier0 worker`'s SLA job run at `at`, then its delivery: the messages posted."""
    scheduler = build_scheduler(slack.tier0.settings, slack.tier0.session_factory, clock=lambda: at)
    sla_job = next(job for job in scheduler.jobs if job.name == "sla checks")
    since = len(slack.api.calls)
    sla_job.run()
    return [c for c in deliver_outbox(slack, at, since=since) if c.method == "chat.postMessage"]


def test_sla_warnings_and_breaches_reach_the_triage_thread_and_the_team(
    slack: SlackDesk,
) -> None:
    staff_the_desk(slack)
    triage, number = a_ticket_in_triage(
        slack, "1700000610.000001", "my laptop screen is cracked, please send someone"
    )
    slack.tier0.tickets.claim(number, AGENT)  # a first response: only resolution runs on
    with slack.tier0.session_factory() as session:
        warn_at, due = session.execute(
            select(SlaClock.warn_at, SlaClock.due_at)
            .join(Ticket, Ticket.id == SlaClock.ticket_id)
            .where(Ticket.number == number, SlaClock.kind == SlaKind.RESOLUTION.value)
        ).one()
    assert warn_at is not None and due is not None

    # 75 % of the time used: the warning, in the triage thread and to the assignee.
    warned = run_the_worker_sla_job(slack, warn_at + timedelta(minutes=1))
    in_thread = [c for c in warned if c.args.get("thread_ts") == triage["ts"]]
    assert [c.args["channel"] for c in in_thread] == ["CTRIAGE"]
    assert "SLA warning" in in_thread[0].args["text"] and number in in_thread[0].args["text"]
    assert "resolution" in in_thread[0].args["text"]
    assert any(c.args["channel"] == AGENT and "SLA warning" in c.args["text"] for c in warned)
    # The service told the assignee; the team sees it in its channel, from the thread.
    assert in_thread[0].args.get("reply_broadcast") is True

    # Past the target: the breach, in the thread and in the team's channel.
    breached = run_the_worker_sla_job(slack, due + timedelta(minutes=1))
    in_thread = [c for c in breached if c.args.get("thread_ts") == triage["ts"]]
    assert [c.args["channel"] for c in in_thread] == ["CTRIAGE"]
    assert "SLA breached" in in_thread[0].args["text"] and number in in_thread[0].args["text"]
    assert any(
        c.args["channel"] == "it-triage" and "SLA breached" in c.args["text"] for c in breached
    )
    assert not in_thread[0].args.get("reply_broadcast")  # the channel has its own post

    # Each alert is told once: the next run posts nothing.
    assert run_the_worker_sla_job(slack, due + timedelta(minutes=2)) == []
