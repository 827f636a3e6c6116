"""Which ticket a Slack thread belongs to: the requester's side or the agents' side."""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from tickets.directory import find_user
from tickets.models import Ticket
from tickets.outbox import Delivery, OutboxEntry, on_delivered
from tickets.service import TicketView
from tickets.steps import ticket_by_number


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


# The delivery hook of a message that opens a requester's thread about a ticket created
# without one (a catalog request: its DM message is posted after the ticket exists):
# where it landed becomes the ticket's requester thread, in the transaction recording
# the delivery, so agents' replies reach it and the requester's replies there are relayed.
REQUESTER_THREAD = "slack-requester-thread"


def _remember_requester_thread(session: Session, entry: OutboxEntry, delivery: Delivery) -> None:
    if not entry.ticket_number or not delivery.ref:
        return
    ticket = ticket_by_number(session, entry.ticket_number)
    if ticket.requester_thread_ts:
        return  # the ticket has its thread already: the first one stays
    ticket.requester_channel = delivery.channel or str(entry.payload["channel"])
    ticket.requester_thread_ts = delivery.ref


on_delivered(REQUESTER_THREAD, _remember_requester_thread)


def is_requester(session_factory: sessionmaker[Session], ticket: TicketView, user: str) -> bool:
    """Whether the Slack user `user` is the ticket's requester: the same id, or the
    desk directory's person of that handle (catalog requests are filed by handle)."""
    if user == ticket.requester:
        return True
    with session_factory() as session:
        requester = find_user(session, ticket.requester)
        return requester is not None and requester.slack_id == user
