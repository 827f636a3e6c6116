"""Priority in Slack follows the desk's impact × urgency matrix: the requester says who is
affected and how urgent it is, the agent corrects either in the triage post's Priority…
control, and everyone sees the same P1–P4 the matrix gives."""

from __future__ import annotations

import json
from typing import Any

from tests.slack.conftest import (
    DM_CHANNEL,
    EMPLOYEE,
    SlackDesk,
    as_shown,
    eventually,
    posted_in,
    updates_of,
)
from tests.slack.test_agent_queue_stories import AGENT, choose, staff_the_desk
from tickets.routing import PRIORITY_MATRIX


def priority_select(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return next(
        element
        for block in blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == "set_priority"
    )


def test_the_requesters_impact_and_urgency_set_the_priority_and_the_agent_corrects_them(
    slack: SlackDesk,
) -> None:
    staff_the_desk(slack)
    slack.command("")
    [opened] = slack.api.wait_for("views.open")
    form = opened.args["view"]
    questions = {b["block_id"]: b for b in form["blocks"]}
    assert questions["impact"]["label"]["text"] == "Who is affected?"
    assert [o["value"] for o in questions["impact"]["element"]["options"]] == [
        "low",
        "medium",
        "high",
    ]
    assert [o["value"] for o in questions["urgency"]["element"]["options"]] == [
        "low",
        "medium",
        "high",
    ]

    # Just me, but I cannot work: the matrix makes that P3.
    slack.submit_view(
        opened.response["view"],
        {
            "title": "Outlook crashes on start",
            "description": "Since the update this morning",
            "category": ("select", "email"),
            "impact": ("select", "low"),
            "urgency": ("select", "high"),
        },
    )
    [triage] = posted_in(slack, "it-triage")
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    assert (ticket.priority, ticket.impact, ticket.urgency) == ("P3", "low", "high")
    [told] = posted_in(slack, DM_CHANNEL, saying=ticket.number)
    assert "It is P3" in told.args["text"]
    card = json.dumps(triage.args["blocks"], ensure_ascii=False)
    assert f"{ticket.number} · P3" in card and "P3: low impact × high urgency" in card
    select = priority_select(triage.args["blocks"])
    assert select["initial_option"]["value"] == f"{ticket.number}:low:high"
    # Every pair of the matrix is offered, under the priority it gives.
    offered = {
        option["value"].split(":", 1)[1]: group["label"]["text"].split(" ")[0]
        for group in select["option_groups"]
        for option in group["options"]
    }
    assert offered == {
        f"{impact.value}:{urgency.value}": priority
        for (impact, urgency), priority in PRIORITY_MATRIX.items()
    }

    # The agent learns the whole finance team is hit: high impact, medium urgency → P2.
    eventually(lambda: slack.tier0.tickets.get(ticket.number).triage_ts is not None)
    choose(
        slack,
        AGENT,
        {**as_shown(triage), "args": triage.args},
        "set_priority",
        option=f"{ticket.number}:high:medium",
    )
    [edit] = updates_of(slack, triage.response["ts"])
    changed = slack.tier0.tickets.get(ticket.number)
    assert (changed.priority, changed.impact, changed.urgency) == ("P2", "high", "medium")
    shown = json.dumps(edit.args["blocks"], ensure_ascii=False)
    assert f"{ticket.number} · P2" in shown and "P2: high impact × medium urgency" in shown
    assert priority_select(edit.args["blocks"])["initial_option"]["value"] == (
        f"{ticket.number}:high:medium"
    )


def test_a_priority_picked_on_a_post_from_before_the_matrix_still_applies(
    slack: SlackDesk,
) -> None:
    """Triage posts already in Slack carry "T-1042:P1" options: a pick there still works."""
    staff_the_desk(slack)
    slack.direct_message("my laptop screen is cracked, please send someone", ts="1700000931.1")
    [triage] = posted_in(slack, "it-triage")
    [ticket] = slack.tier0.tickets.list_for_requester(EMPLOYEE)
    eventually(lambda: slack.tier0.tickets.get(ticket.number).triage_ts is not None)

    choose(
        slack,
        AGENT,
        {**as_shown(triage), "args": triage.args},
        "set_priority",
        option=f"{ticket.number}:P1",
    )
    [edit] = updates_of(slack, triage.response["ts"])
    assert slack.tier0.tickets.get(ticket.number).priority == "P1"
    assert "P1: impact and urgency not assessed yet" in json.dumps(
        edit.args["blocks"], ensure_ascii=False
    )
