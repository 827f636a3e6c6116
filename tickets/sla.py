"""The SLA engine: clocks that time each ticket against its policy, in business hours.

Each ticket gets two clocks when it opens, first response and resolution, with targets
from the ``SlaPolicy`` of its type and priority. A clock counts working minutes of the
ticket's team calendar (or every minute, for around-the-clock policies); it stands still
while the ticket waits on the requester and carries on from where it stopped when they
answer. The worker calls ``check_sla`` on a schedule: a clock 75 % through its target
raises a warning once, a clock past its target a breach event once, each notified to the
people who can act.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Engine, event, inspect, select
from sqlalchemy.orm import Session, UOWTransaction, sessionmaker

from tickets.business_time import WorkingCalendar, add_business_minutes, business_minutes_between
from tickets.models import (
    BusinessCalendar,
    Holiday,
    RoutingRule,
    SlaClock,
    SlaKind,
    SlaPolicy,
    Team,
    Ticket,
    TicketEventKind,
)

# A warning goes out once this share of the target is used up.
WARNING_SHARE = 0.75


# Calendars and policies change rarely but are read by every ticket step; each process
# keeps them this long. Loading desk configuration here clears the cache at once.
CONFIG_CACHE_SECONDS = 30.0
# Per engine (two in-memory SQLite stores share a URL but not their data).
_config_cache: weakref.WeakKeyDictionary[Engine, dict[tuple[object, ...], tuple[float, object]]] = (
    weakref.WeakKeyDictionary()
)


def clear_config_cache() -> None:
    _config_cache.clear()


# What the cache holds copies of. A change to any of them, through any session of this
# process, clears the cache once it commits; other processes see it within
# CONFIG_CACHE_SECONDS.
_CONFIG_TABLES = (BusinessCalendar, Holiday, RoutingRule, SlaPolicy, Team)
_CONFIG_CHANGED = "tier0.desk_config_changed"


@event.listens_for(Session, "after_flush")
def _note_config_change(session: Session, _flush: UOWTransaction) -> None:
    for instance in (*session.new, *session.dirty, *session.deleted):
        if isinstance(instance, _CONFIG_TABLES) and not _only_cursor_moved(instance):
            session.info[_CONFIG_CHANGED] = True
            # Cleared now too: this transaction's own later steps read the new values.
            clear_config_cache()
            return


@event.listens_for(Session, "after_commit")
def _clear_after_config_commit(session: Session) -> None:
    # Cleared again once committed: another thread may have cached the old values
    # between the flush and the commit.
    if session.info.pop(_CONFIG_CHANGED, False):
        clear_config_cache()


@event.listens_for(Session, "after_rollback")
def _forget_config_change(session: Session) -> None:
    session.info.pop(_CONFIG_CHANGED, None)


def _only_cursor_moved(instance: object) -> bool:
    """A team whose round-robin cursor moved (every assigned ticket) is no config change."""
    if not isinstance(instance, Team):
        return False
    state = inspect(instance)
    if state.pending or state.deleted or state.was_deleted:
        return False
    changed = {attr.key for attr in state.attrs if attr.history.has_changes()}
    return changed <= {"last_assignee"}


def cached_config(session: Session, key: tuple[object, ...], load: Callable[[], object]) -> object:
    """``load()``'s desk configuration, kept per engine for CONFIG_CACHE_SECONDS."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    entries = _config_cache.setdefault(engine, {})
    now = time.monotonic()
    hit = entries.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    value = load()
    entries[key] = (now + CONFIG_CACHE_SECONDS, value)
    return value


def working_calendar(session: Session, calendar_id: int | None) -> WorkingCalendar | None:
    if calendar_id is None:
        return None

    def load() -> WorkingCalendar | None:
        row = session.get(BusinessCalendar, calendar_id)
        if row is None:
            return None
        holidays = session.scalars(select(Holiday.day).where(Holiday.calendar_id == calendar_id))
        return WorkingCalendar(
            timezone=row.timezone,
            opens_at_minute=row.opens_at_minute,
            closes_at_minute=row.closes_at_minute,
            workdays=frozenset(row.workdays),
            holidays=frozenset(holidays),
        )

    return cast(WorkingCalendar | None, cached_config(session, ("calendar", calendar_id), load))


@dataclass(frozen=True)
class PolicyTargets:
    first_response_minutes: int
    resolution_minutes: int
    business_hours: bool


def policy_for(session: Session, ticket_type: str, priority: str) -> PolicyTargets | None:
    def load() -> PolicyTargets | None:
        policy = session.scalars(
            select(SlaPolicy).where(
                SlaPolicy.ticket_type == ticket_type, SlaPolicy.priority == priority
            )
        ).one_or_none()
        if policy is None:
            return None
        return PolicyTargets(
            policy.first_response_minutes, policy.resolution_minutes, policy.business_hours
        )

    return cast(
        PolicyTargets | None, cached_config(session, ("policy", ticket_type, priority), load)
    )


