"""The ticket life cycle: open, look up, claim, work, escalate, resolve, reopen, close, and
the audit trail of each step.

Every method runs in one transaction of its own and returns detached snapshots
(``TicketView``), so callers never hold a live session or a lazy-loading object. The
statuses and the moves between them are in ``tickets.lifecycle``.

The steps a front end drives (claim, assign, priority, escalate, comment, resolve) take
``then=``: the front end's own writes (the Slack desk's outbox messages) made in the same
transaction, after the change, so the change and what it causes commit together.

Methods taking ``as_user`` enforce the access rules of ``tickets.directory`` for that
person. The first slice's ``get``, ``claim`` and ``resolve`` are the front ends' trusted
calls (Slack checks its triage channel); ``enforce_roles=True`` makes them check too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import Insert, Table, insert, inspect, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session, sessionmaker

from tickets.directory import (
    ensure_user,
    ensure_user_exists,
    find_user,
    is_agent,
    require_role,
    require_team,
    require_view,
    require_worker,
    unregistered_user_row,
    works_ticket,
)
from tickets.errors import ApprovalRequired, PermissionDenied

# Re-exported: callers import the error classes from here.
from tickets.errors import InvalidTransition as InvalidTransition
from tickets.errors import TicketAlreadyClaimed as TicketAlreadyClaimed
from tickets.errors import TicketError as TicketError
from tickets.errors import TicketNotFound as TicketNotFound
from tickets.lifecycle import OPEN_STATUSES, TicketAction, can
from tickets.models import (
    ApprovalState,
    ArticleOutcome,
    ArticleTried,
    Asset,
    CatalogItem,
    Comment,
    CsatResponse,
    IdempotencyKey,
    Role,
    SlaClock,
    Team,
    Ticket,
    TicketArticle,
    TicketEvent,
    TicketEventKind,
    TicketSource,
    TicketStatus,
    TicketType,
    Tier,
    User,
    utc_now,
)
from tickets.notifications import AlreadyTold, NotificationKind, NotificationSink, RecordingSink
from tickets.opening import insert_opened_ticket
from tickets.redaction import redact_secrets
from tickets.routing import (
    category_for_intent,
    pick_assignee,
    priority_for,
    routed_team,
    team_for_category,
)
from tickets.sla import (
    ClockView,
    SlaAlert,
    check_sla,
    clock_views,
    planned_clocks_for,
    retarget_clocks,
    start_clocks,
)
from tickets.steps import (
    BOT_ACTOR,
    display_name,
    mark_first_response,
    next_ticket_number,
    notify_requester,
    notify_team,
    notify_user,
    number_of,
    record_event,
    redact_and_warn,
    ticket_by_number,
    transition,
)

# Re-exported for the first slice's callers.
from tickets.steps import canonical_ticket_number as canonical_ticket_number
from tickets.steps import format_ticket_number as format_ticket_number
from tickets.transcript import TranscriptTurn, copy_transcript, redacted_transcript

MAX_TITLE_LENGTH = 200
MAX_COMMENT_LENGTH = 20_000
# Resolved tickets nobody reopens are closed after this many days.
AUTO_CLOSE_AFTER_DAYS = 7

_PRIORITIES = ("P1", "P2", "P3", "P4")

# Work a front end adds to the transaction of a change, given the session and the
# changed ticket: the Slack desk writes the messages the change causes (the triage card
# edit, the requester's news) to the outbox there, so they exist exactly when the change
# does; a crash after the commit cannot lose them, a rollback sends none.
InTransaction = Callable[[Session, "TicketView"], None]

# The tables opening a ticket writes to with Core statements (see _insert_new_ticket).
_TICKETS = cast(Table, Ticket.__table__)
_TICKET_COLUMNS = frozenset(_TICKETS.c.keys())
_EVENT_INSERT = insert(cast(Table, TicketEvent.__table__))
_ARTICLE_INSERT = insert(cast(Table, TicketArticle.__table__))
_CLOCK_INSERT = insert(cast(Table, SlaClock.__table__))
# What a started clock sets; the rest (stopped, warned, breached, met) stays NULL.
_CLOCK_START_COLUMNS = (
    "kind",
    "target_minutes",
    "business_hours",
    "calendar_id",
    "consumed_minutes",
    "running_since",
    "due_at",
    "warn_at",
)


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
    type: TicketType = TicketType.INCIDENT
    tier: Tier = Tier.L1
    team: str | None = None
    impact: str | None = None
    urgency: str | None = None
    parent: str | None = None
    asset: str | None = None
    catalog_item: str | None = None
    form_answers: Mapping[str, Any] | None = None
    approval_state: ApprovalState | None = None
    change_state: str | None = None
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    first_response_at: datetime | None = None
    closed_at: datetime | None = None
    reopen_count: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @classmethod
    def of(cls, ticket: Ticket) -> TicketView:
        if ticket.number is None:
            raise RuntimeError(f"ticket {ticket.id} has no number yet")
        session = object_session(ticket)
        team = parent = asset = catalog_item = None
        if session is not None:
            # session.get answers from the identity map when it can: a queue of tickets
            # of one team looks the team up once.
            if ticket.team_id is not None:
                team_row = session.get(Team, ticket.team_id)
                team = None if team_row is None else team_row.name
            if ticket.parent_id is not None:
                parent_row = session.get(Ticket, ticket.parent_id)
                parent = None if parent_row is None else parent_row.number
            if ticket.asset_id is not None:
                asset_row = session.get(Asset, ticket.asset_id)
                asset = None if asset_row is None else asset_row.tag
            if ticket.catalog_item_id is not None:
                item_row = session.get(CatalogItem, ticket.catalog_item_id)
                catalog_item = None if item_row is None else item_row.key
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
            type=TicketType(ticket.type or TicketType.INCIDENT.value),
            tier=Tier(ticket.tier or Tier.L1.value),
            team=team,
            impact=ticket.impact,
            urgency=ticket.urgency,
            parent=parent,
            asset=asset,
            catalog_item=catalog_item,
            form_answers=dict(ticket.form_answers or {}),
            approval_state=None
            if ticket.approval_state is None
            else ApprovalState(ticket.approval_state),
            change_state=ticket.change_state,
            scheduled_start=ticket.scheduled_start,
            scheduled_end=ticket.scheduled_end,
            first_response_at=ticket.first_response_at,
            closed_at=ticket.closed_at,
            reopen_count=ticket.reopen_count or 0,
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


@dataclass(frozen=True)
class CommentView:
    author: str
    body: str
    internal: bool
    via: str
    created_at: datetime


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
        notifications: NotificationSink | None = None,
        enforce_roles: bool = False,
    ) -> None:
        self._session_factory = session_factory
        # Injectable so SLA and ageing tests can move time without sleeping.
        self._clock = clock
        # The default keeps what was notified in memory (tests, a console without a
        # worker); production passes the outbox sink.
        self.notifications: NotificationSink = notifications or RecordingSink()
        self._enforce_roles = enforce_roles

    @property
    def session_factory(self) -> sessionmaker[Session]:
        return self._session_factory

    def now(self) -> datetime:
        return self._clock()

    # -- opening ---------------------------------------------------------------------

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
        ticket_type: str = TicketType.INCIDENT,
        impact: str | None = None,
        urgency: str | None = None,
        intent: str | None = None,
        asset: str | None = None,
    ) -> TicketView:
        """Open a ticket, or return the one already opened with this ``idempotency_key``.

        Secrets in the title, description and transcript are redacted before storing, and
        the requester is told to rotate them. With ``impact`` and ``urgency`` the priority
        follows from the matrix; with an ``intent`` and no category, the routing rules pick
        the category. The category picks the team, whose strategy may pick the assignee.
        Raises ValueError with a message for the requester when the input is unusable.
        """
        now = self._clock()
        if (impact is None) != (urgency is None):
            raise ValueError("give both impact and urgency, or neither")
        if impact is not None and urgency is not None:
            priority = priority_for(impact, urgency)
        raw_texts = [title, description] + [
            str(turn.get("text", "")) for turn in transcript if turn.get("role") == "requester"
        ]
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
            type=_checked_type(ticket_type).value,
            impact=None if impact is None else impact.strip().lower(),
            urgency=None if urgency is None else urgency.strip().lower(),
            tier=Tier.L1.value,
            form_answers={},
            reopen_count=0,
            created_at=now,
            updated_at=now,
        )
        try:
            with self._session_factory.begin() as session:
                opened = self._insert_new_ticket(
                    session, ticket, intent=intent, asset=asset, raw_texts=raw_texts, now=now
                )
        except IntegrityError:
            # Two deliveries with the same key raced in a way ON CONFLICT did not catch;
            # the unique constraint let exactly one insert through.
            if ticket.idempotency_key is None:
                raise
            opened = None
        if opened is None:
            # The key was taken but its ticket was not visible yet: look again in a
            # transaction that starts after the winner committed, and hand back its ticket.
            assert ticket.idempotency_key is not None
            with self._session_factory.begin() as session:
                winner = _ticket_by_idempotency_key(session, ticket.idempotency_key)
                if winner is None:
                    raise RuntimeError(f"no ticket holds idempotency key {ticket.idempotency_key}")
                return TicketView.of(winner)
        return opened

    def _insert_new_ticket(
        self,
        session: Session,
        ticket: Ticket,
        *,
        intent: str | None,
        asset: str | None,
        raw_texts: list[str],
        now: datetime,
    ) -> TicketView | None:
        """``open_in_session`` in as few statements as the database allows: what
        ``open_ticket`` runs for every ticket the bot opens, so it is the path that must be
        fast.

        Routing and SLA targets come from the configuration cache. On PostgreSQL the
        requester, ticket, audit line, SLA clocks and articles tried go in with one
        statement (``tickets.opening``); on SQLite with one statement each. Either way the
        ticket is numbered inside its INSERT and a repeated idempotency key is caught by
        that INSERT (ON CONFLICT DO NOTHING), which then writes nothing else. Only what
        needs more (an assignment strategy's lock, notifications, a redaction notice)
        loads anything. None: the idempotency key is taken by a ticket this transaction
        cannot see.
        """
        if intent and ticket.category == "general":
            ticket.category = category_for_intent(session, intent) or ticket.category
        asset_tag = None
        if asset is not None:
            linked = _asset_by_tag(session, asset)
            ticket.asset_id, asset_tag = linked.id, linked.tag
        team = routed_team(session, ticket.category)
        if team is not None:
            ticket.team_id = team.id
            ticket.tier = team.tier
        values: dict[str, Any] = {
            key: value for key, value in inspect(ticket).dict.items() if key in _TICKET_COLUMNS
        }
        opened_detail = {
            "source": ticket.source,
            "category": ticket.category,
            "type": ticket.type,
            "priority": ticket.priority,
            "team": None if team is None else team.name,
        }
        # Planned before the insert: the statement gives them the ticket's id.
        clocks = planned_clocks_for(session, ticket, now)
        connection = session.connection()
        inserted: tuple[int, str] | None
        if connection.dialect.name == "postgresql":
            inserted = insert_opened_ticket(
                connection,
                values,
                requester_row=unregistered_user_row(session, ticket.requester),
                opened_detail=opened_detail,
                clocks=clocks,
                articles=ticket.articles_tried,
            )
        else:
            inserted = _insert_with_statements(
                session, values, opened_detail=opened_detail, clocks=clocks, now=now
            )
        if inserted is None:
            # The same Slack event or email again: the ticket it opened, unchanged.
            existing = _ticket_by_idempotency_key(session, cast(str, ticket.idempotency_key))
            return None if existing is None else TicketView.of(existing)
        ticket.id, ticket.number = inserted
        if team is not None and team.assignment is not None:
            # The strategy locks the team row and moves the ticket on to triaged: that
            # works on the persistent ticket.
            ticket = session.get_one(Ticket, ticket.id)
            self.announce_new(session, ticket, session.get(Team, team.id), now)
        elif ticket.source != TicketSource.SLACK.value:
            self.announce_new(
                session, ticket, None if team is None else session.get(Team, team.id), now
            )
        redact_and_warn(
            session, self.notifications, ticket, author=ticket.requester, texts=raw_texts, at=now
        )
        view = TicketView.of(ticket)
        if object_session(ticket) is None:
            # Never added to the session: TicketView.of could not look these up.
            view = replace(view, team=None if team is None else team.name, asset=asset_tag)
        return view

    def open_in_session(
        self,
        session: Session,
        ticket: Ticket,
        *,
        now: datetime,
        intent: str | None = None,
        asset: str | None = None,
        team: Team | None = None,
        route: bool = True,
    ) -> None:
        """Insert, number, route, start the SLA clocks and announce a new ticket."""
        ensure_user(session, ticket.requester)
        if intent and ticket.category == "general":
            ticket.category = category_for_intent(session, intent) or ticket.category
        if asset is not None:
            ticket.asset_id = _asset_by_tag(session, asset).id
        if route and team is None:
            team = team_for_category(session, ticket.category)
        if team is not None:
            ticket.team_id = team.id
            ticket.tier = team.tier
        ticket.number = next_ticket_number(session.get_bind().dialect.name)
        session.add(ticket)
        session.flush()
        record_event(
            session,
            ticket,
            actor=ticket.requester,
            kind=TicketEventKind.OPENED,
            to_status=TicketStatus.NEW,
            detail={
                "source": ticket.source,
                "category": ticket.category,
                "type": ticket.type,
                "priority": ticket.priority,
                "team": None if team is None else team.name,
            },
            at=now,
        )
        for article in ticket.articles_tried:
            session.add(
                TicketArticle(
                    ticket_id=ticket.id,
                    article_id=article["id"][:200],
                    title=article["title"][:200],
                    outcome=ArticleOutcome.TRIED.value,
                    created_at=now,
                )
            )
        start_clocks(session, ticket, now)
        if not route or ticket.approval_state == ApprovalState.PENDING.value:
            return
        self.announce_new(session, ticket, team, now)

    def announce_new(
        self, session: Session, ticket: Ticket, team: Team | None, now: datetime
    ) -> None:
        assignee = None
        if team is not None and team.assignment is not None:
            # Locked so two tickets opened at once move the round-robin cursor in turn.
            locked_team = session.scalars(
                select(Team).where(Team.id == team.id).with_for_update()
            ).one()
            assignee = pick_assignee(session, locked_team)
        if assignee is not None:
            ticket.assignee = assignee
            transition(
                session,
                ticket,
                TicketAction.TRIAGE,
                actor=BOT_ACTOR,
                kind=TicketEventKind.TRIAGED,
                at=now,
                detail={"assignee": assignee, "team": None if team is None else team.name},
            )
            notify_user(
                session,
                self.notifications,
                assignee,
                ticket,
                NotificationKind.TICKET_ASSIGNED,
                f"{number_of(ticket)} ({ticket.priority}) is yours: {ticket.title}",
            )
        # Slack and console requesters were answered in their conversation, and the
        # Slack front end posts Slack tickets to triage itself.
        if ticket.source not in (TicketSource.SLACK.value, TicketSource.CONSOLE.value):
            notify_requester(
                session,
                self.notifications,
                ticket,
                NotificationKind.TICKET_OPENED,
                f"We opened {number_of(ticket)} for you: {ticket.title}. "
                "Reply to this message to add anything.",
            )
        if ticket.source != TicketSource.SLACK.value and team is not None:
            notify_team(
                session,
                self.notifications,
                team.id,
                ticket,
                NotificationKind.TICKET_OPENED,
                f"New {ticket.type.replace('_', ' ')} {number_of(ticket)} ({ticket.priority}, "
                f"{ticket.category}) from {display_name(session, ticket.requester)}: "
                f"{ticket.title}",
            )

    # -- reading ---------------------------------------------------------------------

    def get(self, number: str) -> TicketView:
        """The ticket with this number ("T-1001", "t-1001" or "1001"); TicketNotFound if none.

        A trusted read for front ends; ``view`` applies the access rules."""
        with self._session_factory.begin() as session:
            return TicketView.of(ticket_by_number(session, number))

    def view(self, number: str, *, as_user: str) -> TicketView:
        """The ticket, if ``as_user`` may see it; TicketNotFound otherwise (not telling
        whether it exists)."""
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number)
            require_view(session, find_user(session, as_user), ticket, number_of(ticket))
            return TicketView.of(ticket)

    def list_for_requester(
        self, requester: str, *, include_resolved: bool = False
    ) -> list[TicketView]:
        """The requester's tickets, newest first; open ones only unless asked otherwise."""
        query = select(Ticket).where(Ticket.requester == requester)
        if not include_resolved:
            query = query.where(Ticket.status.in_([status.value for status in OPEN_STATUSES]))
        query = query.order_by(Ticket.created_at.desc(), Ticket.id.desc())
        with self._session_factory.begin() as session:
            return [TicketView.of(ticket) for ticket in session.scalars(query)]

    def queue(
        self,
        *,
        as_user: str,
        team: str | None = None,
        assignee: str | None = None,
        include_closed: bool = False,
        limit: int = 100,
    ) -> list[TicketView]:
        """The tickets ``as_user`` may see, most urgent first, then oldest first.

        Agents get their team's queue (another team's only if they are admins); employees
        their own tickets and their direct reports'.
        """
        if not 1 <= limit <= 10_000:
            raise ValueError("limit must be between 1 and 10000")
        with self._session_factory.begin() as session:
            user = find_user(session, as_user)
            query = select(Ticket)
            if user is not None and is_agent(user):
                team_row = None if team is None else require_team(session, team)
                if (
                    team_row is not None
                    and Role.ADMIN.value not in user.roles
                    and team_row.id != user.team_id
                ):
                    raise PermissionDenied(
                        f"Only members of {team_row.name} or admins see its queue."
                    )
                team_id = team_row.id if team_row is not None else user.team_id
                if team_id is not None:
                    query = query.where(
                        or_(Ticket.team_id == team_id, Ticket.assignee == user.handle)
                    )
                elif Role.ADMIN.value not in user.roles:
                    query = query.where(
                        or_(Ticket.team_id.is_(None), Ticket.assignee == user.handle)
                    )
            else:
                if team is not None:
                    raise PermissionDenied("Only agents see a team's queue.")
                requesters = [as_user]
                if user is not None:
                    requesters += list(
                        session.scalars(select(User.handle).where(User.manager_id == user.id))
                    )
                query = query.where(Ticket.requester.in_(requesters))
            if assignee is not None:
                query = query.where(Ticket.assignee == assignee)
            if not include_closed:
                query = query.where(Ticket.status.in_([s.value for s in OPEN_STATUSES]))
            query = query.order_by(Ticket.priority, Ticket.created_at, Ticket.id).limit(limit)
            return [TicketView.of(ticket) for ticket in session.scalars(query)]

    def events(self, number: str) -> list[TicketEventView]:
        """The ticket's audit trail, oldest first (a trusted read; see ``history``)."""
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number)
            return _event_views(session, ticket, include_internal=True)

    def history(self, number: str, *, as_user: str) -> list[TicketEventView]:
        """The audit trail as ``as_user`` may see it: requesters do not see internal notes."""
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number)
            user = find_user(session, as_user)
            require_view(session, user, ticket, number_of(ticket))
            return _event_views(session, ticket, include_internal=works_ticket(user, ticket))

    def comments(self, number: str, *, as_user: str) -> list[CommentView]:
        """The conversation on the ticket; internal notes only for those who work it."""
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number)
            user = find_user(session, as_user)
            require_view(session, user, ticket, number_of(ticket))
            query = select(Comment).where(Comment.ticket_id == ticket.id)
            if not works_ticket(user, ticket):
                query = query.where(Comment.internal.is_(False))
            return [
                CommentView(
                    author=c.author,
                    body=c.body,
                    internal=c.internal,
                    via=c.via,
                    created_at=c.created_at,
                )
                for c in session.scalars(query.order_by(Comment.id))
            ]

    def sla(self, number: str, *, as_user: str) -> list[ClockView]:
        """The ticket's SLA clocks as of now."""
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number)
            require_view(session, find_user(session, as_user), ticket, number_of(ticket))
            return clock_views(session, ticket, self._clock())

    # -- working a ticket ---------------------------------------------------------------

    def claim(
        self,
        number: str,
        agent: str,
        *,
        enforce_roles: bool | None = None,
        requester_told: bool = False,
        then: InTransaction | None = None,
    ) -> TicketView:
        """Take a new (or triaged) ticket and start work on it.

        When several agents click "Claim" at once exactly one wins; the others get
        TicketAlreadyClaimed naming the winner. Claiming again as the winner is a no-op.
        A ticket the team's rota assigned to ``agent`` is theirs to start.
        """
        agent = _required_text(agent, "agent", 200)
        sink = AlreadyTold() if requester_told else self.notifications
        with self._session_factory.begin() as session:
            # The row lock serialises concurrent claimers: each sees the ticket as the
            # previous one left it.
            ticket = ticket_by_number(session, number, for_update=True)
            number = number_of(ticket)
            if self._enforcing(enforce_roles):
                require_worker(find_user(session, agent), ticket, number, "claim")
            status = TicketStatus(ticket.status)
            if not can(status, TicketAction.START):
                if ticket.assignee == agent and status in OPEN_STATUSES:
                    return _finished(session, ticket, then)
                if status in OPEN_STATUSES and ticket.assignee is not None:
                    raise TicketAlreadyClaimed(number, ticket.assignee)
                raise InvalidTransition(number, status, "claimed")
            if ticket.assignee is not None and ticket.assignee != agent:
                raise TicketAlreadyClaimed(number, ticket.assignee)
            _require_approved(ticket)
            now = self._clock()
            ticket.assignee = agent
            transition(
                session,
                ticket,
                TicketAction.START,
                actor=agent,
                kind=TicketEventKind.CLAIMED,
                at=now,
            )
            mark_first_response(session, ticket, now)
            notify_requester(
                session,
                sink,
                ticket,
                NotificationKind.TICKET_ASSIGNED,
                f"{display_name(session, agent)} from IT is now working on {number}.",
            )
            return _finished(session, ticket, then)

    def assign(
        self, number: str, assignee: str, *, as_user: str, then: InTransaction | None = None
    ) -> TicketView:
        """Give the ticket to ``assignee`` (an agent), starting work if it had not started."""
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number, for_update=True)
            number = number_of(ticket)
            require_worker(find_user(session, as_user), ticket, number, "assign")
            target = find_user(session, assignee)
            if not is_agent(target) or target is None:
                raise TicketError(f"{assignee} is not an agent, so cannot be assigned {number}.")
            status = TicketStatus(ticket.status)
            if status not in OPEN_STATUSES:
                raise InvalidTransition(number, status, "assigned")
            _require_approved(ticket)
            now = self._clock()
            before = ticket.assignee
            ticket.assignee = target.handle
            if can(status, TicketAction.START):
                transition(
                    session,
                    ticket,
                    TicketAction.START,
                    actor=as_user,
                    kind=TicketEventKind.ASSIGNED,
                    at=now,
                    detail={"before": before, "after": target.handle},
                )
            else:
                ticket.updated_at = now
                record_event(
                    session,
                    ticket,
                    actor=as_user,
                    kind=TicketEventKind.ASSIGNED,
                    detail={"before": before, "after": target.handle},
                    at=now,
                )
            mark_first_response(session, ticket, now)
            if target.handle != as_user:
                notify_user(
                    session,
                    self.notifications,
                    target.handle,
                    ticket,
                    NotificationKind.TICKET_ASSIGNED,
                    f"{display_name(session, as_user)} assigned you {number} "
                    f"({ticket.priority}): {ticket.title}",
                )
            notify_requester(
                session,
                self.notifications,
                ticket,
                NotificationKind.TICKET_ASSIGNED,
                f"{target.name} from IT is now working on {number}.",
            )
            return _finished(session, ticket, then)

    def triage(
        self,
        number: str,
        *,
        as_user: str,
        category: str | None = None,
        team: str | None = None,
    ) -> TicketView:
        """Confirm (or correct) the category and team of a new ticket; it stays unowned."""
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number, for_update=True)
            number = number_of(ticket)
            require_worker(find_user(session, as_user), ticket, number, "triage")
            now = self._clock()
            if category is not None:
                ticket.category = _required_text(category, "category", 50)
            target = None
            if team is not None:
                target = require_team(session, team)
            elif category is not None:
                target = team_for_category(session, ticket.category)
            if target is not None and target.id != ticket.team_id:
                ticket.team_id = target.id
                ticket.tier = target.tier
                retarget_clocks(session, ticket, now)
            transition(
                session,
                ticket,
                TicketAction.TRIAGE,
                actor=as_user,
                kind=TicketEventKind.TRIAGED,
                at=now,
                detail={
                    "category": ticket.category,
                    "team": None if target is None else target.name,
                },
            )
            session.flush()
            return TicketView.of(ticket)

    def escalate(
        self, number: str, *, as_user: str, reason: str, then: InTransaction | None = None
    ) -> TicketView:
        """Hand the ticket to the next tier: the team moves, the owner is cleared, both
        teams and the requester are told."""
        note = redact_secrets(reason).strip()
        if not note:
            raise ValueError("Say why the ticket goes to the next tier.")
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number, for_update=True)
            number = number_of(ticket)
            require_worker(find_user(session, as_user), ticket, number, "escalate")
            from_team = None if ticket.team_id is None else session.get(Team, ticket.team_id)
            if from_team is None or from_team.escalation_team_id is None:
                raise TicketError(
                    f"{number} has no higher tier to go to"
                    + ("" if from_team is None else f" from {from_team.name}")
                    + "."
                )
            to_team = session.get(Team, from_team.escalation_team_id)
            assert to_team is not None  # the foreign key guarantees it
            now = self._clock()
            previous_assignee = ticket.assignee
            transition(
                session,
                ticket,
                TicketAction.ESCALATE,
                actor=as_user,
                kind=TicketEventKind.ESCALATED,
                at=now,
                detail={
                    "from_team": from_team.name,
                    "to_team": to_team.name,
                    "from_assignee": previous_assignee,
                    "reason": note,
                },
            )
            ticket.team_id = to_team.id
            ticket.tier = to_team.tier
            ticket.assignee = None
            retarget_clocks(session, ticket, now)
            mark_first_response(session, ticket, now)
            session.add(
                Comment(
                    ticket_id=ticket.id,
                    author=as_user,
                    body=f"Escalated to {to_team.name}: {note}",
                    internal=True,
                    via=TicketSource.CLI.value,
                    created_at=now,
                )
            )
            text = (
                f"{number} ({ticket.priority}) escalated from {from_team.name} to "
                f"{to_team.name} by {display_name(session, as_user)}: {note}"
            )
            notify_team(
                session,
                self.notifications,
                to_team.id,
                ticket,
                NotificationKind.TICKET_ESCALATED,
                text,
            )
            notify_team(
                session,
                self.notifications,
                from_team.id,
                ticket,
                NotificationKind.TICKET_ESCALATED,
                text,
            )
            notify_requester(
                session,
                self.notifications,
                ticket,
                NotificationKind.TICKET_ESCALATED,
                f"{number} has been passed to our {to_team.tier} specialists ({to_team.name}).",
            )
            assignee = pick_assignee(session, to_team) if to_team.assignment else None
            if assignee is not None:
                ticket.assignee = assignee
                notify_user(
                    session,
                    self.notifications,
                    assignee,
                    ticket,
                    NotificationKind.TICKET_ASSIGNED,
                    f"{text}. It is yours.",
                )
            return _finished(session, ticket, then)

    def change_priority(
        self,
        number: str,
        *,
        as_user: str,
        priority: str | None = None,
        impact: str | None = None,
        urgency: str | None = None,
        reason: str = "",
        then: InTransaction | None = None,
    ) -> TicketView:
        """Set the priority (directly, or from impact × urgency); SLA targets follow."""
        if priority is None and (impact is None or urgency is None):
            raise ValueError("give a priority (P1–P4), or both impact and urgency")
        new_priority = (
            _checked_priority(priority)
            if priority is not None
            else priority_for(cast(str, impact), cast(str, urgency))
        )
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number, for_update=True)
            number = number_of(ticket)
            require_worker(find_user(session, as_user), ticket, number, "change the priority of")
            status = TicketStatus(ticket.status)
            if status not in OPEN_STATUSES:
                raise InvalidTransition(number, status, "reprioritised")
            if new_priority == ticket.priority and priority is not None:
                return _finished(session, ticket, then)
            now = self._clock()
            before = ticket.priority
            ticket.priority = new_priority
            if impact is not None and urgency is not None:
                ticket.impact, ticket.urgency = impact.strip().lower(), urgency.strip().lower()
            ticket.updated_at = now
            record_event(
                session,
                ticket,
                actor=as_user,
                kind=TicketEventKind.PRIORITY_CHANGED,
                detail={"before": before, "after": new_priority, "reason": redact_secrets(reason)},
                at=now,
            )
            retarget_clocks(session, ticket, now)
            notify_team(
                session,
                self.notifications,
                ticket.team_id,
                ticket,
                NotificationKind.PRIORITY_CHANGED,
                f"{number} is now {new_priority} (was {before}): {ticket.title}",
            )
            return _finished(session, ticket, then)

    def comment(
        self,
        number: str,
        body: str,
        *,
        as_user: str,
        internal: bool = False,
        via: str = TicketSource.CLI,
        idempotency_key: str | None = None,
        relayed: bool = False,
        then: InTransaction | None = None,
    ) -> TicketView:
        """Add a comment. A requester's reply resumes a ticket waiting on them; an agent's
        public reply reaches the requester and counts as the first response. Internal notes
        are for agents only and never reach the requester."""
        if not body.strip():
            raise ValueError("A comment needs some text.")
        if len(body) > MAX_COMMENT_LENGTH:
            raise ValueError(f"A comment is at most {MAX_COMMENT_LENGTH} characters.")
        channel = _checked_source(via)
        key = _optional_text(idempotency_key, "idempotency_key", 200)
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number, for_update=True)
            number = number_of(ticket)
            if key is not None and session.get(IdempotencyKey, key) is not None:
                return _finished(session, ticket, then)
            user = find_user(session, as_user)
            require_view(session, user, ticket, number)
            worker = works_ticket(user, ticket)
            if internal and not worker:
                raise PermissionDenied("Only agents working the ticket can add internal notes.")
            status = TicketStatus(ticket.status)
            if status is TicketStatus.CLOSED:
                raise InvalidTransition(number, status, "commented on")
            now = self._clock()
            (text,) = redact_and_warn(
                session, self.notifications, ticket, author=as_user, texts=[body], at=now
            )
            # A comment the caller relays to the other side itself is not queued again.
            sink = AlreadyTold() if relayed else self.notifications
            session.add(
                Comment(
                    ticket_id=ticket.id,
                    author=as_user,
                    body=text.strip(),
                    internal=internal,
                    via=channel.value,
                    created_at=now,
                )
            )
            if key is not None:
                session.add(IdempotencyKey(key=key, ticket_id=ticket.id, created_at=now))
            from_requester = as_user == ticket.requester
            if from_requester and status is TicketStatus.WAITING_ON_REQUESTER:
                transition(
                    session,
                    ticket,
                    TicketAction.REQUESTER_REPLIED,
                    actor=as_user,
                    kind=TicketEventKind.REQUESTER_REPLIED,
                    at=now,
                )
            record_event(
                session,
                ticket,
                actor=as_user,
                kind=TicketEventKind.COMMENTED,
                detail={"internal": internal, "via": channel.value},
                at=now,
            )
            ticket.updated_at = now
            author = display_name(session, as_user)
            if internal:
                pass
            elif from_requester:
                if ticket.assignee is not None:
                    notify_user(
                        session,
                        sink,
                        ticket.assignee,
                        ticket,
                        NotificationKind.COMMENT_ADDED,
                        f"{author} on {number}: {text}",
                    )
                else:
                    notify_team(
                        session,
                        sink,
                        ticket.team_id,
                        ticket,
                        NotificationKind.COMMENT_ADDED,
                        f"{author} on {number}: {text}",
                    )
            else:
                if worker:
                    mark_first_response(session, ticket, now)
                notify_requester(
                    session,
                    sink,
                    ticket,
                    NotificationKind.COMMENT_ADDED,
                    f"{author} on {number}: {text}",
                )
            return _finished(session, ticket, then)

    def await_requester(self, number: str, question: str, *, as_user: str) -> TicketView:
        """Ask the requester something and put the ticket (and its SLA clocks) on hold
        until they answer."""
        if not question.strip():
            raise ValueError("Say what you need from the requester.")
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number, for_update=True)
            number = number_of(ticket)
            require_worker(find_user(session, as_user), ticket, number, "put on hold")
            now = self._clock()
            transition(
                session,
                ticket,
                TicketAction.AWAIT_REQUESTER,
                actor=as_user,
                kind=TicketEventKind.WAITING_ON_REQUESTER,
                at=now,
            )
            (text,) = redact_and_warn(
                session, self.notifications, ticket, author=as_user, texts=[question], at=now
            )
            session.add(
                Comment(
                    ticket_id=ticket.id,
                    author=as_user,
                    body=text.strip(),
                    internal=False,
                    via=TicketSource.CLI.value,
                    created_at=now,
                )
            )
            mark_first_response(session, ticket, now)
            notify_requester(
                session,
                self.notifications,
                ticket,
                NotificationKind.WAITING_ON_REQUESTER,
                f"{display_name(session, as_user)} needs something from you on {number}: "
                f"{text} (reply to continue; the ticket waits for you)",
            )
            session.flush()
            return TicketView.of(ticket)

    def resolve(
        self,
        number: str,
        agent: str,
        resolution: str,
        *,
        enforce_roles: bool | None = None,
        article: tuple[str, str] | None = None,
        requester_told: bool = False,
        then: InTransaction | None = None,
    ) -> TicketView:
        """Resolve an open ticket with a resolution note the requester will see.

        An unclaimed ticket becomes the resolving agent's, so every resolved ticket
        names who resolved it. ``article`` is the (id, title) of the knowledge article
        that solved it. Resolving a problem resolves the incidents linked to it.
        """
        agent = _required_text(agent, "agent", 200)
        note = redact_secrets(resolution).strip()
        if not note:
            raise ValueError("A resolution note is needed: tell the requester what fixed it.")
        with self._session_factory.begin() as session:
            # The row lock makes the status read here the one this update replaces, so
            # the audit trail records the true from_status under concurrent changes.
            ticket = ticket_by_number(session, number, for_update=True)
            if self._enforcing(enforce_roles):
                require_worker(find_user(session, agent), ticket, number_of(ticket), "resolve")
            now = self._clock()
            self._resolve_in(
                session,
                ticket,
                agent,
                note,
                now,
                article=article,
                sink=AlreadyTold() if requester_told else self.notifications,
            )
            if ticket.type == TicketType.PROBLEM.value:
                children = session.scalars(
                    select(Ticket)
                    .where(
                        Ticket.parent_id == ticket.id,
                        Ticket.status.in_([s.value for s in OPEN_STATUSES]),
                    )
                    .order_by(Ticket.id)
                    .with_for_update()
                )
                for child in children:
                    self._resolve_in(
                        session,
                        child,
                        agent,
                        f"Resolved with problem {number_of(ticket)}: {note}",
                        now,
                    )
            return _finished(session, ticket, then)

    def _resolve_in(
        self,
        session: Session,
        ticket: Ticket,
        agent: str,
        note: str,
        now: datetime,
        *,
        article: tuple[str, str] | None = None,
        sink: NotificationSink | None = None,
    ) -> None:
        sink = self.notifications if sink is None else sink
        transition(
            session,
            ticket,
            TicketAction.RESOLVE,
            actor=agent,
            kind=TicketEventKind.RESOLVED,
            at=now,
            detail={} if article is None else {"article": article[0]},
        )
        ticket.resolution = note
        if ticket.assignee is None:
            ticket.assignee = agent
        mark_first_response(session, ticket, now)
        if article is not None:
            session.add(
                TicketArticle(
                    ticket_id=ticket.id,
                    article_id=_required_text(article[0], "article id", 200),
                    title=_required_text(article[1], "article title", 200),
                    outcome=ArticleOutcome.RESOLVED_WITH.value,
                    created_at=now,
                )
            )
        notify_requester(
            session,
            sink,
            ticket,
            NotificationKind.TICKET_RESOLVED,
            f"{number_of(ticket)} is resolved: {note}\n"
            "Not fixed? Reopen it. How did we do? Rate it from 1 to 5.",
        )

    def reopen(self, number: str, *, as_user: str, reason: str) -> TicketView:
        """Reopen a resolved ticket (the requester, or an agent who works it)."""
        note = redact_secrets(reason).strip()
        if not note:
            raise ValueError("Say why the ticket is reopened: what is still wrong?")
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number, for_update=True)
            number = number_of(ticket)
            user = find_user(session, as_user)
            if as_user != ticket.requester:
                require_worker(user, ticket, number, "reopen")
            now = self._clock()
            transition(
                session,
                ticket,
                TicketAction.REOPEN,
                actor=as_user,
                kind=TicketEventKind.REOPENED,
                at=now,
                detail={"reason": note},
            )
            ticket.resolution = None
            session.add(
                Comment(
                    ticket_id=ticket.id,
                    author=as_user,
                    body=f"Reopened: {note}",
                    internal=False,
                    via=TicketSource.CLI.value,
                    created_at=now,
                )
            )
            text = f"{number} was reopened by {display_name(session, as_user)}: {note}"
            if ticket.assignee is not None and ticket.assignee != as_user:
                notify_user(
                    session,
                    self.notifications,
                    ticket.assignee,
                    ticket,
                    NotificationKind.TICKET_REOPENED,
                    text,
                )
            elif ticket.assignee is None:
                notify_team(
                    session,
                    self.notifications,
                    ticket.team_id,
                    ticket,
                    NotificationKind.TICKET_REOPENED,
                    text,
                )
            if as_user != ticket.requester:
                notify_requester(
                    session, self.notifications, ticket, NotificationKind.TICKET_REOPENED, text
                )
            session.flush()
            return TicketView.of(ticket)

    def close(self, number: str, *, as_user: str) -> TicketView:
        """Close a resolved ticket for good (the worker does this after the grace period)."""
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number, for_update=True)
            require_worker(find_user(session, as_user), ticket, number_of(ticket), "close")
            self._close_in(session, ticket, as_user, self._clock())
            session.flush()
            return TicketView.of(ticket)

    def _close_in(self, session: Session, ticket: Ticket, actor: str, now: datetime) -> None:
        transition(
            session, ticket, TicketAction.CLOSE, actor=actor, kind=TicketEventKind.CLOSED, at=now
        )
        notify_requester(
            session,
            self.notifications,
            ticket,
            NotificationKind.TICKET_CLOSED,
            f"{number_of(ticket)} is now closed. Open a new ticket if the problem comes back.",
        )

    def link_to_problem(self, number: str, problem: str, *, as_user: str) -> TicketView:
        """Group an incident under a problem ticket (resolving the problem resolves it)."""
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number, for_update=True)
            parent = ticket_by_number(session, problem)
            number = number_of(ticket)
            require_worker(find_user(session, as_user), ticket, number, "link")
            if parent.type != TicketType.PROBLEM.value:
                raise TicketError(f"{number_of(parent)} is not a problem ticket.")
            if ticket.type != TicketType.INCIDENT.value:
                raise TicketError(
                    f"Only incidents are grouped under problems; {number} is not one."
                )
            if TicketStatus(parent.status) not in OPEN_STATUSES:
                raise TicketError(f"{number_of(parent)} is already {parent.status}.")
            now = self._clock()
            ticket.parent_id = parent.id
            ticket.updated_at = now
            record_event(
                session,
                ticket,
                actor=as_user,
                kind=TicketEventKind.LINKED_TO_PROBLEM,
                detail={"problem": number_of(parent)},
                at=now,
            )
            session.flush()
            return TicketView.of(ticket)

    def register_asset(
        self,
        tag: str,
        *,
        as_user: str,
        asset_type: str,
        name: str,
        serial: str | None = None,
        owner: str | None = None,
        status: str = "in_use",
    ) -> str:
        """Add (or update) a configuration item; agents and admins keep the CMDB."""
        tag = _required_text(tag, "asset tag", 50).upper()
        with self._session_factory.begin() as session:
            require_role(find_user(session, as_user), Role.AGENT, "change assets")
            asset = session.scalars(select(Asset).where(Asset.tag == tag)).one_or_none()
            if asset is None:
                asset = Asset(tag=tag)
                session.add(asset)
            asset.type = _required_text(asset_type, "asset type", 50)
            asset.name = _required_text(name, "asset name", 200)
            asset.serial = _optional_text(serial, "serial", 100)
            asset.owner = _optional_text(owner, "owner", 200)
            asset.status = _required_text(status, "status", 20)
            return tag

    def link_asset(self, number: str, tag: str, *, as_user: str) -> TicketView:
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number, for_update=True)
            number = number_of(ticket)
            user = find_user(session, as_user)
            if as_user != ticket.requester:
                require_worker(user, ticket, number, "link an asset to")
            asset = _asset_by_tag(session, tag)
            now = self._clock()
            ticket.asset_id = asset.id
            ticket.updated_at = now
            record_event(
                session,
                ticket,
                actor=as_user,
                kind=TicketEventKind.ASSET_LINKED,
                detail={"asset": asset.tag},
                at=now,
            )
            session.flush()
            return TicketView.of(ticket)

    def rate(
        self,
        number: str,
        score: int,
        *,
        as_user: str,
        comment: str | None = None,
        then: InTransaction | None = None,
    ) -> None:
        """The requester's satisfaction with a resolved ticket, 1 (bad) to 5 (great), once;
        ``then`` (the front end's thank-you) commits with it."""
        if not 1 <= score <= 5:
            raise ValueError("Rate from 1 (very unhappy) to 5 (very happy).")
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number)
            number = number_of(ticket)
            if as_user != ticket.requester:
                raise PermissionDenied(f"Only the requester of {number} can rate it.")
            if ticket.status not in (TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value):
                raise TicketError(f"{number} can be rated once it is resolved.")
            existing = session.scalars(
                select(CsatResponse).where(CsatResponse.ticket_id == ticket.id)
            ).one_or_none()
            if existing is not None:
                raise TicketError(f"{number} is already rated {existing.score}/5. Thank you!")
            now = self._clock()
            session.add(
                CsatResponse(
                    ticket_id=ticket.id,
                    requester=as_user,
                    score=score,
                    comment=None if comment is None else redact_secrets(comment).strip() or None,
                    created_at=now,
                )
            )
            record_event(
                session,
                ticket,
                actor=as_user,
                kind=TicketEventKind.CSAT_RECORDED,
                detail={"score": score},
                at=now,
            )
            _finished(session, ticket, then)

    def comment_on_rating(
        self, number: str, comment: str, *, as_user: str, then: InTransaction | None = None
    ) -> None:
        """The requester's words on the rating they gave (Slack takes the score with one
        click and the optional comment in a form afterwards); a later comment replaces
        an earlier one. ``then`` (the front end's thanks) commits with it."""
        text = redact_secrets(comment).strip()
        if not text:
            raise ValueError("Write your comment, or close the form.")
        if len(text) > MAX_COMMENT_LENGTH:
            raise ValueError(f"A comment is at most {MAX_COMMENT_LENGTH} characters.")
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number)
            number = number_of(ticket)
            if as_user != ticket.requester:
                raise PermissionDenied(f"Only the requester of {number} can comment on its rating.")
            rating = session.scalars(
                select(CsatResponse).where(CsatResponse.ticket_id == ticket.id)
            ).one_or_none()
            if rating is None:
                raise TicketError(f"Rate {number} from 1 to 5 first, then add your comment.")
            rating.comment = text
            _finished(session, ticket, then)

    def record_triage_message(self, number: str, channel: str, ts: str) -> TicketView:
        """Remember where the ticket was posted in the agents' triage channel."""
        channel = _required_text(channel, "channel", 64)
        ts = _required_text(ts, "ts", 64)
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number)
            now = self._clock()
            ticket.triage_channel = channel
            ticket.triage_ts = ts
            ticket.updated_at = now
            record_event(
                session,
                ticket,
                actor=BOT_ACTOR,
                kind=TicketEventKind.TRIAGE_POSTED,
                detail={"channel": channel, "ts": ts},
                at=now,
            )
            session.flush()
            return TicketView.of(ticket)

    # -- jobs the worker runs ------------------------------------------------------------

    def run_sla_checks(self, now: datetime | None = None) -> list[SlaAlert]:
        """Raise SLA warnings (75 % of a target used) and breaches that are due, once each."""
        return check_sla(self._session_factory, now or self._clock(), self._on_sla_alert)

    def _on_sla_alert(
        self, session: Session, ticket: Ticket, clock: SlaClock, breached: bool, now: datetime
    ) -> None:
        what = clock.kind.replace("_", " ")
        kind = TicketEventKind.SLA_BREACHED if breached else TicketEventKind.SLA_WARNING
        record_event(
            session,
            ticket,
            actor=BOT_ACTOR,
            kind=kind,
            detail={
                "clock": clock.kind,
                "due_at": None if clock.due_at is None else clock.due_at.isoformat(),
            },
            at=now,
        )
        number = number_of(ticket)
        due = "" if clock.due_at is None else f" (due {clock.due_at:%Y-%m-%d %H:%M} UTC)"
        if breached:
            text = f"SLA breached: {number} ({ticket.priority}) missed its {what} target{due}."
        else:
            text = (
                f"SLA warning: {number} ({ticket.priority}) has used 75 % of its {what} time{due}."
            )
        notification = NotificationKind.SLA_BREACHED if breached else NotificationKind.SLA_WARNING
        if ticket.assignee is not None:
            notify_user(session, self.notifications, ticket.assignee, ticket, notification, text)
        if breached or ticket.assignee is None:
            notify_team(session, self.notifications, ticket.team_id, ticket, notification, text)

    def auto_close_resolved(
        self, *, after_days: int = AUTO_CLOSE_AFTER_DAYS, now: datetime | None = None
    ) -> list[str]:
        """Close tickets resolved at least ``after_days`` ago and not reopened since."""
        if after_days < 0:
            raise ValueError("after_days must not be negative")
        now = now or self._clock()
        cutoff = now - timedelta(days=after_days)
        closed: list[str] = []
        while True:
            with self._session_factory.begin() as session:
                batch = list(
                    session.scalars(
                        select(Ticket)
                        .where(
                            Ticket.status == TicketStatus.RESOLVED.value,
                            Ticket.resolved_at <= cutoff,
                        )
                        .order_by(Ticket.id)
                        .limit(500)
                        .with_for_update(skip_locked=True)
                    )
                )
                for ticket in batch:
                    self._close_in(session, ticket, BOT_ACTOR, now)
                    closed.append(number_of(ticket))
            if len(batch) < 500:
                return closed

    def _enforcing(self, enforce_roles: bool | None) -> bool:
        return self._enforce_roles if enforce_roles is None else enforce_roles


