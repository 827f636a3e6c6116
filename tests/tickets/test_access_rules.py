"""Access rules hold in the service layer, whatever front end asks."""

from __future__ import annotations

import pytest

from tests.tickets.conftest import Desk, open_incident
from tickets import TicketNotFound
from tickets.errors import PermissionDenied


def test_employees_see_their_own_tickets_and_managers_their_reports(desk: Desk) -> None:
    alices = open_incident(desk).number
    brunos = open_incident(desk, requester="UBRUNO").number

    assert desk.tickets.view(alices, as_user="UALICE").number == alices
    assert desk.tickets.view(alices, as_user="mona").number == alices  # Alice's manager
    with pytest.raises(TicketNotFound):
        desk.tickets.view(brunos, as_user="UALICE")  # same words as a missing ticket
    with pytest.raises(TicketNotFound):
        desk.tickets.view(brunos, as_user="mona")
    assert [t.number for t in desk.tickets.queue(as_user="UALICE")] == [alices]
    assert [t.number for t in desk.tickets.queue(as_user="mona")] == [alices]


def test_agents_see_their_teams_queue_not_another_teams(desk: Desk) -> None:
    first_line = open_incident(desk).number
    second_line = open_incident(desk).number
    desk.tickets.escalate(second_line, as_user="ann", reason="expert needed")

    assert [t.number for t in desk.tickets.queue(as_user="bob")] == [first_line]
    assert [t.number for t in desk.tickets.queue(as_user="dana")] == [second_line]
    with pytest.raises(TicketNotFound):
        desk.tickets.view(first_line, as_user="dana")
    with pytest.raises(PermissionDenied, match="Only members of Service Desk L1"):
        desk.tickets.queue(as_user="dana", team="Service Desk L1")
    admin_sees = desk.tickets.queue(as_user="root", team="Service Desk L2")
    assert [t.number for t in admin_sees] == [second_line]


def test_employees_cannot_work_tickets(desk: Desk) -> None:
    number = open_incident(desk).number
    refusals = [
        lambda: desk.tickets.claim(number, "UALICE"),
        lambda: desk.tickets.assign(number, "ann", as_user="UALICE"),
        lambda: desk.tickets.escalate(number, as_user="UALICE", reason="faster"),
        lambda: desk.tickets.change_priority(number, as_user="UALICE", priority="P1"),
        lambda: desk.tickets.resolve(number, "UALICE", "sorted myself"),
        lambda: desk.tickets.comment(number, "psst", as_user="UALICE", internal=True),
        lambda: desk.tickets.await_requester(number, "?", as_user="UALICE"),
    ]
    for refused in refusals:
        with pytest.raises(PermissionDenied):
            refused()
    assert [e.kind for e in desk.tickets.events(number)] == ["opened"]


def test_another_teams_agent_cannot_claim_or_resolve(desk: Desk) -> None:
    number = open_incident(desk).number

    with pytest.raises(PermissionDenied, match="agent of the ticket's team"):
        desk.tickets.claim(number, "carl")
    with pytest.raises(PermissionDenied):
        desk.tickets.resolve(number, "carl", "done")


def test_only_admins_change_sla_policies_and_the_catalog(desk: Desk) -> None:
    for user in ("ann", "eddy", "UALICE"):
        with pytest.raises(PermissionDenied, match="Only admins can change SLA policies"):
            desk.admin.set_sla_policy(
                as_user=user,
                ticket_type="incident",
                priority="P1",
                first_response_minutes=5,
                resolution_minutes=60,
            )
        with pytest.raises(PermissionDenied, match="Only admins can change the catalog"):
            desk.admin.retire_catalog_item("figma", as_user=user)

    desk.admin.set_sla_policy(
        as_user="root",
        ticket_type="incident",
        priority="P1",
        first_response_minutes=5,
        resolution_minutes=60,
        business_hours=False,
    )
    desk.admin.retire_catalog_item("figma", as_user="root")
    assert "figma" not in [item.key for item in desk.catalog.items()]


def test_only_editors_change_articles(desk: Desk) -> None:
    desk.directory.check_can_edit_articles("eddy")
    desk.directory.check_can_edit_articles("root")
    for user in ("ann", "UALICE", "someone-new"):
        with pytest.raises(PermissionDenied, match="Only editors"):
            desk.directory.check_can_edit_articles(user)


def test_only_the_named_approver_decides(desk: Desk) -> None:
    request = desk.catalog.request("figma", as_user="UALICE", answers={"reason": "design"})

    for user in ("UALICE", "ann", "UBRUNO"):
        with pytest.raises(PermissionDenied, match="waiting for Mona Manager's approval"):
            desk.catalog.decide(request.number, as_user=user, approve=True)
    assert desk.catalog.decide(request.number, as_user="mona", approve=True)


def test_only_the_requester_rates_and_reopens_or_an_agent_reopens(desk: Desk) -> None:
    number = open_incident(desk).number
    desk.tickets.resolve(number, "ann", "Fixed")

    with pytest.raises(PermissionDenied):
        desk.tickets.rate(number, 1, as_user="UBRUNO")
    with pytest.raises(PermissionDenied):
        desk.tickets.reopen(number, as_user="UBRUNO", reason="nope")
    assert desk.tickets.reopen(number, as_user="UALICE", reason="Still drops").is_open
