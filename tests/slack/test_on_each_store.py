"""The whole desk on SQLite and on PostgreSQL: question, escalation, a race to claim."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

from tests.slack.conftest import DM_CHANNEL, EMPLOYEE, SlackDesk, as_shown, button


def test_escalation_and_a_race_of_agents_to_claim(slack_on_each_store: SlackDesk) -> None:
    slack = slack_on_each_store
    slack.direct_message("how do i connect to the vpn from home", ts="1700000100.000001")
    [answer] = slack.api.wait_for("chat.postMessage")
    slack.click(EMPLOYEE, as_shown(answer), DM_CHANNEL, button(answer.args, "feedback_need_help"))
    posts = slack.api.wait_for("chat.postMessage", count=3)
    [triage] = [p for p in posts if p.args["channel"] == "it-triage"]
    claim = button(triage.args, "claim_ticket")

    agents = [f"UAGENT{n:02d}" for n in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(
                lambda agent: slack.click(agent, as_shown(triage), "CTRIAGE", claim)[0], agents
            )
        )
    assert statuses == [200] * 8

    updates = slack.api.wait_for("chat.update", count=2)  # the answer's buttons, the triage post
    losers = slack.api.wait_for("chat.postEphemeral", count=7)
    ticket = slack.tier0.tickets.get(claim["value"])
    assert ticket.assignee in agents
    assert sorted(e.args["user"] for e in losers) == sorted(
        a for a in agents if a != ticket.assignee
    )
    claimed_posts = [u for u in updates if u.args["channel"] == "CTRIAGE"]
    assert len(claimed_posts) == 1
    assert f"Claimed by <@{ticket.assignee}>" in json.dumps(claimed_posts[0].args["blocks"])
    assert [e.kind for e in slack.tier0.tickets.events(ticket.number)].count("claimed") == 1
