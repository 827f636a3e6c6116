"""Fixtures giving every ticket-store test a fresh, migrated store on SQLite and PostgreSQL.

PostgreSQL tests run in a schema of their own (dropped afterwards), so they can run
against a shared server and leave nothing behind. Without a reachable server those tests
are skipped locally, but fail in CI (``CI`` set), where PostgreSQL must be exercised.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tickets import (
    ConversationStore,
    TicketService,
    create_store_engine,
    make_session_factory,
    upgrade_schema,
)

POSTGRES_URL = os.environ.get(
    "TIER0_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@cache
def _postgres_unreachable_reason() -> str | None:
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        first_line = str(error.orig or error).strip().splitlines()[0]
        return (
            f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string()} unreachable: {first_line}"
        )
    finally:
        engine.dispose()
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database's URL: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'tier0.db'}"
        return

    reason = _postgres_unreachable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must run the PostgreSQL tests)")
        pytest.skip(reason)

    schema = f"t_{uuid.uuid4().hex}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        # libpq's "options" from the URL query, so anything given only the URL string
        # (create_store_engine, Alembic) lands in the test's schema.
        yield (
            make_url(POSTGRES_URL)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


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
