"""Fixtures giving every ticket-store test a fresh, migrated store on SQLite and PostgreSQL
(`store_url`, from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tickets import (
    ConversationStore,
    TicketService,
    create_store_engine,
    make_session_factory,
    upgrade_schema,
)


@pytest.fixture
def bare_engine(store_url: str) -> Iterator[Engine]:
    """An engine on the empty database, for tests that run the migrations themselves."""
    engine = create_store_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def engine(bare_engine: Engine) -> Engine:
    upgrade_schema(bare_engine)
    return bare_engine


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def ticket_service(session_factory: sessionmaker[Session]) -> TicketService:
    return TicketService(session_factory)


@pytest.fixture
def conversations(session_factory: sessionmaker[Session]) -> ConversationStore:
    return ConversationStore(session_factory)
