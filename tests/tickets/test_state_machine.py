"""The life cycle: every legal move lands where it should, every other move is refused
with a clear message, and every move leaves a line in the audit trail."""

from __future__ import annotations

import itertools

import pytest

from tests.tickets.conftest import Desk, open_incident
from tickets import InvalidTransition, TicketStatus
from tickets.lifecycle import TRANSITIONS, TicketAction, can, next_status

S, A = TicketStatus, TicketAction

EXPECTED = {
    (S.NEW, A.TRIAGE): S.TRIAGED,
    (S.NEW, A.START): S.IN_PROGRESS,
    (S.TRIAGED, A.START): S.IN_PROGRESS,
    (S.NEW, A.ESCALATE): S.TRIAGED,
    (S.TRIAGED, A.ESCALATE): S.TRIAGED,
    (S.IN_PROGRESS, A.ESCALATE): S.TRIAGED,
    (S.WAITING_ON_REQUESTER, A.ESCALATE): S.TRIAGED,
    (S.IN_PROGRESS, A.AWAIT_REQUESTER): S.WAITING_ON_REQUESTER,
    (S.WAITING_ON_REQUESTER, A.REQUESTER_REPLIED): S.IN_PROGRESS,
    (S.NEW, A.RESOLVE): S.RESOLVED,
    (S.TRIAGED, A.RESOLVE): S.RESOLVED,
    (S.IN_PROGRESS, A.RESOLVE): S.RESOLVED,
    (S.WAITING_ON_REQUESTER, A.RESOLVE): S.RESOLVED,
    (S.RESOLVED, A.REOPEN): S.IN_PROGRESS,
    (S.RESOLVED, A.CLOSE): S.CLOSED,
    (S.NEW, A.REJECT): S.CLOSED,
    (S.TRIAGED, A.REJECT): S.CLOSED,
}


@pytest.mark.parametrize(("status", "action"), list(itertools.product(S, A)))
def test_every_status_and_action_pair_is_either_a_listed_move_or_refused(
    status: TicketStatus, action: TicketAction
) -> None:
    if (status, action) in EXPECTED:
        assert can(status, action)
        assert next_status("T-1001", status, action) is EXPECTED[(status, action)]
    else:
        assert not can(status, action)
        with pytest.raises(InvalidTransition) as refused:
            next_status("T-1001", status, action)
        words = status.value.replace("_", " ")
        assert refused.value.message == f"T-1001 is {words}, so it cannot be {action.value}."


def test_the_table_has_exactly_the_documented_moves() -> None:
    assert TRANSITIONS == EXPECTED


def test_closed_is_final() -> None:
    assert not any(can(S.CLOSED, action) for action in A)


def test_a_ticket_walks_the_whole_life_cycle_and_each_step_is_audited(desk: Desk) -> None:
    ticket = open_incident(desk)
    number = ticket.number
    steps = [
        (lambda: desk.tickets.triage(number, as_user="ann", category="network"), "triaged"),
        (lambda: desk.tickets.claim(number, "ann"), "in_progress"),
        (
            lambda: desk.tickets.await_requester(number, "Which VPN client?", as_user="ann"),
            "waiting_on_requester",
        ),
        (lambda: desk.tickets.comment(number, "GlobalProtect 6", as_user="UALICE"), "in_progress"),
        (lambda: desk.tickets.resolve(number, "ann", "Updated the client."), "resolved"),
        (
            lambda: desk.tickets.reopen(number, as_user="UALICE", reason="Dropped again"),
            "in_progress",
        ),
        (lambda: desk.tickets.resolve(number, "ann", "Replaced the profile."), "resolved"),
        (lambda: desk.tickets.close(number, as_user="ann"), "closed"),
    ]
    for step, expected in steps:
        assert step().status.value == expected

    moves = [
        (e.from_status, e.to_status) for e in desk.tickets.events(number) if e.to_status is not None
    ]
    assert moves == [
        (None, S.NEW),
        (S.NEW, S.TRIAGED),
        (S.TRIAGED, S.IN_PROGRESS),
        (S.IN_PROGRESS, S.WAITING_ON_REQUESTER),
        (S.WAITING_ON_REQUESTER, S.IN_PROGRESS),
        (S.IN_PROGRESS, S.RESOLVED),
        (S.RESOLVED, S.IN_PROGRESS),
        (S.IN_PROGRESS, S.RESOLVED),
        (S.RESOLVED, S.CLOSED),
    ]
    final = desk.tickets.get(number)
    assert final.reopen_count == 1
    assert final.closed_at == desk.clock.now


def test_illegal_moves_through_the_services_change_nothing(desk: Desk) -> None:
    number = open_incident(desk).number
    with pytest.raises(InvalidTransition, match="is new, so it cannot be reopened"):
        desk.tickets.reopen(number, as_user="UALICE", reason="still broken")
    with pytest.raises(InvalidTransition, match="is new, so it cannot be put on hold"):
        desk.tickets.await_requester(number, "Which laptop?", as_user="ann")
    with pytest.raises(InvalidTransition, match="is new, so it cannot be closed"):
        desk.tickets.close(number, as_user="ann")
    desk.tickets.resolve(number, "ann", "Fixed")
    desk.tickets.close(number, as_user="ann")
    with pytest.raises(InvalidTransition, match="is closed, so it cannot be reopened"):
        desk.tickets.reopen(number, as_user="UALICE", reason="again")
    with pytest.raises(InvalidTransition, match="is closed, so it cannot be commented on"):
        desk.tickets.comment(number, "hello?", as_user="UALICE")
    assert [e.kind for e in desk.tickets.events(number)] == ["opened", "resolved", "closed"]
