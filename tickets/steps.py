"""Building blocks every service step shares: find the ticket, move it through the life
cycle, write the audit trail, tell the people concerned.

All of them work inside the caller's session, so a step and its audit lines and
notifications commit (or roll back) together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, cast, func, literal, select
from sqlalchemy.orm import Session

from tickets.directory import find_user
from tickets.errors import TicketNotFound
from tickets.lifecycle import PAUSED_STATUSES, TicketAction, next_status
from tickets.models import (
    TICKET_NUMBERS,
    SlaKind,
    Team,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketSource,
    TicketStatus,
    User,
)
from tickets.notifications import (
    Notification,
    NotificationChannel,
    NotificationKind,
    NotificationSink,
)
from tickets.redaction import redact_secrets, rotate_notice, secrets_found
from tickets.sla import pause_clocks, restart_resolution_clock, resume_clocks, stop_clock

TICKET_NUMBER_PREFIX = "T-"
# Numbers start at T-1001 so they read as ticket numbers, not as "ticket 1".
TICKET_NUMBER_OFFSET = 1000
# The actor recorded for steps the bot takes on its own.
BOT_ACTOR = "tier0"

_TICKET_NUMBER = re.compile(r"#?\s*(?:T\s*-?\s*)?(\d{1,12})", re.IGNORECASE)


def format_ticket_number(ticket_id: int) -> str:
    return f"{TICKET_NUMBER_PREFIX}{TICKET_NUMBER_OFFSET + ticket_id}"


def next_ticket_number(dialect: str) -> ColumnElement[str]:
    """The SQL that numbers a ticket inside its own INSERT.

    PostgreSQL draws from the ``ticket_numbers`` sequence (no lock, no second statement;
    a rolled-back open leaves a gap, as any sequence does). SQLite has no sequences, but
    its writers are serialised (BEGIN IMMEDIATE, see tickets.db) and a new row's id is the
    largest id + 1, so the number is computed from that id in the same statement.
    """
    sequence_value: ColumnElement[int]
    if dialect == "postgresql":
        sequence_value = TICKET_NUMBERS.next_value()
    else:
        sequence_value = select(
            func.coalesce(func.max(Ticket.id), 0) + (TICKET_NUMBER_OFFSET + 1)
        ).scalar_subquery()
    return literal(TICKET_NUMBER_PREFIX) + cast(sequence_value, String)


def canonical_ticket_number(text: str) -> str | None:
    """Read "t-1001", "T1001", "#1001" or "1001" as "T-1001"; None if it is no number."""
    match = _TICKET_NUMBER.fullmatch(text.strip())
    if match is None:
        return None
    return f"{TICKET_NUMBER_PREFIX}{int(match.group(1))}"


def ticket_by_number(session: Session, number: str, *, for_update: bool = False) -> Ticket:
    canonical = canonical_ticket_number(number)
    if canonical is None:
        raise TicketNotFound(number.strip()[:40])
    query = select(Ticket).where(Ticket.number == canonical)
    if for_update:
        # PostgreSQL locks the row; SQLite ignores this, its BEGIN IMMEDIATE already
        # serialises writers (see tickets.db).
        query = query.with_for_update()
    ticket = session.scalars(query).one_or_none()
    if ticket is None:
        raise TicketNotFound(canonical)
    return ticket


def number_of(ticket: Ticket) -> str:
    return ticket.number or format_ticket_number(ticket.id)


def record_event(
    session: Session,
    ticket: Ticket,
    *,
    actor: str,
    kind: TicketEventKind,
    at: datetime,
    from_status: TicketStatus | None = None,
    to_status: TicketStatus | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    session.add(
        TicketEvent(
            ticket_id=ticket.id,
            actor=actor,
            kind=kind.value,
            from_status=None if from_status is None else from_status.value,
            to_status=None if to_status is None else to_status.value,
            detail=dict(detail or {}),
            created_at=at,
        )
    )


def transition(
    session: Session,
    ticket: Ticket,
    action: TicketAction,
    *,
    actor: str,
    kind: TicketEventKind,
    at: datetime,
    detail: Mapping[str, Any] | None = None,
) -> TicketStatus:
    """Move the ticket as ``action`` says (InvalidTransition if it may not), keep its SLA
    clocks in step, and write the audit line. Returns the status it left."""
    before = TicketStatus(ticket.status)
    after = next_status(number_of(ticket), before, action)
    ticket.status = after.value
    ticket.updated_at = at
    if after in PAUSED_STATUSES and before not in PAUSED_STATUSES:
        pause_clocks(session, ticket, at)
    elif before in PAUSED_STATUSES and after not in PAUSED_STATUSES:
        resume_clocks(session, ticket, at)
    if after is TicketStatus.RESOLVED:
        ticket.resolved_at = at
        stop_clock(session, ticket, SlaKind.RESOLUTION, at)
    if after is TicketStatus.CLOSED:
        ticket.closed_at = at
        # Closed without being resolved (a rejected request): nothing is left to time.
        stop_clock(session, ticket, SlaKind.FIRST_RESPONSE, at)
        stop_clock(session, ticket, SlaKind.RESOLUTION, at)
    if action is TicketAction.REOPEN:
        ticket.resolved_at = None
        ticket.reopen_count += 1
        restart_resolution_clock(session, ticket, at)
    record_event(
        session,
        ticket,
        actor=actor,
        kind=kind,
        from_status=before,
        to_status=after,
        detail=detail,
        at=at,
    )
    return before


def mark_first_response(session: Session, ticket: Ticket, at: datetime) -> None:
    """An agent has responded (claimed, replied, asked back): the first-response SLA is met
    or missed now."""
    if ticket.first_response_at is None:
        ticket.first_response_at = at
        stop_clock(session, ticket, SlaKind.FIRST_RESPONSE, at)


# -- notifications ----------------------------------------------------------------------


def email_subject(ticket: Ticket, text: str) -> str:
    # Inbound mail threads on the bracketed number, so replies land on this ticket.
    return f"[{number_of(ticket)}] {text}"


def notify_requester(
    session: Session,
    sink: NotificationSink,
    ticket: Ticket,
    kind: NotificationKind,
    text: str,
    **detail: Any,
) -> None:
    """Tell the requester where they talk to tier0: by email for tickets that came by
    email (or people without Slack), in their Slack thread otherwise."""
    user = find_user(session, ticket.requester)
    by_email = (
        user is not None
        and user.email is not None
        and (ticket.source == TicketSource.EMAIL.value or user.slack_id is None)
    )
    if by_email and user is not None and user.email is not None:
        sink.notify(
            session,
            Notification(
                kind=kind,
                recipient=user.email,
                text=text,
                channel=NotificationChannel.EMAIL,
                ticket_number=number_of(ticket),
                subject=email_subject(ticket, ticket.title),
                detail=dict(detail),
            ),
        )
        return
    sink.notify(
        session,
        Notification(
            kind=kind,
            recipient=ticket.requester,
            text=text,
            ticket_number=number_of(ticket),
            slack_channel=ticket.requester_channel,
            slack_thread_ts=ticket.requester_thread_ts,
            detail=dict(detail),
        ),
    )


def notify_user(
    session: Session,
    sink: NotificationSink,
    handle: str,
    ticket: Ticket | None,
    kind: NotificationKind,
    text: str,
    **detail: Any,
) -> None:
    """A direct message to one person (an agent, an approver): Slack if they have it."""
    user = find_user(session, handle)
    number = None if ticket is None else number_of(ticket)
    if user is not None and user.slack_id is None and user.email is not None:
        subject = text if ticket is None else email_subject(ticket, ticket.title)
        notification = Notification(
            kind=kind,
            recipient=user.email,
            text=text,
            channel=NotificationChannel.EMAIL,
            ticket_number=number,
            subject=subject,
            detail=dict(detail),
        )
    else:
        recipient = handle if user is None or user.slack_id is None else user.slack_id
        notification = Notification(
            kind=kind, recipient=recipient, text=text, ticket_number=number, detail=dict(detail)
        )
    sink.notify(session, notification)


def notify_team(
    session: Session,
    sink: NotificationSink,
    team_id: int | None,
    ticket: Ticket,
    kind: NotificationKind,
    text: str,
    **detail: Any,
) -> None:
    """Post to the team's Slack channel, or mail its address; a team with neither has
    agreed to watch its queue instead."""
    team = None if team_id is None else session.get(Team, team_id)
    if team is None:
        return
    if team.slack_channel:
        sink.notify(
            session,
            Notification(
                kind=kind,
                recipient=team.slack_channel,
                text=text,
                ticket_number=number_of(ticket),
                detail={"team": team.name, **detail},
            ),
        )
    elif team.email:
        sink.notify(
            session,
            Notification(
                kind=kind,
                recipient=team.email,
                text=text,
                channel=NotificationChannel.EMAIL,
                ticket_number=number_of(ticket),
                subject=email_subject(ticket, ticket.title),
                detail={"team": team.name, **detail},
            ),
        )


def redact_and_warn(
    session: Session,
    sink: NotificationSink,
    ticket: Ticket,
    *,
    author: str,
    texts: list[str],
    at: datetime,
) -> list[str]:
    """Redact ``texts``; if any held a secret, record that and tell ``author`` to rotate it.

    Returns the redacted texts, in order.
    """
    kinds: list[str] = []
    for text in texts:
        kinds.extend(secrets_found(text))
    if kinds:
        kinds = list(dict.fromkeys(kinds))
        record_event(
            session,
            ticket,
            actor=BOT_ACTOR,
            kind=TicketEventKind.SECRET_REDACTED,
            detail={"author": author, "kinds": kinds},
            at=at,
        )
        if author == ticket.requester:
            notify_requester(
                session, sink, ticket, NotificationKind.SECRET_REDACTED, rotate_notice(kinds)
            )
        else:
            notify_user(
                session,
                sink,
                author,
                ticket,
                NotificationKind.SECRET_REDACTED,
                rotate_notice(kinds),
            )
    return [redact_secrets(text) for text in texts]


def display_name(session: Session, handle: str) -> str:
    user = find_user(session, handle)
    return handle if user is None else user.name


def is_requester_of(user: User | None, ticket: Ticket) -> bool:
    return user is not None and user.handle == ticket.requester
