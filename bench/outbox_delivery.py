"""Notification outbox throughput, on SQLite and (when reachable) PostgreSQL.

Prints, per store: how fast notifications are written to the outbox (one transaction per
change, as the services do), and how fast one worker delivers them to Slack (a local HTTP
server playing the Web API, the real slack_sdk client) and by mail (a local aiosmtpd
server, one SMTP connection per mail), plus four workers at once. Network round trips are
local, so these are the outbox's own costs, not Slack's or a mail relay's. Run with
`make bench`; `OUTBOX_BENCH_MESSAGES` sets the count (default 1000).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_slack import FakeSlackApi  # noqa: E402
from tests.local_smtp import LocalSmtpServer  # noqa: E402
from tickets.db import create_store_engine, make_session_factory, upgrade_schema  # noqa: E402
from tickets.delivery import (  # noqa: E402
    OutboxDelivery,
    Sender,
    SlackSender,
    SmtpSender,
    SmtpSettings,
    make_slack_client,
)
from tickets.outbox import OutboxChannel, enqueue_email, enqueue_slack_message  # noqa: E402

POSTGRES_URL = os.environ.get(
    "TIER0_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TOKEN = "xoxb-bench"


def stores(tmp: str) -> list[tuple[str, str, str | None]]:
    found: list[tuple[str, str, str | None]] = [("SQLite", f"sqlite:///{tmp}/bench.db", None)]
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        found.append(("PostgreSQL", f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema))
    except Exception as error:  # no server: SQLite only, and say so
        print(f"PostgreSQL skipped: {str(error).splitlines()[0]}")
    return found


def drop_schema(schema: str) -> None:
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def deliver(
    session_factory: object, channel: OutboxChannel, make_sender: object, workers: int
) -> float:
    started = time.perf_counter()

    def run() -> None:
        OutboxDelivery(
            session_factory,  # type: ignore[arg-type]
            {channel: make_sender()},  # type: ignore[operator]
            batch_size=20,
        ).deliver_all_due()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def main() -> None:
    count = int(os.environ.get("OUTBOX_BENCH_MESSAGES", "1000"))
    slack = FakeSlackApi(TOKEN).start()
    smtp = LocalSmtpServer().start()

    def slack_sender() -> Sender:
        return SlackSender(make_slack_client(TOKEN, slack.base_url))

    def smtp_sender() -> Sender:
        return SmtpSender(SmtpSettings(host="127.0.0.1", port=smtp.port))

    print(f"{count} notifications per run; figures are per second (2 shared CPU cores: noisy)")
    store_names: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, url, schema in stores(tmp):
            store_names.append(name)
            engine = create_store_engine(url)
            upgrade_schema(engine)
            session_factory = make_session_factory(engine)
            try:
                runs = [
                    ("Slack, 1 worker", OutboxChannel.SLACK, slack_sender, 1),
                    ("Slack, 4 workers", OutboxChannel.SLACK, slack_sender, 4),
                    ("mail, 1 worker", OutboxChannel.EMAIL, smtp_sender, 1),
                ]
                for label, channel, make_sender, workers in runs:
                    run_id = uuid.uuid4().hex[:8]
                    started = time.perf_counter()
                    for number in range(count):
                        with session_factory.begin() as session:
                            if channel is OutboxChannel.SLACK:
                                enqueue_slack_message(
                                    session,
                                    channel="CBENCH",
                                    text=f"Ticket T-{1000 + number} was updated",
                                    dedupe_key=f"{run_id}:{number}",
                                )
                            else:
                                enqueue_email(
                                    session,
                                    to="ana@northwind.test",
                                    subject=f"[T-{1000 + number}] updated",
                                    body="Your ticket was updated.",
                                    dedupe_key=f"{run_id}:{number}",
                                    ticket_number=f"T-{1000 + number}",
                                )
                    enqueued = time.perf_counter() - started
                    elapsed = deliver(session_factory, channel, make_sender, workers)
                    print(
                        f"{name:10} {label:17} enqueue {count / enqueued:7.0f}/s   "
                        f"deliver {count / elapsed:7.0f}/s"
                    )
            finally:
                engine.dispose()
                if schema is not None:
                    drop_schema(schema)
    posted = len(slack.calls_to("chat.postMessage"))
    mailed = len(smtp.messages)
    expected_posts, expected_mails = 2 * count * len(store_names), count * len(store_names)
    verdict = (
        "each sent exactly once"
        if (posted, mailed)
        == (
            expected_posts,
            expected_mails,
        )
        else f"MISMATCH: expected {expected_posts} posts and {expected_mails} mails"
    )
    print(f"check: {posted} Slack posts and {mailed} mails received; {verdict}")
    slack.stop()
    smtp.stop()


if __name__ == "__main__":
    main()
