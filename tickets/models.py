"""The ticket store's tables: tickets, their audit trail, conversations, Slack deliveries.

The migrations in ``tickets/migrations`` create exactly these tables; a test compares the
two on SQLite and PostgreSQL so they cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypedDict

from sqlalchemy import JSON, DateTime, Dialect, ForeignKey, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from tickets.transcript import TranscriptTurn

# Explicit constraint names, so the hand-written migration and the models name every
# index and constraint the same way on every backend (and later migrations can drop them).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class TicketStatus(StrEnum):
    NEW = "new"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"


class TicketSource(StrEnum):
    """Where a ticket was opened from."""

    SLACK = "slack"
    CONSOLE = "console"
    CLI = "cli"
    API = "api"


class TicketEventKind(StrEnum):
    OPENED = "opened"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    TRIAGE_POSTED = "triage_posted"


class ArticleTried(TypedDict):
    """A knowledge article self-service offered before the ticket was opened."""

    id: str
    title: str
    score: float


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    SQLite has no timezone type and hands back naive datetimes; PostgreSQL hands them
    back in the session's time zone. Normalising here means no caller ever compares a
    naive datetime with an aware one.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store a naive datetime ({value!r}); use UTC")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite stores the text as given; a fixed naive-UTC form keeps ORDER BY right.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    # "T-" + (1000 + id). NULL only between the insert flush and the number assignment
    # that follows it in the same transaction, so a committed ticket always has one.
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    # A Slack user id (U…) or a console user name.
    requester: Mapped[str] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=TicketStatus.NEW.value)
    priority: Mapped[str] = mapped_column(String(2), default="P3")
    category: Mapped[str] = mapped_column(String(50), default="general")
    source: Mapped[str] = mapped_column(String(20))
    # The conversation that led to the ticket, redacted.
    transcript: Mapped[list[TranscriptTurn]] = mapped_column(JSON, default=list)
    # What self-service already offered, so agents do not suggest it again.
    articles_tried: Mapped[list[ArticleTried]] = mapped_column(JSON, default=list)
    assignee: Mapped[str | None] = mapped_column(String(200))
    resolution: Mapped[str | None] = mapped_column(Text)
    # Set from the Slack event id (or a client's key) so a retried delivery cannot open
    # a second ticket; the unique constraint is what makes that hold under a race.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    requester_channel: Mapped[str | None] = mapped_column(String(64))
    requester_thread_ts: Mapped[str | None] = mapped_column(String(64))
    triage_channel: Mapped[str | None] = mapped_column(String(64))
    triage_ts: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TicketEvent(Base):
    """One line of a ticket's audit trail. Rows are only ever inserted."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(50))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class Conversation(Base):
    """What the assistant remembers of one conversation, so any replica can continue it."""

    __tablename__ = "conversations"

    # "slack:<channel>:<thread_ts>" or "console:<user>".
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    requester: Mapped[str] = mapped_column(String(200))
    transcript: Mapped[list[TranscriptTurn]] = mapped_column(JSON, default=list)
    # Free-form assistant state (pending question, last articles offered, ...).
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class ProcessedEvent(Base):
    """A Slack event id already handled; Slack redelivers events it saw no ack for."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)


class SlackInboxEvent(Base):
    """A Slack event, stored before it is acknowledged and worked on after.

    Slack does not redeliver an event it saw acknowledged, so the event itself is kept
    until it has been handled: a replica that dies mid-handling leaves the row
    ``processing`` with a lease that runs out, and another replica takes it over.
    The primary key is Slack's event id, so a redelivery (``X-Slack-Retry-Num``) is
    recognised however many replicas receive it.
    """

    __tablename__ = "slack_inbox"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    # The request body exactly as Slack signed it, to dispatch again after a crash.
    body: Mapped[str] = mapped_column(Text)
    # received → processing → done | failed
    state: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
