"""Routing rules: how urgent a ticket is, which team works it, and who on that team gets it.

* priority follows from impact × urgency (the ITIL matrix below);
* the assistant's intent gives a category, the category gives a team;
* a team with an assignment strategy hands each new ticket to one of its agents, either in
  turn (round robin) or to whoever has the fewest open tickets (least loaded).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tickets.lifecycle import OPEN_STATUSES
from tickets.models import Role, RoutingRule, Team, Ticket, User
from tickets.sla import cached_config


class Level(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Assignment(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"


# (impact, urgency) → priority. Widespread and urgent is P1; one person, can wait, P4.
PRIORITY_MATRIX: dict[tuple[Level, Level], str] = {
    (Level.HIGH, Level.HIGH): "P1",
    (Level.HIGH, Level.MEDIUM): "P2",
    (Level.MEDIUM, Level.HIGH): "P2",
    (Level.HIGH, Level.LOW): "P3",
    (Level.MEDIUM, Level.MEDIUM): "P3",
    (Level.LOW, Level.HIGH): "P3",
    (Level.MEDIUM, Level.LOW): "P4",
    (Level.LOW, Level.MEDIUM): "P4",
    (Level.LOW, Level.LOW): "P4",
}


def checked_level(value: str, name: str) -> Level:
    try:
        return Level(value.strip().lower())
    except ValueError:
        raise ValueError(f"{name} must be high, medium or low, not {value!r}") from None


def priority_for(impact: str, urgency: str) -> str:
    return PRIORITY_MATRIX[(checked_level(impact, "impact"), checked_level(urgency, "urgency"))]


@dataclass(frozen=True)
class RoutedTeam:
    """What opening a ticket needs to know of the team it routes to."""

    id: int
    name: str
    tier: str
    assignment: str | None


def category_for_intent(session: Session, intent: str) -> str | None:
    """The category whose routing rule lists ``intent``; None if no rule does."""

    def load() -> tuple[tuple[str, tuple[str, ...]], ...]:
        rules = session.scalars(select(RoutingRule).order_by(RoutingRule.category))
        return tuple((rule.category, tuple(rule.intents)) for rule in rules)

    rules = cast(tuple[tuple[str, tuple[str, ...]], ...], cached_config(session, ("rules",), load))
    for category, intents in rules:
        if intent in intents:
            return category
    return None


def team_for_category(session: Session, category: str) -> Team | None:
    """The team a category routes to, else the first-line team (L1) with the lowest id."""
    routed = routed_team(session, category)
    return None if routed is None else session.get(Team, routed.id)


def routed_team(session: Session, category: str) -> RoutedTeam | None:
    """``team_for_category`` from the configuration cache: no query on a warm cache."""

    def load() -> RoutedTeam | None:
        rule = session.get(RoutingRule, category)
        if rule is not None:
            team = session.get(Team, rule.team_id)
        else:
            team = session.scalars(select(Team).where(Team.tier == "L1").order_by(Team.id)).first()
        if team is None:
            return None
        return RoutedTeam(id=team.id, name=team.name, tier=team.tier, assignment=team.assignment)

    return cast(RoutedTeam | None, cached_config(session, ("route", category), load))


def pick_assignee(session: Session, team: Team) -> str | None:
    """The agent the team's strategy hands the next ticket to; None leaves it in the queue.

    The caller holds the team row lock (round robin moves its cursor), so two tickets
    opened at once do not both go to the same agent by accident.
    """
    if team.assignment is None:
        return None
    agents = [
        user.handle
        for user in session.scalars(select(User).where(User.team_id == team.id).order_by(User.id))
        if Role.AGENT.value in user.roles
    ]
    if not agents:
        return None
    if team.assignment == Assignment.ROUND_ROBIN:
        if team.last_assignee in agents:
            chosen = agents[(agents.index(team.last_assignee) + 1) % len(agents)]
        else:
            chosen = agents[0]
        team.last_assignee = chosen
        return chosen
    load: dict[str | None, int] = {
        assignee: count
        for assignee, count in session.execute(
            select(Ticket.assignee, func.count())
            .where(
                Ticket.assignee.in_(agents),
                Ticket.status.in_([status.value for status in OPEN_STATUSES]),
            )
            .group_by(Ticket.assignee)
        )
    }
    # Fewest open tickets wins; ties go to the agent listed first, so the choice is stable.
    return min(agents, key=lambda agent: (load.get(agent, 0), agents.index(agent)))
