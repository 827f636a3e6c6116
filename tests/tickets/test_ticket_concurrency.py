"""Several agents or replicas acting on the same ticket at the same moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import Desk, open_incident
from tickets import (
    ConversationStore,
    Ticket,
    TicketAlreadyClaimed,
    TicketEvent,
    TicketService,
    TicketView,
)
from tickets.notifications import NotificationKind

Outcome = TypeVar("Outcome")


def all_at_once(count: int, act: Callable[[int], Outcome]) -> list[Outcome]:
    """Run ``act(0..count-1)`` on ``count`` threads released together by a barrier."""
    start = threading.Barrier(count, timeout=30)

    def when_all_ready(index: int) -> Outcome:
        start.wait()
        return act(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(when_all_ready, range(count)))


def test_fifty_agents_clicking_claim_at_once_give_one_winner(
    ticket_service: TicketService, engine: Engine
) -> None:
    ticket = ticket_service.open_ticket(
        requester="U0ALICE", title="Laptop will not boot", description="Black screen."
    )
    agents = [f"U0AGENT{index:02d}" for index in range(50)]

    def claim_as(index: int) -> TicketView | TicketAlreadyClaimed:
        try:
            return ticket_service.claim(ticket.number, agents[index])
        except TicketAlreadyClaimed as lost:
            return lost

    outcomes = all_at_once(len(agents), claim_as)

    wins = [outcome for outcome in outcomes if isinstance(outcome, TicketView)]
    losses = [outcome for outcome in outcomes if isinstance(outcome, TicketAlreadyClaimed)]
    assert len(wins) == 1
    assert len(losses) == 49
    winner = wins[0].assignee
    assert {loss.assignee for loss in losses} == {winner}
    assert ticket_service.get(ticket.number).assignee == winner
    claimed_events = [e for e in ticket_service.events(ticket.number) if e.kind == "claimed"]
    assert [e.actor for e in claimed_events] == [winner]


def test_twenty_redeliveries_of_one_escalation_open_one_ticket(
    ticket_service: TicketService, session_factory: sessionmaker[Session]
) -> None:
    def open_escalation(_index: int) -> str:
        return ticket_service.open_ticket(
            requester="U0ALICE",
            title="Cannot reach the payroll site",
            description="Times out.",
            source="slack",
            idempotency_key="slack-event:Ev0PAYROLL",
        ).number

    numbers = all_at_once(20, open_escalation)

    # One number for all; which one depends on who won (PostgreSQL sequences leave gaps).
    assert len(set(numbers)) == 1
    with session_factory.begin() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1
        assert session.scalar(select(func.count()).select_from(TicketEvent)) == 1


def test_replicas_appending_to_one_conversation_at_once_lose_no_turn(
    conversations: ConversationStore,
) -> None:
    def say(index: int) -> None:
        conversations.append_turn(
            "slack:C0HELP:1700000000.0001", "U0ALICE", "requester", f"{index}"
        )

    all_at_once(12, say)

    record = conversations.load("slack:C0HELP:1700000000.0001")
    assert record is not None
    assert sorted(int(turn["text"]) for turn in record.transcript) == list(range(12))


@pytest.mark.postgres
def test_a_hundred_agents_claiming_on_postgresql_give_exactly_one_winner(
    desk: Desk, store_url: str
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("row locks under real concurrency: PostgreSQL only")
    agents = [f"agent{index:03d}" for index in range(100)]
    for agent in agents:
        desk.directory.register_user(agent, roles=["agent"], team="Service Desk L1")
    number = open_incident(desk).number

    def claim_as(index: int) -> TicketView | TicketAlreadyClaimed:
        try:
            return desk.tickets.claim(number, agents[index])
        except TicketAlreadyClaimed as lost:
            return lost

    outcomes = all_at_once(len(agents), claim_as)

    winners = {o.assignee for o in outcomes if isinstance(o, TicketView)}
    losers = [o for o in outcomes if isinstance(o, TicketAlreadyClaimed)]
    assert len(winners) == 1 and len(losers) == 99
    assert {loss.assignee for loss in losers} == winners
    events = desk.tickets.events(number)
    assert [e.actor for e in events if e.kind == "claimed"] == list(winners)
    # The requester hears about the claim once, from the one winner.
    assert len(desk.sink.of_kind(NotificationKind.TICKET_ASSIGNED)) == 1
