"""With Slack or mail configured, the worker reminds owners of stale articles once a day each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.background import build_scheduler, stale_review_jobs
from bot.config import Settings
from tests.conftest import make_settings
from tests.knowledge.editors import article_source, write_kb
from tickets.db import create_store_engine, make_session_factory, upgrade_schema
from tickets.outbox import OutboxMessage


def overdue_kb(folder: Path) -> Path:
    kb = write_kb(folder)
    for article_id in ("vpn-connect", "printer-jam"):  # a Slack owner, an email owner
        (kb / f"{article_id}.md").write_text(
            article_source(article_id).replace("review_by: 2099-01-01", "review_by: 2026-01-31")
        )
    return kb


def store(settings: Settings) -> sessionmaker[Session]:
    engine = create_store_engine(settings.resolved_database_url)
    upgrade_schema(engine)
    return make_session_factory(engine)


def slack_messages(session_factory: sessionmaker[Session]) -> list[dict[str, str]]:
    with session_factory.begin() as session:
        return [dict(m.payload) for m in session.scalars(select(OutboxMessage)).all()]


def test_each_slack_owner_gets_one_reminder_a_day_through_the_outbox(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home", TIER0_KB_DIR=str(overdue_kb(tmp_path / "kb")))
    session_factory = store(settings)
    now = [datetime(2026, 3, 2, 9, 0, tzinfo=UTC)]
    (job,) = stale_review_jobs(settings, session_factory, clock=lambda: now[0])

    job.run()
    job.run()  # the worker's next turn the same day (or a second worker) adds nothing

    (message,) = slack_messages(session_factory)
    assert message["channel"] == "U0NETWORK1"
    assert "vpn-connect" in message["text"] and "30 day(s) ago" in message["text"]
    assert "printer-jam" not in message["text"]  # its owner is an email address

    now[0] += timedelta(days=1)
    job.run()

    assert [m["channel"] for m in slack_messages(session_factory)] == ["U0NETWORK1"] * 2


def test_with_mail_an_email_owner_gets_one_reminder_a_day_too(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "home",
        TIER0_KB_DIR=str(overdue_kb(tmp_path / "kb")),
        TIER0_SMTP_HOST="127.0.0.1",
    )
    session_factory = store(settings)
    (job,) = stale_review_jobs(
        settings, session_factory, clock=lambda: datetime(2026, 3, 2, tzinfo=UTC)
    )

    job.run()
    job.run()

    payloads = slack_messages(session_factory)
    assert sorted(m.get("channel") or m["to"] for m in payloads) == [
        "U0NETWORK1",
        "it-workplace@northwind.example",
    ]
    (mail,) = [m for m in payloads if "to" in m]
    assert "printer-jam" in mail["body"] and "vpn-connect" not in mail["body"]


def test_the_worker_schedules_reminders_only_with_a_channel_and_an_own_knowledge_base(
    tmp_path: Path,
) -> None:
    kb = str(overdue_kb(tmp_path / "kb"))
    with_slack = make_settings(tmp_path / "home", TIER0_KB_DIR=kb)
    session_factory = store(with_slack)

    def job_names(settings: Settings) -> list[str]:
        return [job.name for job in build_scheduler(settings, session_factory).jobs]

    assert "stale article reminders" in job_names(with_slack)
    no_slack = make_settings(tmp_path / "home", TIER0_KB_DIR=kb, SLACK_BOT_TOKEN="")
    assert "stale article reminders" not in job_names(no_slack)
    mail_only = make_settings(
        tmp_path / "home", TIER0_KB_DIR=kb, SLACK_BOT_TOKEN="", TIER0_SMTP_HOST="127.0.0.1"
    )
    assert "stale article reminders" in job_names(mail_only)
    sample_kb = make_settings(tmp_path / "home")
    assert "stale article reminders" not in job_names(sample_kb)
