"""The service desk's tables: people and teams, tickets and their audit trail, SLA
policies and clocks, the service catalog and approvals, assets, questions, conversations.

The migrations in ``tickets/migrations`` create exactly these tables; a test compares the
two on SQLite and PostgreSQL so they cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypedDict

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Sequence,
    String,
    Text,
    UniqueConstraint,
)
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
    """Where a ticket is in its life cycle; ``tickets.lifecycle`` says how it moves."""

    NEW = "new"
    TRIAGED = "triaged"
    IN_PROGRESS = "in_progress"
    WAITING_ON_REQUESTER = "waiting_on_requester"
    RESOLVED = "resolved"
    CLOSED = "closed"


class TicketType(StrEnum):
    INCIDENT = "incident"
    SERVICE_REQUEST = "service_request"
    PROBLEM = "problem"
    CHANGE = "change"


class TicketSource(StrEnum):
    """Where a ticket was opened from."""

    SLACK = "slack"
    EMAIL = "email"
    CONSOLE = "console"
    CLI = "cli"
    API = "api"


class Tier(StrEnum):
    L1 = "L1"
    L2 = "L2"


class Role(StrEnum):
    EMPLOYEE = "employee"
    AGENT = "agent"
    EDITOR = "editor"
    ADMIN = "admin"


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ChangeState(StrEnum):
    """A change's own path, beside its ticket status: approved, then scheduled, then done."""

    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    SCHEDULED = "scheduled"
    IMPLEMENTED = "implemented"
    FAILED = "failed"
    REJECTED = "rejected"


class ArticleOutcome(StrEnum):
    TRIED = "tried"
    RESOLVED_WITH = "resolved_with"


