"""Every version of every article is kept, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from knowledge.articles import Article, parse_article
from knowledge.versions import ArticleVersions, VersionError
from tests.knowledge.editors import article_source
from tickets.db import create_store_engine, make_session_factory, upgrade_schema


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


@pytest.fixture
def session_factory(store_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_store_engine(store_url)
    upgrade_schema(engine)
    yield make_session_factory(engine)
    engine.dispose()


def article(article_id: str, replace: tuple[str, str] = ("", "")) -> Article:
    text = article_source(article_id)
    if replace[0]:
        text = text.replace(*replace)
    return parse_article(text, Path(f"kb/{article_id}.md"))


def test_a_sync_stores_new_versions_only_for_what_changed(
    session_factory: sessionmaker[Session],
) -> None:
    versions = ArticleVersions(session_factory, clock=Clock())

    first = versions.sync([article("vpn-connect"), article("printer-jam")], "alice")
    unchanged = versions.sync([article("vpn-connect"), article("printer-jam")], "bob")
    edited = versions.sync(
        [article("vpn-connect", ("GlobalProtect", "GP")), article("printer-jam")], "carol"
    )

    assert (first.added, unchanged.touched, edited.changed) == (
        ["vpn-connect", "printer-jam"],
        False,
        ["vpn-connect"],
    )
    history = versions.history("vpn-connect")
    assert [(v.version, v.change, v.author) for v in history] == [
        (1, "added", "alice"),
        (2, "changed", "carol"),
    ]
    assert history[1].created_at > history[0].created_at
    assert "GP" in history[1].content and "GP," not in history[0].content
    assert versions.diff("vpn-connect").count("\n-") >= 1


def test_retiring_by_status_or_by_removing_the_file_keeps_the_last_text(
    session_factory: sessionmaker[Session],
) -> None:
    versions = ArticleVersions(session_factory, clock=Clock())
    versions.sync([article("vpn-connect"), article("printer-jam")], "alice")

    report = versions.sync(
        [article("vpn-connect", ("status: published", "status: retired"))], "bob"
    )

    assert sorted(report.retired) == ["printer-jam", "vpn-connect"]
    removed = versions.version("printer-jam")
    assert (removed.version, removed.status, removed.change) == (2, "retired", "retired")
    assert removed.content == versions.version("printer-jam", 1).content
    assert {view.article_id: view.status for view in versions.latest()} == {
        "printer-jam": "retired",
        "vpn-connect": "retired",
    }
    assert not versions.sync(
        [article("vpn-connect", ("status: published", "status: retired"))], "c"
    ).touched


def test_unknown_articles_and_versions_are_clear_errors(
    session_factory: sessionmaker[Session],
) -> None:
    versions = ArticleVersions(session_factory)
    versions.sync([article("vpn-connect")], "alice")

    with pytest.raises(VersionError, match="no article 'nope' in the store"):
        versions.history("nope")
    with pytest.raises(VersionError, match="has no version 3"):
        versions.version("vpn-connect", 3)
    with pytest.raises(VersionError, match="only one version"):
        versions.diff("vpn-connect")
