"""The ticket life cycle: open, look up, claim, resolve, and the audit trail of each step.

Every method runs in one transaction of its own and returns detached snapshots
(``TicketView``), so callers never hold a live session or a lazy-loading object.

Life cycle::

    new ──claim──▶ in_progress ──resolve──▶ resolved
     └──────────────resolve───────────────────▲
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tickets.models import (
    ArticleTried,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketSource,
    TicketStatus,
    utc_now,
)
from tickets.redaction import redact_secrets
from tickets.transcript import TranscriptTurn, copy_transcript, redacted_transcript

TICKET_NUMBER_PREFIX = "T-"
# Numbers start at T-1001 so they read as ticket numbers, not as "ticket 1".
TICKET_NUMBER_OFFSET = 1000
MAX_TITLE_LENGTH = 200
# The actor recorded for steps the bot takes on its own.
BOT_ACTOR = "tier0"

_TICKET_NUMBER = re.compile(r"#?\s*(?:T\s*-?\s*)?(\d{1,12})", re.IGNORECASE)
_PRIORITY = re.compile(r"P[1-4]")


class TicketError(Exception):
    """A ticket request that cannot be carried out; ``message`` is fit to show the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TicketNotFound(TicketError):
    def __init__(self, number: str) -> None:
        super().__init__(f"There is no ticket {number}.")
        self.number = number


class TicketAlreadyClaimed(TicketError):
    def __init__(self, number: str, assignee: str) -> None:
        super().__init__(f"{number} is already claimed by {assignee}.")
        self.number = number
        self.assignee = assignee


class InvalidTransition(TicketError):
    def __init__(self, number: str, status: TicketStatus, action: str) -> None:
        status_words = status.value.replace("_", " ")
        super().__init__(f"{number} is {status_words}, so it cannot be {action}.")
        self.number = number
        self.status = status
        self.action = action


@dataclass(frozen=True)
class TicketView:
    """A ticket as it was when read; safe to keep after the session is gone."""

    id: int
    number: str
    requester: str
    title: str
    description: str
    status: TicketStatus
    priority: str
    category: str
    source: TicketSource
    transcript: tuple[TranscriptTurn, ...]
    articles_tried: tuple[ArticleTried, ...]
    assignee: str | None
    resolution: str | None
    idempotency_key: str | None
    requester_channel: str | None
    requester_thread_ts: str | None
    triage_channel: str | None
    triage_ts: str | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.status is not TicketStatus.RESOLVED

    @classmethod
    def of(cls, ticket: Ticket) -> TicketView:
        if ticket.number is None:
            raise RuntimeError(f"ticket {ticket.id} has no number yet")
        return cls(
            id=ticket.id,
            number=ticket.number,
            requester=ticket.requester,
            title=ticket.title,
            description=ticket.description,
            status=TicketStatus(ticket.status),
            priority=ticket.priority,
            category=ticket.category,
            source=TicketSource(ticket.source),
            transcript=tuple(copy_transcript(ticket.transcript)),
            articles_tried=tuple(_copy_articles(ticket.articles_tried)),
            assignee=ticket.assignee,
            resolution=ticket.resolution,
            idempotency_key=ticket.idempotency_key,
            requester_channel=ticket.requester_channel,
            requester_thread_ts=ticket.requester_thread_ts,
            triage_channel=ticket.triage_channel,
            triage_ts=ticket.triage_ts,
            created_at=ticket.created_at,
            updated_at=ticket.updated_at,
            resolved_at=ticket.resolved_at,
        )


@dataclass(frozen=True)
class TicketEventView:
    """One step of a ticket's audit trail."""

    id: int
    ticket_number: str
    actor: str
    kind: str
    from_status: TicketStatus | None
    to_status: TicketStatus | None
    detail: Mapping[str, Any]
    created_at: datetime


def format_ticket_number(ticket_id: int) -> str:
    return f"{TICKET_NUMBER_PREFIX}{TICKET_NUMBER_OFFSET + ticket_id}"


def canonical_ticket_number(text: str) -> str | None:
    """Read "t-1001", "T1001", "#1001" or "1001" as "T-1001"; None if it is no number."""
    match = _TICKET_NUMBER.fullmatch(text.strip())
    if match is None:
        return None
    return f"{TICKET_NUMBER_PREFIX}{int(match.group(1))}"


def ticket_title(text: str) -> str:
    """A one-line title: secrets redacted, whitespace collapsed, at most 200 characters."""
    title = " ".join(redact_secrets(text).split())
    if not title:
        raise ValueError("A ticket needs a title: say in a few words what is wrong.")
    if len(title) > MAX_TITLE_LENGTH:
        title = title[: MAX_TITLE_LENGTH - 1].rstrip() + "…"
    return title