def _insert_with_statements(
    session: Session,
    values: Mapping[str, Any],
    *,
    opened_detail: Mapping[str, Any],
    clocks: list[SlaClock],
    now: datetime,
) -> tuple[int, str] | None:
    """What ``tickets.opening`` does in one statement on PostgreSQL, as one statement per
    table (SQLite); (id, number) of the new ticket, None when its idempotency key is taken."""
    connection = session.connection()
    ensure_user_exists(session, values["requester"])
    inserted = connection.execute(_ticket_insert(connection.dialect.name), values).first()
    if inserted is None:
        return None
    ticket_id: int = inserted.id
    connection.execute(
        _EVENT_INSERT,
        {
            "ticket_id": ticket_id,
            "actor": values["requester"],
            "kind": TicketEventKind.OPENED.value,
            "from_status": None,
            "to_status": TicketStatus.NEW.value,
            "detail": dict(opened_detail),
            "created_at": now,
        },
    )
    if values["articles_tried"]:
        connection.execute(
            _ARTICLE_INSERT,
            [
                {
                    "ticket_id": ticket_id,
                    "article_id": article["id"][:200],
                    "title": article["title"][:200],
                    "outcome": ArticleOutcome.TRIED.value,
                    "created_at": now,
                }
                for article in values["articles_tried"]
            ],
        )
    if clocks:
        connection.execute(
            _CLOCK_INSERT,
            [
                {"ticket_id": ticket_id}
                | {column: getattr(clock, column) for column in _CLOCK_START_COLUMNS}
                for clock in clocks
            ],
        )
    return ticket_id, inserted.number


