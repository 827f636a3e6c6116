"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, MetaData, String, inspect, text

from tickets import (
    Base,
    TicketService,
    create_store_engine,
    downgrade_schema,
    make_session_factory,
    upgrade_schema,
)
from tickets.db import MIGRATIONS_DIR

STORE_TABLES = {"tickets", "ticket_events", "conversations", "processed_events", "slack_inbox"}
SERVICE_DESK_TABLES = {
    "users",
    "teams",
    "business_calendars",
    "holidays",
    "routing_rules",
    "sla_policies",
    "sla_clocks",
    "comments",
    "catalog_items",
    "approvals",
    "assets",
    "ticket_articles",
    "csat_responses",
    "idempotency_keys",
    "questions",
}


def head_revision() -> str:
    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head is not None
    return head


def schema_differences(engine: Engine, metadata: MetaData = Base.metadata) -> list[object]:
    """What ``alembic check`` would report: how the database differs from ``metadata``."""
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def test_the_migrated_database_matches_the_models(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= STORE_TABLES | SERVICE_DESK_TABLES
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

    assert not (STORE_TABLES | SERVICE_DESK_TABLES) & set(inspect(bare_engine).get_table_names())

    upgrade_schema(bare_engine)
    assert schema_differences(bare_engine) == []
    service = TicketService(make_session_factory(bare_engine))
    opened = service.open_ticket(requester="alice", title="Works after a rebuild", description="")
    assert opened.number == "T-1001"


def test_upgrading_an_up_to_date_database_changes_nothing(engine: Engine) -> None:
    upgrade_schema(engine)

    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head_revision()


def test_tickets_of_the_first_slice_survive_the_service_desk_upgrade_and_its_downgrade(
    bare_engine: Engine,
) -> None:
    upgrade_schema(bare_engine, "0001")
    # The models have moved on, so the first slice's rows are written as it wrote them.
    with bare_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO tickets (id, number, requester, title, description, status,"
                " priority, category, source, transcript, articles_tried, created_at, updated_at)"
                " VALUES (1, 'T-1001', 'alice', 'Printer jams', '', 'new', 'P3', 'general',"
                " 'console', '[]', '[]', :now, :now)"
            ),
            {"now": datetime(2024, 11, 1, tzinfo=UTC)},
        )
        connection.execute(
            text(
                "INSERT INTO ticket_events (ticket_id, actor, kind, to_status, detail, created_at)"
                " VALUES (1, 'alice', 'opened', 'new', '{}', :now)"
            ),
            {"now": datetime(2024, 11, 1, tzinfo=UTC)},
        )
    opened_number = "T-1001"

    upgrade_schema(bare_engine, "0002_itsm")
    service = TicketService(make_session_factory(bare_engine))
    upgraded = service.get(opened_number)
    assert upgraded.title == "Printer jams"
    assert upgraded.type == "incident"  # the default every older ticket gets
    assert upgraded.tier == "L1"
    assert [event.kind for event in service.events(opened_number)] == ["opened"]

    downgrade_schema(bare_engine, "0001")
    assert not SERVICE_DESK_TABLES & set(inspect(bare_engine).get_table_names())
    with bare_engine.connect() as connection:
        titles = connection.execute(text("SELECT title FROM tickets")).scalars().all()
        events = connection.execute(text("SELECT count(*) FROM ticket_events")).scalar()
    assert titles == ["Printer jams"]
    assert events == 1


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
