"""When tickets are due under their SLA, as Slack shows it to requesters and agents.

The SLA engine (tickets.sla) keeps each ticket's clocks; this only reads their due
instants, for a whole list of tickets in one query, and words them for Slack.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tickets.models import SlaClock, SlaKind, Ticket
from tickets.service import TicketView


@dataclass(frozen=True)
class SlaDue:
    """A ticket's running targets; None where a clock is stopped, paused or absent."""

    first_response: datetime | None = None
    resolution: datetime | None = None
    # The resolution clock stands still: the ticket waits on the requester.
    paused: bool = False


NO_SLA = SlaDue()


def sla_due(
    session_factory: sessionmaker[Session], tickets: Iterable[TicketView]
) -> dict[str, SlaDue]:
    """Each ticket's SLA due instants, by ticket number."""
    tickets = list(tickets)
    if not tickets:
        return {}
    with session_factory() as session:
        return sla_due_in(session, tickets)


def sla_due_in(session: Session, tickets: Iterable[TicketView]) -> dict[str, SlaDue]:
    """`sla_due` read in `session`: in the transaction of a change, it sees the targets
    that change moved (a new priority, another tier) before they are committed."""
    ids = {ticket.id: ticket.number for ticket in tickets}
    if not ids:
        return {}
    found: dict[str, dict[str, datetime | None]] = {}
    paused: set[str] = set()
    rows = session.execute(
        select(Ticket.id, SlaClock.kind, SlaClock.due_at, SlaClock.running_since)
        .join(SlaClock, SlaClock.ticket_id == Ticket.id)
        .where(Ticket.id.in_(list(ids)), SlaClock.stopped_at.is_(None))
    )
    for ticket_id, kind, due_at, running_since in rows:
        number = ids[ticket_id]
        found.setdefault(number, {})[kind] = due_at
        if kind == SlaKind.RESOLUTION.value and running_since is None:
            paused.add(number)
    return {
        number: SlaDue(
            first_response=clocks.get(SlaKind.FIRST_RESPONSE.value),
            resolution=clocks.get(SlaKind.RESOLUTION.value),
            paused=number in paused,
        )
        for number, clocks in found.items()
    }


def due_of(dues: Mapping[str, SlaDue], ticket: TicketView) -> SlaDue:
    return dues.get(ticket.number, NO_SLA)


def slack_time(when: datetime) -> str:
    """An instant in mrkdwn: each reader sees it in their own time zone (UTC as fallback)."""
    fallback = f"{when:%a %d %b %H:%M} UTC"
    return f"<!date^{int(when.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def due_words(due: SlaDue) -> str:
    """The resolution target in a few words, for ticket lists and notices."""
    if due.resolution is not None:
        return f"due {slack_time(due.resolution)}"
    if due.paused:
        return "SLA paused (waiting on the requester)"
    return "no SLA target"