def _finished(session: Session, ticket: Ticket, then: InTransaction | None) -> TicketView:
    """The changed ticket's snapshot, after the caller's work in the same transaction."""
    session.flush()
    view = TicketView.of(ticket)
    if then is not None:
        then(session, view)
    return view


@cache
def _ticket_insert(dialect: str) -> Insert:
    """INSERT … RETURNING id, number, built once per dialect: the values go in as
    parameters, so SQLAlchemy reuses its compiled form for every ticket."""
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        upsert(_TICKETS)
        .values(number=next_ticket_number(dialect))
        # Without a key NULL never clashes, so this costs keyless tickets nothing.
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(_TICKETS.c.id, _TICKETS.c.number)
    )


def _require_approved(ticket: Ticket) -> None:
    if ticket.approval_state == ApprovalState.PENDING.value:
        raise ApprovalRequired(f"{number_of(ticket)} is waiting for approval; work starts after.")
    if ticket.approval_state == ApprovalState.REJECTED.value:
        raise ApprovalRequired(f"{number_of(ticket)} was not approved.")


def _event_views(
    session: Session, ticket: Ticket, *, include_internal: bool
) -> list[TicketEventView]:
    rows = session.scalars(
        select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    )
    return [
        TicketEventView(
            id=event.id,
            ticket_number=number_of(ticket),
            actor=event.actor,
            kind=event.kind,
            from_status=_status_or_none(event.from_status),
            to_status=_status_or_none(event.to_status),
            detail=dict(event.detail),
            created_at=event.created_at,
        )
        for event in rows
        if include_internal or not event.detail.get("internal", False)
    ]


def _asset_by_tag(session: Session, tag: str) -> Asset:
    asset = session.scalars(select(Asset).where(Asset.tag == tag.strip().upper())).one_or_none()
    if asset is None:
        raise TicketError(f"There is no asset {tag.strip()[:50]}.")
    return asset


def _ticket_by_idempotency_key(session: Session, key: str) -> Ticket | None:
    return session.scalars(select(Ticket).where(Ticket.idempotency_key == key)).one_or_none()


def _status_or_none(value: str | None) -> TicketStatus | None:
    return None if value is None else TicketStatus(value)


def _checked_type(ticket_type: str) -> TicketType:
    try:
        return TicketType(str(ticket_type).strip().lower())
    except ValueError:
        allowed = ", ".join(member.value for member in TicketType)
        raise ValueError(
            f"unknown ticket type {ticket_type!r}; expected one of {allowed}"
        ) from None


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
    if normalized not in _PRIORITIES:
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
