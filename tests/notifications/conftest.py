"""Fixtures for notification tests: a migrated store on SQLite and PostgreSQL (migrated
once per run, see ``migrated_store_url`` in tests/conftest.py), a clock the test moves,
Slack's Web API played locally and a real local SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TEST_BOT_TOKEN
from tests.fake_slack import FakeSlackApi
from tests.local_smtp import LocalSmtpServer
from tickets import create_store_engine, make_session_factory
from tickets.delivery import SlackSender, SmtpSender, SmtpSettings, make_slack_client
from tickets.models import utc_now


class FakeClock:
    """Time that moves only when the test says so (an hour-long outage in no time)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or utc_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def engine(migrated_store_url: str) -> Iterator[Engine]:
    """An engine on a store with the newest schema and no rows: a copy of a SQLite file
    migrated once, or the run's PostgreSQL schema emptied before the test."""
    engine = create_store_engine(migrated_store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def slack_api() -> Iterator[FakeSlackApi]:
    api = FakeSlackApi(TEST_BOT_TOKEN).start()
    yield api
    api.stop()


@pytest.fixture
def slack_sender(slack_api: FakeSlackApi) -> SlackSender:
    return SlackSender(make_slack_client(TEST_BOT_TOKEN, slack_api.base_url, timeout=5))


@pytest.fixture
def smtp_server() -> Iterator[LocalSmtpServer]:
    server = LocalSmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_sender(smtp_server: LocalSmtpServer) -> SmtpSender:
    return SmtpSender(
        SmtpSettings(
            host="127.0.0.1", port=smtp_server.port, from_address="it@northwind.test", timeout=5
        )
    )
