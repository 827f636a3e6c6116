"""The service desk's processes, as the people involved live them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.tickets.conftest import Desk, open_incident
from tickets import TicketError, TicketStatus
from tickets.errors import ApprovalRequired
from tickets.models import ApprovalState, TicketType
from tickets.notifications import NotificationChannel, NotificationKind


def test_impact_and_urgency_set_the_priority_and_the_category_picks_the_team(desk: Desk) -> None:
    ticket = open_incident(desk, impact="high", urgency="high")

    assert ticket.priority == "P1"
    assert ticket.team == "Service Desk L1"
    assert ticket.tier == "L1"
    assert ticket.type is TicketType.INCIDENT


def test_the_assistants_intent_files_the_ticket_under_its_category(desk: Desk) -> None:
    ticket = open_incident(desk, category="general", intent="hardware_broken")

    assert ticket.category == "hardware"


def test_an_emailed_ticket_is_acknowledged_by_email_and_announced_to_the_team(desk: Desk) -> None:
    ticket = open_incident(desk)

    to_alice = desk.sink.for_recipient("alice@example.com")
    assert [n.kind for n in to_alice] == [NotificationKind.TICKET_OPENED]
    assert to_alice[0].channel is NotificationChannel.EMAIL
    assert to_alice[0].subject == f"[{ticket.number}] VPN drops every ten minutes"
    to_team = desk.sink.for_recipient("it-triage")
    assert [n.kind for n in to_team] == [NotificationKind.TICKET_OPENED]
    assert ticket.number in to_team[0].text


def test_escalation_moves_ownership_to_tier_two_and_tells_both_teams_and_the_requester(
    desk: Desk,
) -> None:
    number = open_incident(desk).number
    desk.tickets.claim(number, "ann")
    desk.sink.clear()

    escalated = desk.tickets.escalate(number, as_user="ann", reason="Needs a firewall change")

    assert escalated.team == "Service Desk L2"
    assert escalated.tier == "L2"
    # L2 hands work to its least-loaded agent; the L1 owner is off the ticket.
    assert escalated.assignee == "carl"
    assert escalated.status is TicketStatus.TRIAGED
    kinds = {(n.recipient, n.kind) for n in desk.sink.sent}
    assert ("it-l2", NotificationKind.TICKET_ESCALATED) in kinds
    assert ("it-triage", NotificationKind.TICKET_ESCALATED) in kinds
    assert ("alice@example.com", NotificationKind.TICKET_ESCALATED) in kinds
    assert ("carl", NotificationKind.TICKET_ASSIGNED) in kinds
    escalation = next(e for e in desk.tickets.events(number) if e.kind == "escalated")
    assert escalation.detail["from_team"] == "Service Desk L1"
    assert escalation.detail["from_assignee"] == "ann"
    # Only the second tier can take it further, and there is no third.
    with pytest.raises(TicketError, match="no higher tier"):
        desk.tickets.escalate(number, as_user="carl", reason="again")


def test_least_loaded_assignment_spreads_the_second_tiers_tickets(desk: Desk) -> None:
    owners = []
    for _ in range(4):
        number = open_incident(desk).number
        owners.append(desk.tickets.escalate(number, as_user="ann", reason="expert").assignee)

    assert sorted(owners) == ["carl", "carl", "dana", "dana"]


def test_assigning_hands_the_ticket_to_an_agent_and_tells_them(desk: Desk) -> None:
    number = open_incident(desk).number

    assigned = desk.tickets.assign(number, "bob", as_user="ann")

    assert assigned.assignee == "bob"
    assert assigned.status is TicketStatus.IN_PROGRESS
    assert [n.kind for n in desk.sink.for_recipient("bob")] == [NotificationKind.TICKET_ASSIGNED]
    with pytest.raises(TicketError, match="UBRUNO is not an agent"):
        desk.tickets.assign(number, "UBRUNO", as_user="ann")


def test_changing_the_priority_is_audited_and_moves_the_sla_targets(desk: Desk) -> None:
    number = open_incident(desk, impact="low", urgency="low").number
    before = {c.kind: c.target_minutes for c in desk.tickets.sla(number, as_user="ann")}

    raised = desk.tickets.change_priority(number, as_user="ann", priority="P2", reason="CEO")

    after = {c.kind: c.target_minutes for c in desk.tickets.sla(number, as_user="ann")}
    assert raised.priority == "P2"
    assert after["resolution"] < before["resolution"]
    change = next(e for e in desk.tickets.events(number) if e.kind == "priority_changed")
    assert (change.detail["before"], change.detail["after"]) == ("P4", "P2")


def test_internal_notes_never_reach_the_requester(desk: Desk) -> None:
    number = open_incident(desk).number
    desk.tickets.claim(number, "ann")
    desk.sink.clear()

    desk.tickets.comment(number, "Looks like her token expired", as_user="ann", internal=True)
    desk.tickets.comment(number, "Could you restart the client?", as_user="ann")

    seen_by_alice = desk.tickets.comments(number, as_user="UALICE")
    seen_by_bob = desk.tickets.comments(number, as_user="bob")
    assert [c.body for c in seen_by_alice] == ["Could you restart the client?"]
    assert len(seen_by_bob) == 2
    to_alice = [n.text for n in desk.sink.for_recipient("alice@example.com")]
    assert len(to_alice) == 1 and "restart the client" in to_alice[0]
    assert not any("token expired" in n.text for n in desk.sink.sent)
    alice_history = desk.tickets.history(number, as_user="UALICE")
    assert [e.detail.get("internal") for e in alice_history if e.kind == "commented"] == [False]


def test_a_requester_reply_by_email_counts_once_even_if_delivered_twice(desk: Desk) -> None:
    number = open_incident(desk).number
    for _ in range(2):
        desk.tickets.comment(
            number,
            "It happens on wifi too",
            as_user="UALICE",
            via="email",
            idempotency_key="<msg-1@example.com>",
        )

    assert [c.body for c in desk.tickets.comments(number, as_user="ann")] == [
        "It happens on wifi too"
    ]


def test_resolving_a_problem_resolves_its_incidents_and_tells_their_requesters(
    desk: Desk,
) -> None:
    first = open_incident(desk).number
    second = open_incident(desk, requester="UBRUNO").number
    problem = desk.tickets.open_ticket(
        requester="ann",
        title="VPN concentrator drops sessions",
        description="",
        ticket_type="problem",
        source="cli",
    ).number
    desk.tickets.link_to_problem(first, problem, as_user="ann")
    desk.tickets.link_to_problem(second, problem, as_user="ann")
    with pytest.raises(TicketError, match="is not a problem ticket"):
        desk.tickets.link_to_problem(first, second, as_user="ann")

    desk.tickets.resolve(problem, "ann", "Firmware upgraded on the concentrator.")

    for number in (first, second):
        child = desk.tickets.get(number)
        assert child.status is TicketStatus.RESOLVED
        assert child.parent == problem
        assert child.resolution is not None and problem in child.resolution
    assert desk.sink.of_kind(NotificationKind.TICKET_RESOLVED)


def test_an_asset_is_linked_to_the_ticket_about_it(desk: Desk) -> None:
    tag = desk.tickets.register_asset(
        "lt-0042",
        as_user="ann",
        asset_type="laptop",
        name="MacBook Pro 14",
        serial="C02XYZ",
        owner="UALICE",
    )
    number = open_incident(desk).number

    linked = desk.tickets.link_asset(number, tag, as_user="ann")

    assert linked.asset == "LT-0042"
    with pytest.raises(TicketError, match="no asset"):
        desk.tickets.link_asset(number, "LT-9999", as_user="ann")


def test_the_requester_rates_a_resolved_ticket_once(desk: Desk) -> None:
    number = open_incident(desk).number
    with pytest.raises(TicketError, match="once it is resolved"):
        desk.tickets.rate(number, 5, as_user="UALICE")
    desk.tickets.resolve(number, "ann", "Fixed")

    desk.tickets.rate(number, 4, as_user="UALICE", comment="quick")

    with pytest.raises(TicketError, match="already rated 4/5"):
        desk.tickets.rate(number, 5, as_user="UALICE")
    with pytest.raises(ValueError, match=r"1 .* to 5"):
        desk.tickets.rate(number, 9, as_user="UALICE")


def test_resolved_tickets_close_themselves_after_the_grace_period(desk: Desk) -> None:
    number = open_incident(desk).number
    desk.tickets.resolve(number, "ann", "Fixed")
    reopened = open_incident(desk).number
    desk.tickets.resolve(reopened, "ann", "Fixed")
    desk.clock.advance(days=3)
    desk.tickets.reopen(reopened, as_user="UALICE", reason="Still broken")

    assert desk.tickets.auto_close_resolved(after_days=7) == []
    desk.clock.advance(days=5)
    assert desk.tickets.auto_close_resolved(after_days=7) == [number]
    assert desk.tickets.get(number).status is TicketStatus.CLOSED
    assert desk.tickets.get(reopened).status is TicketStatus.IN_PROGRESS


def test_a_catalog_request_waits_for_the_managers_approval_then_reaches_the_team(
    desk: Desk,
) -> None:
    request = desk.catalog.request("figma", as_user="UALICE", answers={"reason": "Design reviews"})

    assert request.type is TicketType.SERVICE_REQUEST
    assert request.approval_state is ApprovalState.PENDING
    assert request.form_answers == {"reason": "Design reviews"}
    assert [a.ticket_number for a in desk.catalog.pending_approvals(as_user="mona")] == [
        request.number
    ]
    assert [n.kind for n in desk.sink.for_recipient("mona@example.com")] == [
        NotificationKind.APPROVAL_REQUESTED
    ]
    assert not desk.sink.for_recipient("it-triage")  # nothing to do before approval
    with pytest.raises(ApprovalRequired):
        desk.tickets.claim(request.number, "ann")

    approved = desk.catalog.decide(request.number, as_user="mona", approve=True)

    assert approved.approval_state is ApprovalState.APPROVED
    assert [n.kind for n in desk.sink.for_recipient("it-triage")] == [
        NotificationKind.TICKET_OPENED
    ]
    # Asked from the CLI by someone on Slack: told on Slack.
    assert NotificationKind.APPROVAL_DECIDED in [n.kind for n in desk.sink.for_recipient("UALICE")]
    desk.tickets.claim(request.number, "ann")
    fulfilled = desk.tickets.resolve(request.number, "ann", "Seat assigned; check your email.")
    assert fulfilled.status is TicketStatus.RESOLVED
    assert desk.sink.for_recipient("UALICE")[-1].kind is NotificationKind.TICKET_RESOLVED


def test_a_rejected_request_is_closed_with_the_reason(desk: Desk) -> None:
    request = desk.catalog.request("vpn-access", as_user="UALICE", answers={"reason": "travel"})
    with pytest.raises(ValueError, match="Say why"):
        desk.catalog.decide(request.number, as_user="mona", approve=False)

    rejected = desk.catalog.decide(
        request.number, as_user="mona", approve=False, comment="Use the office network"
    )

    assert rejected.status is TicketStatus.CLOSED
    assert rejected.approval_state is ApprovalState.REJECTED
    last = desk.sink.for_recipient("UALICE")[-1]
    assert "Use the office network" in last.text


def test_catalog_forms_refuse_missing_unknown_and_off_list_answers(desk: Desk) -> None:
    with pytest.raises(ValueError, match="needs 'Which model"):
        desk.catalog.request("new-laptop", as_user="UALICE", answers={"reason": "slow"})
    with pytest.raises(ValueError, match="must be one of"):
        desk.catalog.request(
            "new-laptop", as_user="UALICE", answers={"model": "Abacus", "reason": "slow"}
        )
    with pytest.raises(ValueError, match="has no field 'colour'"):
        desk.catalog.request("figma", as_user="UALICE", answers={"reason": "x", "colour": "red"})
    with pytest.raises(TicketError, match="no catalog item"):
        desk.catalog.request("unicorn", as_user="UALICE", answers={})
    with pytest.raises(TicketError, match="does not know your manager"):
        desk.catalog.request("figma", as_user="UBRUNO", answers={"reason": "x"})


def test_an_item_without_approval_goes_straight_to_the_team(desk: Desk) -> None:
    request = desk.catalog.request(
        "shared-mailbox",
        as_user="UALICE",
        answers={"address": "design@example.com"},
        idempotency_key="form-7",
    )
    again = desk.catalog.request(
        "shared-mailbox",
        as_user="UALICE",
        answers={"address": "design@example.com"},
        idempotency_key="form-7",
    )

    assert again.number == request.number
    assert request.approval_state is None
    assert desk.tickets.claim(request.number, "bob").assignee == "bob"


def test_a_change_is_approved_scheduled_and_implemented(desk: Desk) -> None:
    change = desk.catalog.request_change(
        as_user="carl",
        title="Upgrade VPN concentrator firmware",
        description="To 10.2",
        approvers=["root"],
        team="Service Desk L2",
    )
    start = desk.clock.now + timedelta(days=2)
    with pytest.raises(TicketError, match="only an approved change"):
        desk.catalog.schedule_change(
            change.number, as_user="carl", start=start, end=start + timedelta(hours=1)
        )
    with pytest.raises(TicketError, match="Nobody approves their own change"):
        desk.catalog.request_change(as_user="carl", title="x", description="", approvers=["carl"])

    desk.catalog.decide(change.number, as_user="root", approve=True)
    scheduled = desk.catalog.schedule_change(
        change.number, as_user="carl", start=start, end=start + timedelta(hours=1)
    )
    done = desk.catalog.complete_change(
        change.number, as_user="carl", succeeded=True, note="Upgraded, sessions stable"
    )

    assert scheduled.change_state == "scheduled"
    assert done.change_state == "implemented"
    assert done.status is TicketStatus.RESOLVED
    assert [n.kind for n in desk.sink.for_recipient("it-l2")][-2:] == [
        NotificationKind.CHANGE_SCHEDULED,
        NotificationKind.CHANGE_COMPLETED,
    ]


def test_a_failed_change_is_recorded_as_failed(desk: Desk) -> None:
    change = desk.catalog.request_change(
        as_user="carl",
        title="Rotate the wifi certificate",
        description="",
        approvers=["root"],
        team="Service Desk L2",
    )
    desk.catalog.decide(change.number, as_user="root", approve=True)
    start = desk.clock.now + timedelta(hours=3)
    desk.catalog.schedule_change(
        change.number, as_user="carl", start=start, end=start + timedelta(hours=1)
    )

    failed = desk.catalog.complete_change(
        change.number, as_user="carl", succeeded=False, note="Clients rejected it; rolled back"
    )

    assert failed.change_state == "failed"
