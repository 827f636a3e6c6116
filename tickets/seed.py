"""Loads the desk's configuration (calendars, teams, routing, SLA policies, catalog) from
YAML into the store.

The bundled ``tickets/data/desk.yml`` is the default; admins edit a copy and load it
again. Entries are matched by name (or key) and updated in place, so loading twice
changes nothing and nothing a ticket points at is ever deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tickets.business_time import CalendarError, WorkingCalendar, parse_clock
from tickets.directory import find_team
from tickets.models import (
    BusinessCalendar,
    CatalogItem,
    Holiday,
    RoutingRule,
    SlaPolicy,
    Team,
    TicketType,
    Tier,
)
from tickets.routing import Assignment
from tickets.sla import clear_config_cache

BUNDLED_DESK_CONFIG = Path(__file__).resolve().parent / "data" / "desk.yml"

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([mhd])\s*")
_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,49}")


class DeskConfigError(ValueError):
    """The configuration file is wrong; the message says where and how."""


@dataclass(frozen=True)
class LoadSummary:
    calendars: int
    teams: int
    routing_rules: int
    sla_policies: int
    catalog_items: int


def load_desk_config(
    session_factory: sessionmaker[Session], path: Path = BUNDLED_DESK_CONFIG
) -> LoadSummary:
    """Read ``path`` and upsert everything in it, in one transaction (all or nothing)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DeskConfigError(f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise DeskConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise DeskConfigError(f"{path} must be a mapping with calendars, teams, ...")
    with session_factory.begin() as session:
        calendars = _load_calendars(session, _section(document, "calendars"))
        teams = _load_teams(session, _section(document, "teams"))
        rules = _load_routing(session, _section(document, "routing"))
        policies = _load_policies(session, _section(document, "sla_policies"))
        items = _load_catalog(session, _section(document, "catalog"))
    clear_config_cache()
    return LoadSummary(calendars, teams, rules, policies, items)


def _section(document: dict[str, Any], name: str) -> list[dict[str, Any]]:
    entries = document.get(name) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DeskConfigError(f"'{name}' must be a list of mappings")
    return entries


def _field(entry: dict[str, Any], name: str, where: str) -> Any:
    if entry.get(name) in (None, ""):
        raise DeskConfigError(f"{where}: '{name}' is missing")
    return entry[name]


def _load_calendars(session: Session, entries: list[dict[str, Any]]) -> int:
    for position, entry in enumerate(entries):
        where = f"calendars[{position}]"
        name = str(_field(entry, "name", where))
        try:
            calendar = WorkingCalendar(
                timezone=str(_field(entry, "timezone", where)),
                opens_at_minute=parse_clock(str(_field(entry, "opens", where))),
                closes_at_minute=parse_clock(str(_field(entry, "closes", where))),
                workdays=frozenset(int(day) for day in _field(entry, "workdays", where)),
            )
        except (CalendarError, TypeError, ValueError) as error:
            raise DeskConfigError(f"{where} ({name}): {error}") from None
        row = session.scalars(
            select(BusinessCalendar).where(BusinessCalendar.name == name)
        ).one_or_none()
        if row is None:
            row = BusinessCalendar(name=name)
            session.add(row)
        row.timezone = calendar.timezone
        row.opens_at_minute = calendar.opens_at_minute
        row.closes_at_minute = calendar.closes_at_minute
        row.workdays = sorted(calendar.workdays)
        session.flush()
        existing = {
            h.day: h for h in session.scalars(select(Holiday).where(Holiday.calendar_id == row.id))
        }
        for holiday in entry.get("holidays") or []:
            day = holiday.get("day") if isinstance(holiday, dict) else None
            if not isinstance(day, date):
                raise DeskConfigError(f"{where}: each holiday needs a day like 2026-12-25")
            label = str(holiday.get("name") or "Holiday")[:100]
            if day in existing:
                existing[day].name = label
            else:
                session.add(Holiday(calendar_id=row.id, day=day, name=label))
    return len(entries)


def _load_teams(session: Session, entries: list[dict[str, Any]]) -> int:
    # Two passes: a team may escalate to one defined after it.
    rows: list[tuple[Team, dict[str, Any], str]] = []
    for position, entry in enumerate(entries):
        where = f"teams[{position}]"
        name = str(_field(entry, "name", where))[:100]
        tier = str(_field(entry, "tier", where)).upper()
        if tier not in {t.value for t in Tier}:
            raise DeskConfigError(f"{where} ({name}): tier must be L1 or L2")
        assignment = entry.get("assignment")
        if assignment is not None and assignment not in {a.value for a in Assignment}:
            raise DeskConfigError(
                f"{where} ({name}): assignment must be round_robin, least_loaded or null"
            )
        team = find_team(session, name)
        if team is None:
            team = Team(name=name)
            session.add(team)
        team.tier = tier
        team.slack_channel = entry.get("slack_channel") or None
        team.email = entry.get("email") or None
        team.assignment = assignment
        calendar_name = entry.get("calendar")
        if calendar_name:
            calendar = session.scalars(
                select(BusinessCalendar).where(BusinessCalendar.name == calendar_name)
            ).one_or_none()
            if calendar is None:
                raise DeskConfigError(f"{where} ({name}): no calendar called {calendar_name!r}")
            team.calendar_id = calendar.id
        rows.append((team, entry, where))
    session.flush()
    for team, entry, where in rows:
        target_name = entry.get("escalates_to")
        if target_name:
            target = find_team(session, str(target_name))
            if target is None:
                raise DeskConfigError(f"{where}: escalates to unknown team {target_name!r}")
            if target.id == team.id:
                raise DeskConfigError(f"{where}: a team cannot escalate to itself")
            team.escalation_team_id = target.id
    return len(entries)


def _load_routing(session: Session, entries: list[dict[str, Any]]) -> int:
    for position, entry in enumerate(entries):
        where = f"routing[{position}]"
        category = str(_field(entry, "category", where)).strip()[:50]
        team_name = str(_field(entry, "team", where))
        team = find_team(session, team_name)
        if team is None:
            raise DeskConfigError(f"{where}: unknown team {team_name!r}")
        intents = entry.get("intents") or []
        if not isinstance(intents, list):
            raise DeskConfigError(f"{where}: intents must be a list")
        rule = session.get(RoutingRule, category)
        if rule is None:
            rule = RoutingRule(category=category)
            session.add(rule)
        rule.team_id = team.id
        rule.intents = [str(intent) for intent in intents]
    return len(entries)


def _load_policies(session: Session, entries: list[dict[str, Any]]) -> int:
    first_calendar = session.scalars(select(BusinessCalendar).order_by(BusinessCalendar.id)).first()
    day_minutes = (
        24 * 60
        if first_calendar is None
        else first_calendar.closes_at_minute - first_calendar.opens_at_minute
    )
    for position, entry in enumerate(entries):
        where = f"sla_policies[{position}]"
        ticket_type = str(_field(entry, "type", where))
        if ticket_type not in {t.value for t in TicketType}:
            raise DeskConfigError(f"{where}: unknown ticket type {ticket_type!r}")
        priority = str(_field(entry, "priority", where)).upper()
        if priority not in ("P1", "P2", "P3", "P4"):
            raise DeskConfigError(f"{where}: priority must be P1 to P4")
        business_hours = bool(entry.get("business_hours", True))
        per_day = day_minutes if business_hours else 24 * 60
        first = parse_duration(str(_field(entry, "first_response", where)), per_day, where)
        resolution = parse_duration(str(_field(entry, "resolution", where)), per_day, where)
        if first > resolution:
            raise DeskConfigError(f"{where}: first response cannot take longer than resolution")
        policy = session.scalars(
            select(SlaPolicy).where(
                SlaPolicy.ticket_type == ticket_type, SlaPolicy.priority == priority
            )
        ).one_or_none()
        if policy is None:
            policy = SlaPolicy(ticket_type=ticket_type, priority=priority)
            session.add(policy)
        policy.first_response_minutes = first
        policy.resolution_minutes = resolution
        policy.business_hours = business_hours
    return len(entries)


def parse_duration(text: str, minutes_per_day: int, where: str = "duration") -> int:
    """ "30m", "4h", "2d" → minutes; a day is ``minutes_per_day`` long."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise DeskConfigError(f"{where}: {text!r} is not a duration like 30m, 4h or 2d")
    amount, unit = float(match.group(1)), match.group(2)
    minutes = round(amount * {"m": 1, "h": 60, "d": minutes_per_day}[unit])
    if minutes <= 0:
        raise DeskConfigError(f"{where}: {text!r} must be longer than zero")
    return minutes


def _load_catalog(session: Session, entries: list[dict[str, Any]]) -> int:
    for position, entry in enumerate(entries):
        where = f"catalog[{position}]"
        key = str(_field(entry, "key", where)).strip().lower()
        if not _KEY.fullmatch(key):
            raise DeskConfigError(f"{where}: key {key!r} must be lowercase letters, digits, -")
        team_name = str(_field(entry, "team", where))
        team = find_team(session, team_name)
        if team is None:
            raise DeskConfigError(f"{where} ({key}): unknown team {team_name!r}")
        fields = entry.get("fields") or []
        for field_position, form_field in enumerate(fields):
            if not isinstance(form_field, dict) or not form_field.get("name"):
                raise DeskConfigError(f"{where}.fields[{field_position}] needs a name")
        approvers = [str(a) for a in entry.get("approvers") or []]
        item = session.scalars(select(CatalogItem).where(CatalogItem.key == key)).one_or_none()
        if item is None:
            item = CatalogItem(key=key)
            session.add(item)
        item.name = str(_field(entry, "name", where))[:200]
        item.description = str(entry.get("description") or "")
        item.form_fields = [
            {
                "name": str(f["name"]),
                "label": str(f.get("label") or f["name"]),
                "required": bool(f.get("required", False)),
                **({"choices": [str(c) for c in f["choices"]]} if f.get("choices") else {}),
            }
            for f in fields
        ]
        item.approvers = approvers
        item.fulfilment_team_id = team.id
        item.active = bool(entry.get("active", True))
    return len(entries)


def ensure_desk_config(
    session_factory: sessionmaker[Session], path: Path = BUNDLED_DESK_CONFIG
) -> LoadSummary | None:
    """Load ``path`` into a store that has no teams yet (a fresh install); else nothing."""
    with session_factory.begin() as session:
        if session.scalars(select(Team.id).limit(1)).first() is not None:
            return None
    return load_desk_config(session_factory, path)
