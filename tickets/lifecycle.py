"""A ticket's life cycle as an explicit state machine.

::

    new ──triage──▶ triaged ──start──▶ in_progress ◀──requester_replied──┐
     │                 ▲                  │     └──await_requester──▶ waiting_on_requester
     │                 └──escalate────────┤                                   │
     └──────────start─────────────────────┘                                   │
    new / triaged / in_progress / waiting_on_requester ──resolve──▶ resolved ◀┘
    resolved ──reopen──▶ in_progress        resolved ──close──▶ closed (final)
    new / triaged (a request or change nobody approved) ──reject──▶ closed

Every move the service layer makes goes through ``next_status``: a move the table does
not list raises ``InvalidTransition`` naming the ticket, its status and the action.
"""

from __future__ import annotations

from enum import StrEnum

from tickets.errors import InvalidTransition
from tickets.models import TicketStatus


class TicketAction(StrEnum):
    """What someone does to a ticket; the words finish "it cannot be …"."""

    TRIAGE = "triaged"
    START = "started"
    ESCALATE = "escalated"
    AWAIT_REQUESTER = "put on hold for the requester"
    REQUESTER_REPLIED = "resumed"
    RESOLVE = "resolved"
    REOPEN = "reopened"
    CLOSE = "closed"
    REJECT = "rejected"


_S = TicketStatus
_A = TicketAction

_WORKABLE = (_S.NEW, _S.TRIAGED, _S.IN_PROGRESS, _S.WAITING_ON_REQUESTER)

TRANSITIONS: dict[tuple[TicketStatus, TicketAction], TicketStatus] = {
    (_S.NEW, _A.TRIAGE): _S.TRIAGED,
    (_S.NEW, _A.START): _S.IN_PROGRESS,
    (_S.TRIAGED, _A.START): _S.IN_PROGRESS,
    # Escalation puts the ticket in the next tier's queue, unowned.
    (_S.NEW, _A.ESCALATE): _S.TRIAGED,
    (_S.TRIAGED, _A.ESCALATE): _S.TRIAGED,
    (_S.IN_PROGRESS, _A.ESCALATE): _S.TRIAGED,
    (_S.WAITING_ON_REQUESTER, _A.ESCALATE): _S.TRIAGED,
    (_S.IN_PROGRESS, _A.AWAIT_REQUESTER): _S.WAITING_ON_REQUESTER,
    (_S.WAITING_ON_REQUESTER, _A.REQUESTER_REPLIED): _S.IN_PROGRESS,
    **{(status, _A.RESOLVE): _S.RESOLVED for status in _WORKABLE},
    (_S.RESOLVED, _A.REOPEN): _S.IN_PROGRESS,
    (_S.RESOLVED, _A.CLOSE): _S.CLOSED,
    (_S.NEW, _A.REJECT): _S.CLOSED,
    (_S.TRIAGED, _A.REJECT): _S.CLOSED,
}

OPEN_STATUSES = frozenset(_WORKABLE)
# Statuses whose SLA clocks stand still: the desk is waiting for someone else.
PAUSED_STATUSES = frozenset({_S.WAITING_ON_REQUESTER})


def can(status: TicketStatus, action: TicketAction) -> bool:
    return (status, action) in TRANSITIONS


def next_status(number: str, status: TicketStatus, action: TicketAction) -> TicketStatus:
    """The status ``action`` moves a ticket in ``status`` to; InvalidTransition if none."""
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise InvalidTransition(number, status, action.value) from None
