"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Engine, MetaData, String, inspect, text

from tickets import (
    Base,
    TicketService,
    create_store_engine,
    downgrade_schema,
    make_session_factory,
    upgrade_schema,
)

NEWEST_REVISION = "0002_slack_inbox"
STORE_TABLES = {"tickets", "ticket_events", "conversations", "processed_events", "slack_inbox"}


def schema_differences(engine: Engine, metadata: MetaData = Base.metadata) -> list[object]:
    """What ``alembic check`` would report: how the database differs from ``metadata``."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def test_the_migrated_database_matches_the_models(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= STORE_TABLES
    assert schema_differences(engine) == []


def test_the_comparison_would_notice_a_model_the_migrations_lack(engine: Engine) -> None:
    drifted = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["tickets"].append_column(Column("sla_due", String(30)))

    differences = schema_differences(engine, drifted)

    assert [difference[0] for difference in differences] == ["add_column"]  # type: ignore[index]


def test_migrations_go_down_to_nothing_and_back_up(bare_engine: Engine) -> None:
    upgrade_schema(bare_engine)
    downgrade_schema(bare_engine)

    assert not STORE_TABLES & set(inspect(bare_engine).get_table_names())

    upgrade_schema(bare_engine)
    assert schema_differences(bare_engine) == []
    service = TicketService(make_session_factory(bare_engine))
    opened = service.open_ticket(requester="alice", title="Works after a rebuild", description="")
    assert opened.number == "T-1001"


def test_upgrading_an_up_to_date_database_changes_nothing(engine: Engine) -> None:
    upgrade_schema(engine)

    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == NEWEST_REVISION


def test_a_sqlite_store_lives_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "tier0.db"
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        upgrade_schema(engine)
        with engine.connect() as connection:
            assert connection.scalar(text("PRAGMA journal_mode")) == "wal"
            assert connection.scalar(text("PRAGMA foreign_keys")) == 1
        assert path.exists()
    finally:
        engine.dispose()


def test_an_in_memory_sqlite_store_works_for_a_quick_console_session() -> None:
    engine = create_store_engine("sqlite://")
    try:
        upgrade_schema(engine)
        service = TicketService(make_session_factory(engine))
        ticket = service.open_ticket(requester="alice", title="Try me", description="")
        assert service.get(ticket.number).title == "Try me"
    finally:
        engine.dispose()


def test_a_plain_postgresql_url_uses_the_bundled_psycopg_driver() -> None:
    engine = create_store_engine("postgresql://tier0@db.internal/helpdesk")

    assert engine.url.drivername == "postgresql+psycopg"
    engine.dispose()
