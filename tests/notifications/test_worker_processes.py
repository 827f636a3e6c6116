"""Several worker processes on one store: every notification is posted exactly once.

Real processes (not threads), each with its own engine and Slack client, claim from the
same outbox at the same time: PostgreSQL hands rows out with FOR UPDATE SKIP LOCKED,
SQLite serialises the claims with its write lock.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter

from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TEST_BOT_TOKEN
from tests.fake_slack import FakeSlackApi
from tickets import create_store_engine, make_session_factory
from tickets.delivery import OutboxDelivery, SlackSender, make_slack_client
from tickets.outbox import OutboxChannel, OutboxStatus, enqueue_slack_message, outbox_counts

MESSAGES = 120
WORKERS = 3


def deliver_in_this_process(store_url: str, api_url: str, name: str) -> None:
    engine = create_store_engine(store_url)
    sender = SlackSender(make_slack_client(TEST_BOT_TOKEN, api_url, timeout=10))
    OutboxDelivery(
        make_session_factory(engine), {OutboxChannel.SLACK: sender}, worker=name, batch_size=5
    ).deliver_all_due()
    engine.dispose()


def test_worker_processes_running_at_once_post_each_message_once(
    migrated_store_url: str, session_factory: sessionmaker[Session], slack_api: FakeSlackApi
) -> None:
    with session_factory.begin() as session:
        for number in range(MESSAGES):
            enqueue_slack_message(
                session, channel="CTRIAGE", text=f"T-{1001 + number}", dedupe_key=f"n{number}"
            )
    spawn = multiprocessing.get_context("spawn")
    workers = [
        spawn.Process(
            target=deliver_in_this_process,
            args=(migrated_store_url, slack_api.base_url, f"proc-{n}"),
        )
        for n in range(WORKERS)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)

    assert [process.exitcode for process in workers] == [0] * WORKERS
    posted = Counter(
        call.args["metadata"]["event_payload"]["outbox_key"]
        for call in slack_api.calls_to("chat.postMessage")
    )
    assert len(posted) == MESSAGES
    assert set(posted.values()) == {1}
    assert outbox_counts(session_factory)[OutboxStatus.DELIVERED] == MESSAGES
