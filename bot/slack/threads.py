"""Which ticket a Slack thread belongs to: the requester's side or the agents' side."""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from tickets.models import Ticket
from tickets.service import TicketView


def ticket_of_thread(
    session_factory: sessionmaker[Session], channel: str, thread_ts: str
) -> TicketView | None:
    """The newest ticket whose requester thread or triage thread is this one."""
    with session_factory() as session:
        ticket = session.scalars(
            select(Ticket)
            .where(
                or_(
                    and_(
                        Ticket.requester_channel == channel, Ticket.requester_thread_ts == thread_ts
                    ),
                    and_(Ticket.triage_channel == channel, Ticket.triage_ts == thread_ts),
                )
            )
            .order_by(Ticket.id.desc())
            .limit(1)
        ).first()
        return TicketView.of(ticket) if ticket is not None else None