class TicketService:
    """Opens tickets and moves them through their life cycle, one transaction per call."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._session_factory = session_factory
        # Injectable so SLA and ageing tests can move time without sleeping.
        self._clock = clock

    def open_ticket(
        self,
        *,
        requester: str,
        title: str,
        description: str,
        transcript: Iterable[Mapping[str, object]] = (),
        articles_tried: Iterable[Mapping[str, object]] = (),
        category: str = "general",
        priority: str = "P3",
        source: str = TicketSource.CONSOLE,
        idempotency_key: str | None = None,
        requester_channel: str | None = None,
        requester_thread_ts: str | None = None,
    ) -> TicketView:
        """Open a ticket, or return the one already opened with this ``idempotency_key``.

        Secrets in the title, description and transcript are redacted before storing.
        Raises ValueError with a message for the requester when the input is unusable.
        """
        now = self._clock()
        ticket = Ticket(
            requester=_required_text(requester, "requester", 200),
            title=ticket_title(title),
            description=redact_secrets(description).strip(),
            status=TicketStatus.NEW.value,
            priority=_checked_priority(priority),
            category=_required_text(category, "category", 50),
            source=_checked_source(source).value,
            transcript=redacted_transcript(transcript),
            articles_tried=_checked_articles(articles_tried),
            idempotency_key=_optional_text(idempotency_key, "idempotency_key", 200),
            requester_channel=_optional_text(requester_channel, "requester_channel", 64),
            requester_thread_ts=_optional_text(requester_thread_ts, "requester_thread_ts", 64),
            created_at=now,
            updated_at=now,
        )
        try:
            with self._session_factory.begin() as session:
                if ticket.idempotency_key is not None:
                    existing = _ticket_by_idempotency_key(session, ticket.idempotency_key)
                    if existing is not None:
                        return TicketView.of(existing)
                session.add(ticket)
                # The number derives from the id, which exists only once the row is in.
                session.flush()
                ticket.number = format_ticket_number(ticket.id)
                _record_event(
                    session,
                    ticket,
                    actor=ticket.requester,
                    kind=TicketEventKind.OPENED,
                    to_status=TicketStatus.NEW,
                    detail={"source": ticket.source, "category": ticket.category},
                    at=now,
                )
                session.flush()
                opened = TicketView.of(ticket)
        except IntegrityError:
            # Two deliveries with the same key raced past the lookup above; the unique
            # constraint let exactly one insert through. Hand back the one that won.
            if ticket.idempotency_key is None:
                raise
            with self._session_factory.begin() as session:
                winner = _ticket_by_idempotency_key(session, ticket.idempotency_key)
                if winner is None:
                    raise
                return TicketView.of(winner)
        return opened

    def get(self, number: str) -> TicketView:
        """The ticket with this number ("T-1001", "t-1001" or "1001"); TicketNotFound if none."""
        with self._session_factory.begin() as session:
            return TicketView.of(_ticket_by_number(session, number))

    def list_for_requester(
        self, requester: str, *, include_resolved: bool = False
    ) -> list[TicketView]:
        """The requester's tickets, newest first; open ones only unless asked otherwise."""
        query = select(Ticket).where(Ticket.requester == requester)
        if not include_resolved:
            query = query.where(Ticket.status != TicketStatus.RESOLVED.value)
        query = query.order_by(Ticket.created_at.desc(), Ticket.id.desc())
        with self._session_factory.begin() as session:
            return [TicketView.of(ticket) for ticket in session.scalars(query)]

    def claim(self, number: str, agent: str) -> TicketView:
        """Assign a new ticket to ``agent`` and start work on it.

        When several agents click "Claim" at once exactly one wins; the others get
        TicketAlreadyClaimed naming the winner. Claiming again as the winner is a no-op.
        """
        agent = _required_text(agent, "agent", 200)
        with self._session_factory.begin() as session:
            ticket = _ticket_by_number(session, number)
            now = self._clock()
            # Compare-and-set: the WHERE clause is re-checked under the row lock, so of
            # many concurrent claimers only one UPDATE matches a row.
            claimed = cast(
                CursorResult[Any],
                session.execute(
                    update(Ticket)
                    .where(
                        Ticket.id == ticket.id,
                        Ticket.assignee.is_(None),
                        Ticket.status == TicketStatus.NEW.value,
                    )
                    .values(assignee=agent, status=TicketStatus.IN_PROGRESS.value, updated_at=now)
                    .execution_options(synchronize_session=False)
                ),
            )
            session.refresh(ticket)
            if claimed.rowcount != 1:
                status = TicketStatus(ticket.status)
                if status is TicketStatus.RESOLVED:
                    raise InvalidTransition(_number_of(ticket), status, "claimed")
                if ticket.assignee == agent:
                    return TicketView.of(ticket)
                if ticket.assignee is not None:
                    raise TicketAlreadyClaimed(_number_of(ticket), ticket.assignee)
                raise InvalidTransition(_number_of(ticket), status, "claimed")
            _record_event(
                session,
                ticket,
                actor=agent,
                kind=TicketEventKind.CLAIMED,
                from_status=TicketStatus.NEW,
                to_status=TicketStatus.IN_PROGRESS,
                at=now,
            )
            return TicketView.of(ticket)

    def resolve(self, number: str, agent: str, resolution: str) -> TicketView:
        """Close a new or in-progress ticket with a resolution note the requester will see.

        An unclaimed ticket becomes the resolving agent's, so every resolved ticket
        names who resolved it.
        """
        agent = _required_text(agent, "agent", 200)
        note = redact_secrets(resolution).strip()
        if not note:
            raise ValueError("A resolution note is needed: tell the requester what fixed it.")
        with self._session_factory.begin() as session:
            # The row lock makes the status read here the one this update replaces, so
            # the audit trail records the true from_status under concurrent changes.
            ticket = _ticket_by_number(session, number, for_update=True)
            before = TicketStatus(ticket.status)
            if before is TicketStatus.RESOLVED:
                raise InvalidTransition(_number_of(ticket), before, "resolved")
            now = self._clock()
            ticket.status = TicketStatus.RESOLVED.value
            ticket.resolution = note
            ticket.resolved_at = now
            ticket.updated_at = now
            if ticket.assignee is None:
                ticket.assignee = agent
            _record_event(
                session,
                ticket,
                actor=agent,
                kind=TicketEventKind.RESOLVED,
                from_status=before,
                to_status=TicketStatus.RESOLVED,
                at=now,
            )
            session.flush()
            return TicketView.of(ticket)

    def record_triage_message(self, number: str, channel: str, ts: str) -> TicketView:
        """Remember where the ticket was posted in the agents' triage channel."""
        channel = _required_text(channel, "channel", 64)
        ts = _required_text(ts, "ts", 64)
        with self._session_factory.begin() as session:
            ticket = _ticket_by_number(session, number)
            now = self._clock()
            ticket.triage_channel = channel
            ticket.triage_ts = ts
            ticket.updated_at = now
            _record_event(
                session,
                ticket,
                actor=BOT_ACTOR,
                kind=TicketEventKind.TRIAGE_POSTED,
                detail={"channel": channel, "ts": ts},
                at=now,
            )
            session.flush()
            return TicketView.of(ticket)

    def events(self, number: str) -> list[TicketEventView]:
        """The ticket's audit trail, oldest first."""
        with self._session_factory.begin() as session:
            ticket = _ticket_by_number(session, number)
            rows = session.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(TicketEvent.id)
            )
            return [
                TicketEventView(
                    id=event.id,
                    ticket_number=_number_of(ticket),
                    actor=event.actor,
                    kind=event.kind,
                    from_status=_status_or_none(event.from_status),
                    to_status=_status_or_none(event.to_status),
                    detail=dict(event.detail),
                    created_at=event.created_at,
                )
                for event in rows
            ]