class SlaKind(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class TicketEventKind(StrEnum):
    OPENED = "opened"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    TRIAGE_POSTED = "triage_posted"
    TRIAGED = "triaged"
    ASSIGNED = "assigned"
    ESCALATED = "escalated"
    PRIORITY_CHANGED = "priority_changed"
    COMMENTED = "commented"
    WAITING_ON_REQUESTER = "waiting_on_requester"
    REQUESTER_REPLIED = "requester_replied"
    REOPENED = "reopened"
    CLOSED = "closed"
    LINKED_TO_PROBLEM = "linked_to_problem"
    ASSET_LINKED = "asset_linked"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_DECIDED = "approval_decided"
    CHANGE_SCHEDULED = "change_scheduled"
    CHANGE_COMPLETED = "change_completed"
    SLA_WARNING = "sla_warning"
    SLA_BREACHED = "sla_breached"
    SECRET_REDACTED = "secret_redacted"
    CSAT_RECORDED = "csat_recorded"


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
    __table_args__ = (
        # Verified deflection looks for a requester's tickets in the days after a question.
        Index("ix_tickets_requester_created_at", "requester", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # "T-" + a number drawn when the row is inserted (tickets.steps.next_ticket_number).
    # Nullable only for rows older than that; every ticket opened has one.
    number: Mapped[str | None] = mapped_column(String(20), unique=True)
    # A Slack user id (U…) or a console user name.
    requester: Mapped[str] = mapped_column(String(200), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=TicketStatus.NEW.value, index=True)
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    # -- service desk (revision 0002) --
    type: Mapped[str] = mapped_column(
        String(20), default=TicketType.INCIDENT.value, server_default=TicketType.INCIDENT.value
    )
    # high / medium / low; the priority follows from the two (see tickets.routing).
    impact: Mapped[str | None] = mapped_column(String(10))
    urgency: Mapped[str | None] = mapped_column(String(10))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    tier: Mapped[str] = mapped_column(
        String(2), default=Tier.L1.value, server_default=Tier.L1.value
    )
    asset_id: Mapped[int | None] = mapped_column(ForeignKey("assets.id"))
    # The problem ticket this incident is grouped under.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    catalog_item_id: Mapped[int | None] = mapped_column(ForeignKey("catalog_items.id"))
    # NULL on tickets older than the catalog.
    form_answers: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=dict)
    approval_state: Mapped[str | None] = mapped_column(String(20))
    change_state: Mapped[str | None] = mapped_column(String(20))
    scheduled_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scheduled_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reopen_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


# The numeric part of ticket numbers (T-1001, T-1002, …) on PostgreSQL, drawn inside the
# ticket's INSERT so opening needs no second statement to number it. SQLite has no
# sequences; there the number follows the row id (see tickets.steps.next_ticket_number).
TICKET_NUMBERS = Sequence("ticket_numbers", start=1001, metadata=Base.metadata)


class TicketEvent(Base):
    """One line of a ticket's audit trail. Rows are only ever inserted."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(50), index=True)
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


# -- service desk (revision 0002_itsm) ----------------------------------------------------


class BusinessCalendar(Base):
    """When a team works: SLA clocks only run inside these hours."""

    __tablename__ = "business_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # An IANA zone name ("Europe/Paris"); opening hours are local to it.
    timezone: Mapped[str] = mapped_column(String(64))
    # Minutes after local midnight.
    opens_at_minute: Mapped[int] = mapped_column(Integer)
    closes_at_minute: Mapped[int] = mapped_column(Integer)
    # ISO weekday numbers, Monday = 1.
    workdays: Mapped[list[int]] = mapped_column(JSON)


class Holiday(Base):
    __tablename__ = "holidays"
    __table_args__ = (UniqueConstraint("calendar_id", "day", name="uq_holidays_calendar_id_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("business_calendars.id"))
    day: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(100))


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    tier: Mapped[str] = mapped_column(String(2))
    slack_channel: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(200))
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("business_calendars.id"))
    # Where "escalate" sends this team's tickets (L1 → L2).
    escalation_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    # round_robin or least_loaded; None leaves tickets in the queue to be claimed.
    assignment: Mapped[str | None] = mapped_column(String(20))
    # The round-robin cursor: who got the team's last ticket.
    last_assignee: Mapped[str | None] = mapped_column(String(200))


class User(Base):
    """Someone tier0 knows: requester, agent, editor or admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # What tickets name as requester, assignee and actor: the Slack user id (U…), or a
    # login for people who use the console or email only.
    handle: Mapped[str] = mapped_column(String(200), unique=True)
    slack_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200), unique=True)
    roles: Mapped[list[str]] = mapped_column(JSON)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class RoutingRule(Base):
    """Which team works a category, and which intents the assistant files under it."""

    __tablename__ = "routing_rules"

    category: Mapped[str] = mapped_column(String(50), primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    intents: Mapped[list[str]] = mapped_column(JSON)


class SlaPolicy(Base):
    __tablename__ = "sla_policies"
    __table_args__ = (
        UniqueConstraint("ticket_type", "priority", name="uq_sla_policies_ticket_type_priority"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_type: Mapped[str] = mapped_column(String(20))
    priority: Mapped[str] = mapped_column(String(2))
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
    # False: the clock runs around the clock (a P1 outage does not wait for Monday).
    business_hours: Mapped[bool] = mapped_column(Boolean)


class SlaClock(Base):
    """One SLA target of one ticket, timed in business minutes.

    While running, ``due_at`` and ``warn_at`` are wall-clock instants recomputed whenever
    the clock resumes; while paused (waiting on the requester) both are NULL and
    ``consumed_minutes`` holds the business time already spent.
    """

    __tablename__ = "sla_clocks"
    __table_args__ = (UniqueConstraint("ticket_id", "kind", name="uq_sla_clocks_ticket_id_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    kind: Mapped[str] = mapped_column(String(20))
    target_minutes: Mapped[int] = mapped_column(Integer)
    business_hours: Mapped[bool] = mapped_column(Boolean)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("business_calendars.id"))
    consumed_minutes: Mapped[float] = mapped_column(Float)
    running_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set when stopped: whether the target was met.
    met: Mapped[bool | None] = mapped_column(Boolean)


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    author: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # Internal notes are for agents only and never reach the requester.
    internal: Mapped[bool] = mapped_column(Boolean)
    via: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class CatalogItem(Base):
    __tablename__ = "catalog_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(50), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    # [{"name": ..., "label": ..., "required": bool, "choices": [...]?}]
    form_fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # Who must approve, in order: "manager" (the requester's) or a user handle.
    approvers: Mapped[list[str]] = mapped_column(JSON)
    fulfilment_team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    active: Mapped[bool] = mapped_column(Boolean)


class Approval(Base):
    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    approver: Mapped[str] = mapped_column(String(200), index=True)
    # Approvals are asked one after another, in this order.
    position: Mapped[int] = mapped_column(Integer)
    decision: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Asset(Base):
    """A configuration item: a laptop, a licence, a service."""

    __tablename__ = "assets"

    id: Mapped[int] = mapped_column(primary_key=True)
    tag: Mapped[str] = mapped_column(String(50), unique=True)
    type: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    serial: Mapped[str | None] = mapped_column(String(100))
    owner: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(20))


class TicketArticle(Base):
    """A knowledge article tried before, or used to resolve, a ticket."""

    __tablename__ = "ticket_articles"
    __table_args__ = (
        UniqueConstraint(
            "ticket_id", "article_id", "outcome", name="uq_ticket_articles_ticket_id_article"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    article_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class CsatResponse(Base):
    __tablename__ = "csat_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    requester: Mapped[str] = mapped_column(String(200))
    # 1 (very unhappy) to 5 (very happy).
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)


class IdempotencyKey(Base):
    """A client-supplied key for a step other than opening (a comment by email, a catalog
    request): a retried submission finds the key and is not applied twice."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class Question(Base):
    """An IT question someone asked the assistant, and how self-service did: what the
    deflection metrics count."""

    __tablename__ = "questions"
    __table_args__ = (Index("ix_questions_asker_asked_at", "asker", "asked_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    asker: Mapped[str] = mapped_column(String(200), index=True)
    # Redacted question text.
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(100))
    article_id: Mapped[str | None] = mapped_column(String(200))
    answered: Mapped[bool] = mapped_column(Boolean)
    # True/False once the asker said whether the answer helped; None if they did not say.
    helpful: Mapped[bool | None] = mapped_column(Boolean)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)
    # The conversation it was asked in: the key of its per-article events in
    # article_feedback (knowledge.feedback), which count per article what this counts per
    # question. (Revision 0006.)
    conversation_key: Mapped[str | None] = mapped_column(String(200))


class SlackInboxEvent(Base):
    """A Slack event, stored before it is acknowledged and worked on after.

    Slack does not redeliver an event it saw acknowledged, so the event itself is kept
    until it has been handled: a replica that dies mid-handling leaves the row
    ``processing`` with a lease that runs out, and another replica takes it over.
    The primary key is Slack's event id, so a redelivery (``X-Slack-Retry-Num``) is
    recognised however many replicas receive it.
    """

    __tablename__ = "slack_inbox"
    # The answering processes' poll: the oldest events still waiting, many times a second.
    __table_args__ = (Index("ix_slack_inbox_waiting", "state", "received_at"),)

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    # The request body exactly as Slack signed it, to dispatch again after a crash.
    body: Mapped[str] = mapped_column(Text)
    # received → processing → done | failed
    state: Mapped[str] = mapped_column(String(20), index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# The knowledge base keeps its article versions and feedback in the same store; importing
# its tables here puts them in Base.metadata wherever the ticket models are used (Alembic).
from knowledge import records as _knowledge_records  # noqa: E402, F401