def _team_calendar_id(session: Session, ticket: Ticket) -> int | None:
    return team_calendar_id(session, ticket.team_id)


def team_calendar_id(session: Session, team_id: int | None) -> int | None:
    """The calendar a team's tickets are timed on: its own, else the first one defined."""

    def load() -> int | None:
        team = None if team_id is None else session.get(Team, team_id)
        if team is not None and team.calendar_id is not None:
            return team.calendar_id
        return session.scalars(select(BusinessCalendar.id).order_by(BusinessCalendar.id)).first()

    return cast(int | None, cached_config(session, ("team-calendar", team_id), load))


def clocks_of(session: Session, ticket: Ticket) -> list[SlaClock]:
    return list(
        session.scalars(
            select(SlaClock).where(SlaClock.ticket_id == ticket.id).order_by(SlaClock.id)
        )
    )


def start_clocks(session: Session, ticket: Ticket, now: datetime) -> list[SlaClock]:
    """Start the ticket's first-response and resolution clocks; none without a policy."""
    clocks = planned_clocks_for(session, ticket, now)
    session.add_all(clocks)
    return clocks


def planned_clocks_for(session: Session, ticket: Ticket, now: datetime) -> list[SlaClock]:
    """``planned_clocks`` for the ticket's type, priority and team. A ticket not yet
    inserted has no id: its clocks get theirs from the statement that inserts it."""
    return planned_clocks(
        session,
        ticket_id=ticket.id,
        ticket_type=ticket.type,
        priority=ticket.priority,
        team_id=ticket.team_id,
        now=now,
    )


def planned_clocks(
    session: Session,
    *,
    ticket_id: int,
    ticket_type: str,
    priority: str,
    team_id: int | None,
    now: datetime,
) -> list[SlaClock]:
    """The clocks a ticket opened ``now`` starts with, not yet added to the session (a bulk
    insert can write them). Policy and calendar come from the configuration cache."""
    policy = policy_for(session, ticket_type, priority)
    if policy is None:
        return []
    calendar_id = team_calendar_id(session, team_id) if policy.business_hours else None
    calendar = working_calendar(session, calendar_id)
    clocks = []
    for kind, target in (
        (SlaKind.FIRST_RESPONSE, policy.first_response_minutes),
        (SlaKind.RESOLUTION, policy.resolution_minutes),
    ):
        clock = SlaClock(
            ticket_id=ticket_id,
            kind=kind.value,
            target_minutes=target,
            business_hours=policy.business_hours,
            calendar_id=calendar_id,
            consumed_minutes=0.0,
            running_since=now,
        )
        _schedule(clock, calendar)
        clocks.append(clock)
    return clocks


def _schedule(clock: SlaClock, calendar: WorkingCalendar | None) -> None:
    """Recompute when a running clock warns and falls due."""
    if clock.running_since is None:
        clock.due_at = clock.warn_at = None
        return
    remaining = max(0.0, clock.target_minutes - clock.consumed_minutes)
    until_warning = max(0.0, clock.target_minutes * WARNING_SHARE - clock.consumed_minutes)
    clock.due_at = add_business_minutes(calendar, clock.running_since, remaining)
    clock.warn_at = add_business_minutes(calendar, clock.running_since, until_warning)


def _consumed_until(clock: SlaClock, calendar: WorkingCalendar | None, now: datetime) -> float:
    if clock.running_since is None:
        return clock.consumed_minutes
    return clock.consumed_minutes + business_minutes_between(calendar, clock.running_since, now)


def pause_clocks(session: Session, ticket: Ticket, now: datetime) -> None:
    """Stand the running clocks still: the desk is waiting on the requester."""
    for clock in clocks_of(session, ticket):
        if clock.stopped_at is None and clock.running_since is not None:
            calendar = working_calendar(session, clock.calendar_id)
            clock.consumed_minutes = _consumed_until(clock, calendar, now)
            clock.running_since = None
            _schedule(clock, calendar)


def resume_clocks(session: Session, ticket: Ticket, now: datetime) -> None:
    for clock in clocks_of(session, ticket):
        if clock.stopped_at is None and clock.running_since is None:
            clock.running_since = now
            _schedule(clock, working_calendar(session, clock.calendar_id))


def stop_clock(session: Session, ticket: Ticket, kind: SlaKind, now: datetime) -> None:
    """Stop a clock (first response given, ticket resolved), recording whether it was met."""
    for clock in clocks_of(session, ticket):
        if clock.kind == kind.value and clock.stopped_at is None:
            calendar = working_calendar(session, clock.calendar_id)
            clock.consumed_minutes = _consumed_until(clock, calendar, now)
            clock.running_since = None
            clock.stopped_at = now
            clock.met = clock.breached_at is None and clock.consumed_minutes <= clock.target_minutes


