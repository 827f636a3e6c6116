"""The service catalog in Slack: an employee asks for an item, fills in its form, their
manager approves or rejects it by DM, and the fulfilment team gets the ticket."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

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
from tests.slack.test_ticket_threads import thread_reply
from tickets.catalog import CatalogService
from tickets.directory import Directory
from tickets.models import ApprovalState
from tickets.outbox import OutboxMessage, RetryPolicy
from tickets.seed import load_desk_config

MANAGER = "UMANAGER1"
MANAGER_DM = "DMANAGER1"
COLLEAGUE = "UCOLLEAGUE"


@pytest.fixture
def desk(slack: SlackDesk) -> SlackDesk:
    """The employee and their manager, as the desk directory knows them."""
    directory = Directory(slack.tier0.session_factory)
    directory.register_user(MANAGER, name="Maria Manager")
    directory.register_user(EMPLOYEE, name="Erin Employee", manager=MANAGER)
    return slack


def click_in_modal(
    slack: SlackDesk, user: str, view: dict[str, Any], action: dict[str, Any]
) -> None:
    """A button inside an open modal: the payload names the view, not a channel."""
    slack.send_form(
        {
            "type": "block_actions",
            "team": {"id": "TNORTHWIND"},
            "user": {"id": user},
            "api_app_id": "ATIER0",
            "trigger_id": "trigger-modal",
            "container": {"type": "view", "view_id": view["id"]},
            "view": view,
            "actions": [
                {
                    "type": "button",
                    "block_id": action.get("block_id", "b"),
                    "action_id": action["action_id"],
                    "value": action["value"],
                    "action_ts": str(time.time()),
                }
            ],
        }
    )


def messages_to(slack: SlackDesk, channel: str) -> list[dict[str, Any]]:
    return [c.args for c in slack.api.calls_to("chat.postMessage") if c.args["channel"] == channel]


def test_i_need_figma_goes_through_the_managers_approval_to_the_fulfilment_team(
    desk: SlackDesk,
) -> None:
    desk.direct_message("I need Figma", ts="1700000801.000001")
    [offer] = posted_in(desk, DM_CHANNEL, showing="catalog_request_item")
    assert offer.args["thread_ts"] == "1700000801.000001"
    assert "Figma licence" in offer.args["text"] and "approval" in offer.args["text"]
    request_figma = button(offer.args, "catalog_request_item")
    assert request_figma["value"] == "figma"
    assert desk.tier0.tickets.list_for_requester(EMPLOYEE) == []  # an offer, not a ticket

    desk.click(EMPLOYEE, as_shown(offer), DM_CHANNEL, request_figma)
    [opened] = desk.api.wait_for("views.open")
    form = opened.args["view"]
    assert form["callback_id"] == "catalog_request" and form["private_metadata"] == "figma"
    [reason_input] = [b for b in form["blocks"] if b["type"] == "input"]
    assert reason_input["block_id"] == "field:reason" and reason_input["optional"] is False

    # A required field left empty is sent back, under the field.
    _status, body = desk.submit_view(opened.response["view"], {"field:reason": "  "})
    assert json.loads(body) == {
        "response_action": "errors",
        "errors": {"field:reason": "This is needed."},
    }
    desk.submit_view(opened.response["view"], {"field:reason": "Design reviews <!channel>"})

    [approval_message] = posted_in(desk, MANAGER_DM, showing="catalog_approve")
    [submitted] = posted_in(desk, DM_CHANNEL, saying="is submitted")
    [waiting] = posted_in(desk, DM_CHANNEL, saying="waits for")
    settled(desk)
    to_manager = messages_to(desk, MANAGER_DM)
    assert len(to_manager) == 1 and "<!channel>" not in json.dumps(to_manager)
    assert "Design reviews &lt;!channel&gt;" in json.dumps(to_manager[0]["blocks"])
    [request] = desk.tier0.tickets.list_for_requester(EMPLOYEE)
    assert request.number in submitted.args["text"] and "Figma licence" in submitted.args["text"]
    assert waiting.args["thread_ts"] == submitted.response["ts"]
    assert f"<@{MANAGER}>" in waiting.args["text"]
    assert request.approval_state is ApprovalState.PENDING
    approve = button(approval_message.args, "catalog_approve")

    # Somebody else's click decides nothing.
    desk.click(COLLEAGUE, as_shown(approval_message), MANAGER_DM, approve)
    [refusal] = desk.api.wait_for("chat.postEphemeral")
    assert refusal.args["user"] == COLLEAGUE and f"<@{MANAGER}>" in refusal.args["text"]
    assert desk.tier0.tickets.get(request.number).approval_state is ApprovalState.PENDING

    desk.click(MANAGER, as_shown(approval_message), MANAGER_DM, approve)
    [updated] = updates_of(desk, approval_message.response["ts"])
    assert "Approved by" in json.dumps(updated.args["blocks"])
    assert "catalog_approve" not in json.dumps(updated.args["blocks"])

    [triage] = posted_in(desk, "it-triage", saying=request.number)
    [form_answers] = desk.api.wait_for_matching(
        "chat.postMessage", lambda c: c.args.get("thread_ts") == triage.response["ts"]
    )
    assert form_answers.args["channel"] == "CTRIAGE"
    assert "Design reviews" in form_answers.args["text"]
    [approved] = posted_in(desk, DM_CHANNEL, saying="approved your request")
    [numbered] = posted_in(desk, DM_CHANNEL, saying=f"fulfilment ticket is *{request.number}*")
    assert approved.args["thread_ts"] == numbered.args["thread_ts"] == submitted.response["ts"]
    # The post is the ticket's triage post once Slack has it (replies and edits find it).
    eventually(lambda: desk.tier0.tickets.get(request.number).triage_ts == triage.response["ts"])
    fulfilled = desk.tier0.tickets.get(request.number)
    assert fulfilled.approval_state is ApprovalState.APPROVED
    assert fulfilled.triage_channel == "CTRIAGE"

    # The desk told everyone itself: the service queued no second copy for Slack.
    with desk.tier0.session_factory() as session:
        queued = session.scalars(select(OutboxMessage.purpose)).all()
    assert not {"approval_requested", "approval_decided", "ticket_opened"} & set(queued)

    # A second click finds nothing left to decide.
    desk.click(MANAGER, as_shown(approval_message), MANAGER_DM, approve)
    again = desk.api.wait_for("chat.postEphemeral", count=2)[-1]
    assert "not waiting for an approval" in again.args["text"]


def test_browse_catalog_from_app_home_and_an_item_without_approval_goes_straight_to_the_team(
    desk: SlackDesk,
) -> None:
    desk.send_event({"type": "app_home_opened", "user": EMPLOYEE, "tab": "home"})
    [home] = desk.api.wait_for("views.publish")
    browse = button({"blocks": home.args["view"]["blocks"]}, "browse_catalog")

    desk.click(EMPLOYEE, {"ts": "0"}, DM_CHANNEL, {**browse, "value": ""})
    [opened] = desk.api.wait_for("views.open")
    catalog = opened.response["view"]
    assert catalog["callback_id"] == "catalog_browse"
    picks = {
        b["accessory"]["value"]: b for b in catalog["blocks"] if b.get("accessory") is not None
    }
    assert set(picks) == {item.key for item in CatalogService(desk.tier0.tickets).items()}

    mailbox = picks["shared-mailbox"]
    click_in_modal(
        desk, EMPLOYEE, catalog, {**mailbox["accessory"], "block_id": mailbox["block_id"]}
    )
    [turned] = desk.api.wait_for("views.update")
    assert turned.args["view_id"] == catalog["id"]
    assert turned.args["view"]["callback_id"] == "catalog_request"

    desk.submit_view(turned.response["view"], {"field:address": "legal@northwind.example"})
    eventually(lambda: len(desk.tier0.tickets.list_for_requester(EMPLOYEE)) == 1)
    [request] = desk.tier0.tickets.list_for_requester(EMPLOYEE)
    assert request.approval_state is None
    posted_in(desk, "it-triage", saying=request.number)
    posted_in(desk, DM_CHANNEL, saying=f"fulfilment ticket is *{request.number}*")
    settled(desk)
    assert not messages_to(desk, MANAGER_DM)
    eventually(lambda: desk.tier0.tickets.get(request.number).triage_ts is not None)


def test_the_manager_rejects_with_a_reason_and_the_requester_reads_it(desk: SlackDesk) -> None:
    status, _ = desk.command("catalog")
    assert status == 200
    [opened] = desk.api.wait_for("views.open")
    catalog = opened.response["view"]
    vpn = next(b for b in catalog["blocks"] if b.get("block_id") == "item:vpn-access")
    click_in_modal(desk, EMPLOYEE, catalog, {**vpn["accessory"], "block_id": vpn["block_id"]})
    [turned] = desk.api.wait_for("views.update")
    desk.submit_view(turned.response["view"], {"field:reason": "Working from home on Fridays"})

    [approval_message] = posted_in(desk, MANAGER_DM, showing="catalog_reject")
    reject = button(approval_message.args, "catalog_reject")

    # Only the approver gets the reason form.
    desk.click(COLLEAGUE, as_shown(approval_message), MANAGER_DM, reject)
    desk.api.wait_for("chat.postEphemeral")
    assert len(desk.api.calls_to("views.open")) == 1

    desk.click(MANAGER, as_shown(approval_message), MANAGER_DM, reject)
    reason_form = desk.api.wait_for("views.open", count=2)[-1]
    assert reason_form.args["view"]["callback_id"] == "catalog_reject_reason"
    _status, body = desk.submit_view(reason_form.response["view"], {"reason": ""}, user=MANAGER)
    assert json.loads(body)["response_action"] == "errors"
    desk.submit_view(
        reason_form.response["view"], {"reason": "Fridays are office days <!here>"}, user=MANAGER
    )

    [updated] = updates_of(desk, approval_message.response["ts"])
    assert updated.args["channel"] == MANAGER_DM
    assert "Rejected by" in json.dumps(updated.args["blocks"])
    [request] = desk.tier0.tickets.list_for_requester(EMPLOYEE, include_resolved=True)
    [rejected] = posted_in(desk, DM_CHANNEL, saying="did not approve")
    assert "Fridays are office days &lt;!here&gt;" in rejected.args["text"]
    assert desk.tier0.tickets.get(request.number).approval_state is ApprovalState.REJECTED
    settled(desk)
    assert not any(c.args["channel"] == "it-triage" for c in desk.api.calls_to("chat.postMessage"))


def test_a_request_without_a_known_manager_is_explained_to_the_requester(slack: SlackDesk) -> None:
    slack.command("catalog")
    [opened] = slack.api.wait_for("views.open")
    catalog = opened.response["view"]
    figma = next(b for b in catalog["blocks"] if b.get("block_id") == "item:figma")
    click_in_modal(slack, EMPLOYEE, catalog, {**figma["accessory"], "block_id": figma["block_id"]})
    [turned] = slack.api.wait_for("views.update")
    slack.submit_view(turned.response["view"], {"field:reason": "Design reviews"})

    posted_in(slack, DM_CHANNEL, saying="does not know your manager")
    assert slack.tier0.tickets.list_for_requester(EMPLOYEE) == []


def test_two_approvers_decide_in_turn_and_the_l2_team_gets_the_request_in_its_channel(
    desk: SlackDesk, tmp_path: Path
) -> None:
    finance = "UFINANCE1"
    Directory(desk.tier0.session_factory).register_user(finance, name="Fin Ance")
    config = tmp_path / "desk.yml"
    config.write_text(
        "catalog:\n"
        "  - key: design-workstation\n"
        "    name: Design workstation\n"
        "    description: A workstation for 3D work.\n"
        "    team: Service Desk L2\n"
        f"    approvers: [manager, {finance}]\n"
        "    fields:\n"
        '      - {name: gpu, label: "Which GPU?", required: true, choices: [RTX 4000, RTX 5000]}\n'
    )
    load_desk_config(desk.tier0.session_factory, config)

    desk.command("catalog")
    [opened] = desk.api.wait_for("views.open")
    catalog = opened.response["view"]
    pick = next(b for b in catalog["blocks"] if b.get("block_id") == "item:design-workstation")
    click_in_modal(desk, EMPLOYEE, catalog, {**pick["accessory"], "block_id": pick["block_id"]})
    [turned] = desk.api.wait_for("views.update")
    [choice] = [b for b in turned.args["view"]["blocks"] if b["type"] == "input"]
    assert [o["value"] for o in choice["element"]["options"]] == ["RTX 4000", "RTX 5000"]
    desk.submit_view(turned.response["view"], {"field:gpu": ("select", "RTX 5000")})

    [to_manager] = posted_in(desk, MANAGER_DM, showing="catalog_approve")
    desk.click(
        MANAGER, as_shown(to_manager), MANAGER_DM, button(to_manager.args, "catalog_approve")
    )

    [to_finance] = posted_in(desk, "DFINANCE1", showing="catalog_approve")
    posted_in(desk, DM_CHANNEL, saying="now waits for <@UFINANCE1>")
    settled(desk)
    assert not messages_to(desk, "it-l2")  # not yet

    desk.click(
        finance, as_shown(to_finance), "DFINANCE1", button(to_finance.args, "catalog_approve")
    )
    [triage] = posted_in(desk, "it-l2", showing="claim_ticket")  # the card, not the form's answers
    [request] = desk.tier0.tickets.list_for_requester(EMPLOYEE)
    assert request.number in triage.args["text"] and request.team == "Service Desk L2"
    assert request.approval_state is ApprovalState.APPROVED
    assert [a.decision for a in CatalogService(desk.tier0.tickets).approvals(request.number)] == [
        ApprovalState.APPROVED,
        ApprovalState.APPROVED,
    ]


def test_slack_down_when_the_manager_approves_loses_no_step_and_doubles_none(
    desk: SlackDesk,
) -> None:
    desk.service.sends.delivery.policy = RetryPolicy(
        first_delay=timedelta(milliseconds=100), max_delay=timedelta(milliseconds=500)
    )
    desk.command("catalog")
    [opened] = desk.api.wait_for("views.open")
    catalog = opened.response["view"]
    figma = next(b for b in catalog["blocks"] if b.get("block_id") == "item:figma")
    click_in_modal(desk, EMPLOYEE, catalog, {**figma["accessory"], "block_id": figma["block_id"]})
    [turned] = desk.api.wait_for("views.update")
    desk.submit_view(turned.response["view"], {"field:reason": "Design reviews"})
    [approval_message] = posted_in(desk, MANAGER_DM, showing="catalog_approve")
    [submitted] = posted_in(desk, DM_CHANNEL, saying="is submitted")
    settled(desk)

    desk.api.fail_with(500, "internal_error")
    desk.click(
        MANAGER,
        as_shown(approval_message),
        MANAGER_DM,
        button(approval_message.args, "catalog_approve"),
    )
    # The card's edit, the requester's two messages, the triage post and the form's
    # answers (in the channel: the post never reached Slack) are all owed, none sent.
    eventually(lambda: desk.service.sends.pending() == 5)
    [request] = desk.tier0.tickets.list_for_requester(EMPLOYEE)
    assert request.approval_state is ApprovalState.APPROVED
    assert not messages_to(desk, "it-triage")

    desk.api.recover()
    settled(desk)
    time.sleep(1.0)  # a message sent twice would show by now
    [updated] = updates_of(desk, approval_message.response["ts"])
    assert "Approved by" in json.dumps(updated.args["blocks"])
    in_triage = messages_to(desk, "it-triage")
    assert len(in_triage) == 2
    assert sum(bool(m.get("blocks")) and request.number in m["text"] for m in in_triage) == 1
    [form_answers] = [m for m in in_triage if "Request form" in m["text"]]
    assert "Design reviews" in form_answers["text"]
    told = [
        m for m in messages_to(desk, DM_CHANNEL) if m.get("thread_ts") == submitted.response["ts"]
    ]
    assert sum("approved your request" in m["text"] for m in told) == 1
    assert sum(f"fulfilment ticket is *{request.number}*" in m["text"] for m in told) == 1
    eventually(lambda: desk.tier0.tickets.get(request.number).triage_ts is not None)


def test_the_fulfilment_team_and_the_requester_talk_in_the_requests_threads(
    desk: SlackDesk,
) -> None:
    """A catalog request is a ticket like any other: the team's public replies in its
    triage thread reach the requester's DM thread, and the requester's replies there
    reach the team, as comments."""
    Directory(desk.tier0.session_factory).register_user(
        AGENT, roles=["agent"], team="Service Desk L1"
    )
    desk.command("catalog")
    [opened] = desk.api.wait_for("views.open")
    catalog = opened.response["view"]
    mailbox = next(b for b in catalog["blocks"] if b.get("block_id") == "item:shared-mailbox")
    click_in_modal(
        desk, EMPLOYEE, catalog, {**mailbox["accessory"], "block_id": mailbox["block_id"]}
    )
    [turned] = desk.api.wait_for("views.update")
    desk.submit_view(turned.response["view"], {"field:address": "legal@northwind.example"})
    [submitted] = posted_in(desk, DM_CHANNEL, saying="is submitted")
    eventually(lambda: len(desk.tier0.tickets.list_for_requester(EMPLOYEE)) == 1)
    [request] = desk.tier0.tickets.list_for_requester(EMPLOYEE)
    [triage] = posted_in(desk, "it-triage", saying=request.number)
    eventually(lambda: desk.tier0.tickets.get(request.number).triage_ts is not None)
    ticket = desk.tier0.tickets.get(request.number)
    assert (ticket.requester_channel, ticket.requester_thread_ts) == (
        DM_CHANNEL,
        submitted.response["ts"],
    )

    # The team answers in the triage thread: the requester reads it in their thread.
    thread_reply(
        desk,
        channel="CTRIAGE",
        user=AGENT,
        thread_ts=triage.response["ts"],
        text="Which team should own the mailbox?",
        ts="1700000871.000001",
    )
    [asked] = posted_in(desk, DM_CHANNEL, saying="Which team should own")
    assert asked.args["thread_ts"] == submitted.response["ts"]

    # The requester answers there: a comment, shown to the team in the triage thread.
    thread_reply(
        desk,
        channel=DM_CHANNEL,
        user=EMPLOYEE,
        thread_ts=submitted.response["ts"],
        text="Legal, please",
        ts="1700000871.000002",
    )
    [answered] = posted_in(desk, "CTRIAGE", saying="Legal, please")
    assert answered.args["thread_ts"] == triage.response["ts"]
    bodies = [c.body for c in desk.tier0.tickets.comments(request.number, as_user=AGENT)]
    assert bodies[-2:] == ["Which team should own the mailbox?", "Legal, please"]


def test_an_approval_whose_replica_died_after_the_commit_is_finished_by_the_next_click(
    desk: SlackDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manager's decision is stored, then the replica dies before telling anyone:
    clicking Approve again tells the requester and hands the request over, once."""
    desk.command("catalog")
    [opened] = desk.api.wait_for("views.open")
    catalog = opened.response["view"]
    vpn = next(b for b in catalog["blocks"] if b.get("block_id") == "item:vpn-access")
    click_in_modal(desk, EMPLOYEE, catalog, {**vpn["accessory"], "block_id": vpn["block_id"]})
    [turned] = desk.api.wait_for("views.update")
    desk.submit_view(turned.response["view"], {"field:reason": "Working from home on Fridays"})
    [approval_message] = posted_in(desk, MANAGER_DM, showing="catalog_approve")
    [request] = desk.tier0.tickets.list_for_requester(EMPLOYEE)
    approve = button(approval_message.args, "catalog_approve")

    decide = CatalogService.decide
    died: list[str] = []

    def decided_then_died(self: CatalogService, *args: Any, **kwargs: Any) -> Any:
        decided = decide(self, *args, **kwargs)
        if not died:
            died.append(decided.number)
            raise RuntimeError("the replica died right after the decision was committed")
        return decided

    monkeypatch.setattr(CatalogService, "decide", decided_then_died)
    desk.click(MANAGER, as_shown(approval_message), MANAGER_DM, approve)
    eventually(lambda: bool(died))
    # What the first click said as it died; the manager sees it before clicking again.
    [sorry] = desk.api.wait_for("chat.postEphemeral")
    assert "went wrong" in sorry.args["text"]
    settled(desk)
    assert desk.tier0.tickets.get(request.number).approval_state is ApprovalState.APPROVED
    assert not [m for m in messages_to(desk, DM_CHANNEL) if "approved" in m["text"]]

    # The manager clicks again: told it is decided, and what was missing goes out.
    desk.click(MANAGER, as_shown(approval_message), MANAGER_DM, approve)
    _, told = desk.api.wait_for("chat.postEphemeral", count=2)
    assert "not waiting for an approval" in told.args["text"]
    posted_in(desk, DM_CHANNEL, saying="approved your request")
    posted_in(desk, DM_CHANNEL, saying=f"fulfilment ticket is *{request.number}*")
    posted_in(desk, "it-triage", saying=request.number)
    updates_of(desk, approval_message.response["ts"])

    # And once only, however often it is clicked.
    desk.click(MANAGER, as_shown(approval_message), MANAGER_DM, approve)
    desk.api.wait_for("chat.postEphemeral", count=3)
    settled(desk)
    time.sleep(0.5)
    texts = [m["text"] for m in messages_to(desk, DM_CHANNEL)]
    assert len([t for t in texts if "approved your request" in t]) == 1
    assert len([t for t in texts if "fulfilment ticket is" in t]) == 1
    assert len(messages_to(desk, "it-triage")) == 1
    assert len(desk.api.calls_to("chat.update")) == 1
