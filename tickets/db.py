"""Engines, sessions and schema migrations for the ticket store.

SQLite (a file, WAL) is the default that needs no set-up; PostgreSQL is what several bot
replicas share in production. Both get their schema from the same Alembic migrations.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# How long a SQLite writer waits for another writer's lock before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 15_000


def create_store_engine(url: str, *, pool_size: int = 5) -> Engine:
    """Create the engine for a ticket store URL (``sqlite:///path`` or ``postgresql+psycopg://``).

    ``pool_size``: the PostgreSQL connections kept open for reuse; as many as the threads
    that work the store at once, or the ones beyond it (up to 10 more) are opened and
    closed again for every transaction, which costs the server a process start each time.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        # Plain "postgresql://" URLs (as hosting providers hand them out) would ask for
        # psycopg2; tier0 ships psycopg 3.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        # pre_ping: replicas hold pooled connections across PostgreSQL restarts/failovers.
        return create_engine(parsed, pool_pre_ping=True, pool_size=pool_size)

    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or parsed.query.get("mode") == "memory"
    if not in_memory:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed)
    _configure_sqlite(engine, use_wal=not in_memory)
    return engine


def _configure_sqlite(engine: Engine, *, use_wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module (which only emits it before DML) so the
        # "begin" hook below controls every transaction, reads and DDL included.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # SQLite ignores foreign keys unless asked, per connection.
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            if use_wal:
                # WAL lets readers carry on while one writer commits.
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front, waiting up to the busy timeout. A
        # deferred transaction that reads and then writes fails at once with "database is
        # locked" when another writer committed in between, which no timeout can cure.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def in_schema(url: str, schema: str) -> str:
    """`url` with libpq's "options" setting the search path, so anything given only the URL
    string (create_store_engine, Alembic, a subprocess) works in `schema`."""
    return (
        make_url(url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


@contextlib.contextmanager
def scratch_schema(url: str, schema: str, *, keep: bool = False) -> Iterator[str]:
    """A new, empty PostgreSQL schema in the database at `url`, given as a URL that works in
    it; dropped with everything in it afterwards, unless `keep`."""
    admin = create_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            yield in_schema(url, schema)
        finally:
            if not keep:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: objects stay readable after the transaction that loaded them.
    return sessionmaker(bind=engine, expire_on_commit=False)


def upgrade_schema(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` (the newest by default)."""
    _migrate(engine, lambda config: command.upgrade(config, revision))


def downgrade_schema(engine: Engine, revision: str = "base") -> None:
    """Run the Alembic migrations down to ``revision`` (an empty database by default)."""
    _migrate(engine, lambda config: command.downgrade(config, revision))


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _migrate(engine: Engine, run: Callable[[Config], None]) -> None:
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by rebuilding it, dropping the old one while other
            # tables still point at it. Foreign keys are off for the migration (which
            # SQLite only allows outside a transaction) and checked once it is done.
            connection.connection.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA foreign_keys=OFF"
            )
        try:
            with connection.begin():
                run(_alembic_config(connection))
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute(  # type: ignore[union-attr]
                    "PRAGMA foreign_keys=ON"
                )


def _alembic_config(connection: Connection) -> Config:
    # Built in code so the migrations ship inside the package and need no alembic.ini.
    config = Config()
    # Config values go through ConfigParser interpolation, where "%" is special.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config