def restart_resolution_clock(session: Session, ticket: Ticket, now: datetime) -> None:
    """A reopened ticket: the resolution clock runs on from the time already used."""
    for clock in clocks_of(session, ticket):
        if clock.kind == SlaKind.RESOLUTION.value and clock.stopped_at is not None:
            clock.stopped_at = None
            clock.met = None
            clock.running_since = now
            _schedule(clock, working_calendar(session, clock.calendar_id))


def retarget_clocks(session: Session, ticket: Ticket, now: datetime) -> None:
    """After a priority or team change: new targets and calendar, time used so far kept."""
    policy = policy_for(session, ticket.type, ticket.priority)
    existing = clocks_of(session, ticket)
    if not existing:
        start_clocks(session, ticket, now)
        return
    if policy is None:
        return
    calendar_id = _team_calendar_id(session, ticket) if policy.business_hours else None
    for clock in existing:
        if clock.stopped_at is not None:
            continue
        old_calendar = working_calendar(session, clock.calendar_id)
        clock.consumed_minutes = _consumed_until(clock, old_calendar, now)
        if clock.running_since is not None:
            clock.running_since = now
        clock.target_minutes = (
            policy.first_response_minutes
            if clock.kind == SlaKind.FIRST_RESPONSE.value
            else policy.resolution_minutes
        )
        clock.business_hours = policy.business_hours
        clock.calendar_id = calendar_id
        # A tighter target may already be 75 % used: warn again under the new one.
        if clock.consumed_minutes < clock.target_minutes * WARNING_SHARE:
            clock.warned_at = None
        _schedule(clock, working_calendar(session, calendar_id))


@dataclass(frozen=True)
class SlaAlert:
    ticket_number: str
    kind: SlaKind
    breached: bool
    due_at: datetime | None


# (session, ticket, clock, breached, now) → record the event and notify, in the caller's
# transaction. Supplied by the service layer, which knows who to tell.
AlertHandler = Callable[[Session, Ticket, SlaClock, bool, datetime], None]


def check_sla(
    session_factory: sessionmaker[Session],
    now: datetime,
    on_alert: AlertHandler,
    *,
    batch_size: int = 500,
) -> list[SlaAlert]:
    """Raise every warning and breach that has come due by ``now``, each exactly once.

    Safe to run from several workers at once: PostgreSQL hands each clock row to one of
    them (SKIP LOCKED); SQLite serialises writers anyway.
    """
    alerts: list[SlaAlert] = []
    for breached in (True, False):
        column = SlaClock.due_at if breached else SlaClock.warn_at
        done = SlaClock.breached_at if breached else SlaClock.warned_at
        while True:
            with session_factory.begin() as session:
                rows = list(
                    session.scalars(
                        select(SlaClock)
                        .where(
                            SlaClock.stopped_at.is_(None),
                            SlaClock.running_since.is_not(None),
                            done.is_(None),
                            column <= now,
                        )
                        .order_by(SlaClock.id)
                        .limit(batch_size)
                        .with_for_update(skip_locked=True)
                    )
                )
                for clock in rows:
                    ticket = session.get(Ticket, clock.ticket_id)
                    if ticket is None:  # pragma: no cover - the foreign key forbids it
                        continue
                    if breached:
                        clock.breached_at = now
                        # A breach implies the warning: never send one after the other.
                        clock.warned_at = clock.warned_at or now
                    else:
                        clock.warned_at = now
                    on_alert(session, ticket, clock, breached, now)
                    alerts.append(
                        SlaAlert(
                            ticket_number=ticket.number or "",
                            kind=SlaKind(clock.kind),
                            breached=breached,
                            due_at=clock.due_at,
                        )
                    )
            if len(rows) < batch_size:
                break
    return alerts


def alert_event_kind(breached: bool) -> TicketEventKind:
    return TicketEventKind.SLA_BREACHED if breached else TicketEventKind.SLA_WARNING


@dataclass(frozen=True)
class ClockView:
    kind: SlaKind
    target_minutes: int
    consumed_minutes: float
    paused: bool
    due_at: datetime | None
    stopped_at: datetime | None
    met: bool | None
    warned: bool
    breached: bool


def clock_views(session: Session, ticket: Ticket, now: datetime) -> list[ClockView]:
    views = []
    for clock in clocks_of(session, ticket):
        calendar = working_calendar(session, clock.calendar_id)
        views.append(
            ClockView(
                kind=SlaKind(clock.kind),
                target_minutes=clock.target_minutes,
                consumed_minutes=round(_consumed_until(clock, calendar, now), 1),
                paused=clock.stopped_at is None and clock.running_since is None,
                due_at=clock.due_at,
                stopped_at=clock.stopped_at,
                met=clock.met,
                warned=clock.warned_at is not None,
                breached=clock.breached_at is not None,
            )
        )
    return views
