"""Fixtures giving every ticket-store test a fresh, migrated store on SQLite and PostgreSQL
(`store_url`, from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tickets import (
    ConversationStore,
    TicketService,
    create_store_engine,
    make_session_factory,
)
from tickets.catalog import CatalogService, DeskAdmin
from tickets.directory import Directory
from tickets.notifications import RecordingSink
from tickets.seed import load_desk_config
from tickets.service import TicketView


@pytest.fixture
def bare_engine(store_url: str) -> Iterator[Engine]:
    """An engine on the empty database, for tests that run the migrations themselves."""
    engine = create_store_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(migrated_store_url: str) -> Iterator[Engine]:
    """An engine on a store with the newest schema and no rows (migrated once per run)."""
    engine = create_store_engine(migrated_store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def ticket_service(session_factory: sessionmaker[Session]) -> TicketService:
    return TicketService(session_factory)


@pytest.fixture
def conversations(session_factory: sessionmaker[Session]) -> ConversationStore:
    return ConversationStore(session_factory)


# -- a seeded service desk -----------------------------------------------------------------

# Monday 23 November 2026, 10:00 in London (GMT, so also 10:00 UTC): office hours.
MONDAY_10AM = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class FakeClock:
    """The time the services see; tests move it instead of sleeping."""

    def __init__(self, now: datetime = MONDAY_10AM) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Desk:
    """The bundled desk configuration plus a cast: an employee and her manager, two
    first-line agents, a second-line agent, an editor and an admin."""

    tickets: TicketService
    catalog: CatalogService
    admin: DeskAdmin
    directory: Directory
    sink: RecordingSink
    clock: FakeClock


@pytest.fixture
def desk(session_factory: sessionmaker[Session]) -> Desk:
    load_desk_config(session_factory)
    directory = Directory(session_factory)
    directory.register_user("mona", name="Mona Manager", email="mona@example.com")
    directory.register_user(
        "UALICE", name="Alice Employee", email="alice@example.com", manager="mona"
    )
    directory.register_user("UBRUNO", name="Bruno Colleague")
    directory.register_user("ann", name="Ann Agent", roles=["agent"], team="Service Desk L1")
    directory.register_user("bob", name="Bob Agent", roles=["agent"], team="Service Desk L1")
    directory.register_user("carl", name="Carl Expert", roles=["agent"], team="Service Desk L2")
    directory.register_user("dana", name="Dana Expert", roles=["agent"], team="Service Desk L2")
    directory.register_user("eddy", name="Eddy Editor", roles=["editor"])
    directory.register_user("root", name="Rita Admin", roles=["admin"])
    sink = RecordingSink()
    clock = FakeClock()
    tickets = TicketService(session_factory, clock=clock, notifications=sink, enforce_roles=True)
    return Desk(
        tickets=tickets,
        catalog=CatalogService(tickets),
        admin=DeskAdmin(session_factory),
        directory=directory,
        sink=sink,
        clock=clock,
    )


def open_incident(desk: Desk, **overrides: object) -> TicketView:
    """Alice's VPN incident, as email brings it in; ``overrides`` vary it."""
    fields: dict[str, object] = {
        "requester": "UALICE",
        "title": "VPN drops every ten minutes",
        "description": "Since this morning the VPN disconnects every ten minutes.",
        "source": "email",
        "impact": "medium",
        "urgency": "high",
        "category": "network",
    }
    fields.update(overrides)
    return desk.tickets.open_ticket(**fields)  # type: ignore[arg-type]
