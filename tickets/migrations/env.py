"""Alembic environment for the ticket store.

``tickets.db.upgrade_schema`` passes an open connection in ``config.attributes``; the
``alembic`` command line can instead give a URL (``sqlalchemy.url`` or
``TIER0_DATABASE_URL``).
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from tickets.db import create_store_engine
from tickets.models import Base

config = context.config


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("TIER0_DATABASE_URL")
    if not url:
        raise RuntimeError("no database to migrate: set sqlalchemy.url or TIER0_DATABASE_URL")
    return url


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=Base.metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_migrations(connection)
        return
    engine = create_store_engine(_database_url())
    try:
        with engine.begin() as new_connection:
            _run_migrations(new_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
