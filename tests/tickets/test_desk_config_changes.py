"""Opening a ticket reads routing and SLA targets from a per-process cache; a change to
the desk configuration must still route and time the very next ticket."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import Desk, open_incident
from tickets.models import RoutingRule, SlaPolicy, Team


def test_a_routing_change_routes_the_next_ticket(
    desk: Desk, session_factory: sessionmaker[Session]
) -> None:
    assert open_incident(desk, category="network").team == "Service Desk L1"

    with session_factory.begin() as session:
        l2 = session.scalars(select(Team).where(Team.name == "Service Desk L2")).one()
        session.get_one(RoutingRule, "network").team_id = l2.id

    assert open_incident(desk, category="network").team == "Service Desk L2"


def test_an_sla_target_change_times_the_next_ticket(
    desk: Desk, session_factory: sessionmaker[Session]
) -> None:
    before = open_incident(desk, impact="high", urgency="high")  # P1: 15 minutes, 24×7
    with session_factory.begin() as session:
        policy = session.scalars(
            select(SlaPolicy).where(SlaPolicy.ticket_type == "incident", SlaPolicy.priority == "P1")
        ).one()
        policy.first_response_minutes = 5

    after = open_incident(desk, impact="high", urgency="high")

    def first_response_target(number: str) -> int:
        (clock,) = [
            c for c in desk.tickets.sla(number, as_user="ann") if c.kind == "first_response"
        ]
        return clock.target_minutes

    assert first_response_target(before.number) == 15
    assert first_response_target(after.number) == 5
