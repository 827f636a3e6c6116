"""Slack redelivers events; a redelivery must never answer twice or open a second ticket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import tickets.service as service_module
from tickets import (
    ProcessedEvent,
    Ticket,
    TicketService,
    first_delivery,
    forget_deliveries_before,
)


def test_reusing_an_idempotency_key_returns_the_first_ticket(
    ticket_service: TicketService, session_factory: sessionmaker[Session]
) -> None:
    first = ticket_service.open_ticket(
        requester="U0ALICE",
        title="Need access to the finance share",
        description="For the Q4 close.",
        idempotency_key="slack-event:Ev01",
    )

    retry = ticket_service.open_ticket(
        requester="U0ALICE",
        title="Need access to the finance share (retry)",
        description="Slack retried the event.",
        idempotency_key="slack-event:Ev01",
    )

    assert retry == first
    with session_factory.begin() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_a_redelivery_racing_past_the_lookup_gets_the_winners_ticket(
    ticket_service: TicketService,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = ticket_service.open_ticket(
        requester="U0ALICE", title="Laptop stolen", description="", idempotency_key="Ev0LOST"
    )
    lookups: list[str] = []
    real_lookup = service_module._ticket_by_idempotency_key

    def lookup_that_misses_once(session: Session, key: str) -> Ticket | None:
        # The lookup before the insert misses, as when the winner commits just after it.
        lookups.append(key)
        return None if len(lookups) == 1 else real_lookup(session, key)

    monkeypatch.setattr(service_module, "_ticket_by_idempotency_key", lookup_that_misses_once)

    retry = ticket_service.open_ticket(
        requester="U0ALICE", title="Laptop stolen", description="", idempotency_key="Ev0LOST"
    )

    assert retry == first
    assert lookups == ["Ev0LOST", "Ev0LOST"]
    with session_factory.begin() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_tickets_without_a_key_are_always_new(ticket_service: TicketService) -> None:
    first = ticket_service.open_ticket(requester="alice", title="Mouse broken", description="")
    second = ticket_service.open_ticket(requester="alice", title="Mouse broken", description="")

    assert first.number != second.number


def test_an_event_is_handled_on_first_delivery_only(
    session_factory: sessionmaker[Session],
) -> None:
    assert first_delivery(session_factory, "Ev0001") is True
    assert first_delivery(session_factory, "Ev0001") is False
    assert first_delivery(session_factory, "Ev0002") is True


def test_old_delivery_records_can_be_forgotten(session_factory: sessionmaker[Session]) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=2)
    with session_factory.begin() as session:
        session.add(ProcessedEvent(event_id="Ev0OLD", received_at=long_ago))
    first_delivery(session_factory, "Ev0NEW")

    forgotten = forget_deliveries_before(session_factory, datetime.now(UTC) - timedelta(hours=1))

    assert forgotten == 1
    assert first_delivery(session_factory, "Ev0OLD") is True
    assert first_delivery(session_factory, "Ev0NEW") is False