def _ticket_by_number(session: Session, number: str, *, for_update: bool = False) -> Ticket:
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


def _ticket_by_idempotency_key(session: Session, key: str) -> Ticket | None:
    return session.scalars(select(Ticket).where(Ticket.idempotency_key == key)).one_or_none()


def _record_event(
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


def _number_of(ticket: Ticket) -> str:
    return ticket.number or format_ticket_number(ticket.id)


def _status_or_none(value: str | None) -> TicketStatus | None:
    return None if value is None else TicketStatus(value)


def _required_text(value: str, name: str, max_length: int) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise ValueError(f"{name} must not be empty")
    if len(text) > max_length:
        raise ValueError(f"{name} is longer than {max_length} characters")
    return text


def _optional_text(value: str | None, name: str, max_length: int) -> str | None:
    if value is None:
        return None
    return _required_text(value, name, max_length)


def _checked_priority(priority: str) -> str:
    normalized = priority.strip().upper()
    if not _PRIORITY.fullmatch(normalized):
        raise ValueError(f"priority must be P1, P2, P3 or P4, not {priority!r}")
    return normalized


def _checked_source(source: str) -> TicketSource:
    try:
        return TicketSource(source)
    except ValueError:
        allowed = ", ".join(member.value for member in TicketSource)
        raise ValueError(f"unknown ticket source {source!r}; expected one of {allowed}") from None


def _checked_articles(articles: Iterable[Mapping[str, object]]) -> list[ArticleTried]:
    checked: list[ArticleTried] = []
    for position, article in enumerate(articles):
        try:
            checked.append(
                ArticleTried(
                    id=str(article["id"]),
                    title=str(article["title"]),
                    score=float(cast(float, article["score"])),
                )
            )
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"article {position} needs an 'id', a 'title' and a numeric 'score'"
            ) from None
    return checked


def _copy_articles(articles: Iterable[ArticleTried]) -> list[ArticleTried]:
    return [ArticleTried(id=a["id"], title=a["title"], score=a["score"]) for a in articles]
