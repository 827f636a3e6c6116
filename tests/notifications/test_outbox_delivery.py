"""Notifications are never lost and never doubled: the outbox and its delivery.

Slack is played by a local HTTP server speaking its Web API (the real slack_sdk client is
used); time is a clock the test moves, so an hour-long outage takes no time.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.fake_slack import FakeSlackApi
from tests.notifications.conftest import FakeClock
from tickets.delivery import DeliveryFailed, OutboxDelivery, SlackSender
from tickets.outbox import (
    Delivery,
    OutboxChannel,
    OutboxEntry,
    OutboxError,
    OutboxStatus,
    RetryPolicy,
    enqueue_slack_message,
    enqueue_slack_update,
    list_messages,
    on_delivered,
    outbox_counts,
    retry_dead,
)


class SimulatedCrash(BaseException):
    """The worker process dying: nothing after it runs, no except Exception catches it."""


def owe_slack_message(
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    key: str,
    *,
    channel: str = "CREQUESTER",
    thread_ts: str | None = None,
) -> OutboxEntry:
    with session_factory.begin() as session:
        return enqueue_slack_message(
            session,
            channel=channel,
            text=f"Update on your ticket ({key})",
            thread_ts=thread_ts,
            dedupe_key=key,
            ticket_number="T-1001",
            now=clock(),
        )


def delivery(
    session_factory: sessionmaker[Session],
    sender: SlackSender,
    clock: FakeClock,
    worker: str = "worker-1",
) -> OutboxDelivery:
    return OutboxDelivery(
        session_factory, {OutboxChannel.SLACK: sender}, clock=clock, worker=worker
    )


def test_a_notification_exists_only_if_its_change_was_committed(
    session_factory: sessionmaker[Session], clock: FakeClock
) -> None:
    with pytest.raises(RuntimeError), session_factory.begin() as session:
        enqueue_slack_message(
            session, channel="C1", text="T-1001 resolved", dedupe_key="resolved:T-1001"
        )
        raise RuntimeError("the change failed after the notification was written")

    assert list_messages(session_factory) == []


def test_enqueueing_the_same_notification_twice_stores_it_once(
    session_factory: sessionmaker[Session], clock: FakeClock
) -> None:
    first = owe_slack_message(session_factory, clock, "opened:T-1001")
    again = owe_slack_message(session_factory, clock, "opened:T-1001")

    assert again.id == first.id
    assert outbox_counts(session_factory)[OutboxStatus.PENDING] == 1


def test_a_notification_without_text_or_with_a_huge_one_is_refused_when_written(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        with pytest.raises(OutboxError, match="needs some text"):
            enqueue_slack_message(session, channel="C1", text="  ", dedupe_key="k1")
        with pytest.raises(OutboxError, match="over the 40000 limit"):
            enqueue_slack_message(session, channel="C1", text="x" * 40_001, dedupe_key="k2")
        with pytest.raises(OutboxError, match="dedupe key"):
            enqueue_slack_message(session, channel="C1", text="hi", dedupe_key=" ")


def test_the_worker_posts_the_message_once_and_records_its_ts(
    session_factory: sessionmaker[Session],
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
    clock: FakeClock,
) -> None:
    owe_slack_message(session_factory, clock, "opened:T-1001", thread_ts="1700000001.000001")
    worker = delivery(session_factory, slack_sender, clock)

    first = worker.deliver_due()
    second = worker.deliver_due()

    assert (first.delivered, second.claimed) == (1, 0)
    [post] = slack_api.calls_to("chat.postMessage")
    assert post.args["channel"] == "CREQUESTER"
    assert post.args["thread_ts"] == "1700000001.000001"
    assert post.args["metadata"]["event_payload"] == {"outbox_key": "opened:T-1001"}
    [message] = list_messages(session_factory)
    assert message.status is OutboxStatus.DELIVERED
    assert message.delivery_ref == post.response["ts"]


def test_slack_down_for_an_hour_loses_nothing_and_sends_each_message_once(
    session_factory: sessionmaker[Session],
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
    clock: FakeClock,
) -> None:
    slack_api.fail_with(500, "internal_error")
    for number in range(5):
        owe_slack_message(session_factory, clock, f"opened:T-{1001 + number}")
    worker = delivery(session_factory, slack_sender, clock)

    # The worker wakes every minute through an hour of outage.
    attempts_seen: list[int] = []
    for _ in range(60):
        outcome = worker.deliver_due()
        assert outcome.delivered == 0
        clock.advance(minutes=1)
        attempts_seen.append(slack_api.refused_calls)
    assert outbox_counts(session_factory)[OutboxStatus.PENDING] == 5
    # Backoff: 10 s, 20 s, 40 s … capped at 15 min, so an hour costs ~10 tries, not 60.
    assert slack_api.refused_calls // 5 <= 12

    slack_api.recover()
    clock.advance(minutes=15)
    outcome = worker.deliver_all_due()

    assert outcome.delivered == 5
    posted = [
        call.args["metadata"]["event_payload"]["outbox_key"]
        for call in slack_api.calls_to("chat.postMessage")
    ]
    assert sorted(posted) == sorted(f"opened:T-{1001 + n}" for n in range(5))
    assert outbox_counts(session_factory)[OutboxStatus.DELIVERED] == 5


def test_backoff_doubles_after_each_failure_up_to_its_cap() -> None:
    policy = RetryPolicy()

    delays = [policy.delay_after(attempt).total_seconds() for attempt in range(1, 10)]

    assert delays == [10, 20, 40, 80, 160, 320, 640, 900, 900]
    assert policy.delay_after(10_000) == policy.max_delay


def test_a_rate_limited_message_waits_as_long_as_slack_asks(
    session_factory: sessionmaker[Session],
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
    clock: FakeClock,
) -> None:
    owe_slack_message(session_factory, clock, "opened:T-1001")
    worker = delivery(session_factory, slack_sender, clock)
    slack_api.fail_with(429, "ratelimited", retry_after=120)

    assert worker.deliver_due().retrying == 1
    [waiting] = list_messages(session_factory)
    assert waiting.next_attempt_at == clock() + timedelta(seconds=120)
    assert "429" in (waiting.last_error or "")

    slack_api.recover()
    clock.advance(seconds=119)
    assert worker.deliver_due().claimed == 0
    clock.advance(seconds=1)
    assert worker.deliver_due().delivered == 1


def test_a_message_slack_refuses_for_good_is_kept_as_dead_and_can_be_retried(
    session_factory: sessionmaker[Session],
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
    clock: FakeClock,
) -> None:
    owe_slack_message(session_factory, clock, "opened:T-1001")
    worker = delivery(session_factory, slack_sender, clock)
    slack_api.fail_with(400, "channel_not_found")

    assert worker.deliver_due().dead == 1
    [dead] = list_messages(session_factory, status=OutboxStatus.DEAD)
    assert "channel_not_found" in (dead.last_error or "")
    clock.advance(hours=2)
    assert worker.deliver_due().claimed == 0  # dead is not retried on its own

    slack_api.recover()  # someone invited the bot to the channel
    assert retry_dead(session_factory, now=clock()) == 1
    assert worker.deliver_due().delivered == 1


def test_a_message_still_failing_after_every_attempt_is_given_up_not_deleted(
    session_factory: sessionmaker[Session],
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
    clock: FakeClock,
) -> None:
    owe_slack_message(session_factory, clock, "opened:T-1001")
    worker = OutboxDelivery(
        session_factory,
        {OutboxChannel.SLACK: slack_sender},
        clock=clock,
        policy=RetryPolicy(max_attempts=3),
    )
    slack_api.fail_with(503, "service_unavailable")

    statuses = []
    for _ in range(3):
        statuses.append(worker.deliver_due())
        clock.advance(hours=1)

    assert [(o.retrying, o.dead) for o in statuses] == [(1, 0), (1, 0), (0, 1)]
    [dead] = list_messages(session_factory)
    assert dead.status is OutboxStatus.DEAD
    assert dead.attempts == 3


def test_a_worker_crashing_after_posting_does_not_make_the_next_one_post_again(
    session_factory: sessionmaker[Session],
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
    clock: FakeClock,
) -> None:
    owe_slack_message(session_factory, clock, "resolved:T-1001", thread_ts="1700000001.000001")

    class CrashesAfterSending:
        def deliver(self, entry: OutboxEntry) -> Delivery:
            slack_sender.deliver(entry)
            raise SimulatedCrash

    crashing = OutboxDelivery(
        session_factory, {OutboxChannel.SLACK: CrashesAfterSending()}, clock=clock
    )
    with pytest.raises(SimulatedCrash):
        crashing.deliver_due()
    [posted] = slack_api.calls_to("chat.postMessage")

    survivor = delivery(session_factory, slack_sender, clock, worker="worker-2")
    assert survivor.deliver_due().claimed == 0  # the lease still holds
    clock.advance(minutes=6)  # the crashed worker's lease runs out
    outcome = survivor.deliver_due()

    assert outcome.delivered == 1
    assert len(slack_api.calls_to("chat.postMessage")) == 1
    assert slack_api.calls_to("conversations.replies")
    [message] = list_messages(session_factory)
    assert message.status is OutboxStatus.DELIVERED
    assert message.delivery_ref == posted.response["ts"]


def test_a_worker_crashing_before_slack_got_the_message_means_it_is_posted_once_later(
    session_factory: sessionmaker[Session],
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
    clock: FakeClock,
) -> None:
    owe_slack_message(session_factory, clock, "opened:T-1001")

    class CrashesBeforeSending:
        def deliver(self, entry: OutboxEntry) -> Delivery:
            raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        OutboxDelivery(
            session_factory, {OutboxChannel.SLACK: CrashesBeforeSending()}, clock=clock
        ).deliver_due()
    clock.advance(minutes=6)

    assert delivery(session_factory, slack_sender, clock).deliver_due().delivered == 1
    assert len(slack_api.calls_to("chat.postMessage")) == 1
    assert slack_api.calls_to("conversations.history")


def test_an_in_doubt_message_waits_while_slack_cannot_be_asked_whether_it_was_posted(
    session_factory: sessionmaker[Session],
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
    clock: FakeClock,
) -> None:
    owe_slack_message(session_factory, clock, "opened:T-1001")

    class CrashesAfterSending:
        def deliver(self, entry: OutboxEntry) -> Delivery:
            slack_sender.deliver(entry)
            raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        OutboxDelivery(
            session_factory, {OutboxChannel.SLACK: CrashesAfterSending()}, clock=clock
        ).deliver_due()
    clock.advance(minutes=6)
    slack_api.fail_with(500, "internal_error")
    worker = delivery(session_factory, slack_sender, clock)

    assert worker.deliver_due().retrying == 1
    slack_api.recover()
    clock.advance(minutes=1)
    # Still in doubt after the failed look-up, so the next attempt checks again.
    assert worker.deliver_due().delivered == 1
    assert len(slack_api.calls_to("chat.postMessage")) == 1


def test_a_message_update_edits_the_posted_message(
    session_factory: sessionmaker[Session],
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
    clock: FakeClock,
) -> None:
    with session_factory.begin() as session:
        enqueue_slack_update(
            session,
            channel="CTRIAGE",
            ts="1700000009.000100",
            text="T-1001 claimed by Dana",
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "claimed"}}],
            dedupe_key="triage-card:T-1001:claimed",
            now=clock(),
        )

    assert delivery(session_factory, slack_sender, clock).deliver_due().delivered == 1
    [edit] = slack_api.calls_to("chat.update")
    assert edit.args["ts"] == "1700000009.000100"
    assert edit.args["blocks"][0]["text"]["text"] == "claimed"


def test_a_delivery_hook_records_where_the_message_landed_with_the_delivery(
    session_factory: sessionmaker[Session],
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
    clock: FakeClock,
) -> None:
    landed: list[tuple[str | None, str | None, str | None]] = []
    on_delivered(
        "test-triage-post",
        lambda _session, entry, where: landed.append(
            (entry.ticket_number, where.channel, where.ref)
        ),
    )
    with session_factory.begin() as session:
        enqueue_slack_message(
            session,
            channel="it-triage",
            text="New ticket T-1001",
            dedupe_key="triage:T-1001",
            purpose="test-triage-post",
            ticket_number="T-1001",
            now=clock(),
        )

    delivery(session_factory, slack_sender, clock).deliver_due()

    [post] = slack_api.calls_to("chat.postMessage")
    assert landed == [("T-1001", "CTRIAGE", post.response["ts"])]


def test_messages_for_a_channel_without_a_sender_wait_untouched(
    session_factory: sessionmaker[Session], slack_sender: SlackSender, clock: FakeClock
) -> None:
    from tickets.outbox import enqueue_email

    with session_factory.begin() as session:
        enqueue_email(
            session, to="ana@northwind.test", subject="T-1001", body="Hi", dedupe_key="m1"
        )

    assert delivery(session_factory, slack_sender, clock).deliver_due().claimed == 0
    [waiting] = list_messages(session_factory)
    assert (waiting.status, waiting.attempts) == (OutboxStatus.PENDING, 0)


def test_many_workers_at_once_deliver_every_message_exactly_once(
    session_factory: sessionmaker[Session], clock: FakeClock
) -> None:
    with session_factory.begin() as session:
        for number in range(200):
            enqueue_slack_message(
                session,
                channel="C1",
                text=f"message {number}",
                dedupe_key=f"m{number}",
                now=clock(),
            )
    sent: Counter[str] = Counter()
    lock = threading.Lock()

    class CountingSender:
        def deliver(self, entry: OutboxEntry) -> Delivery:
            with lock:
                sent[entry.dedupe_key] += 1
            return Delivery(ref=entry.dedupe_key)

    def run_worker(name: str) -> None:
        OutboxDelivery(
            session_factory,
            {OutboxChannel.SLACK: CountingSender()},
            clock=clock,
            worker=name,
            batch_size=7,
        ).deliver_all_due()

    workers = [threading.Thread(target=run_worker, args=(f"w{n}",)) for n in range(6)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()

    assert len(sent) == 200
    assert set(sent.values()) == {1}
    assert outbox_counts(session_factory)[OutboxStatus.DELIVERED] == 200


def test_a_sender_bug_is_retried_like_an_outage_and_the_others_still_go_out(
    session_factory: sessionmaker[Session], clock: FakeClock
) -> None:
    for key in ("a", "b"):
        owe_slack_message(session_factory, clock, key)

    class BrokenOnA:
        def deliver(self, entry: OutboxEntry) -> Delivery:
            if entry.dedupe_key == "a":
                raise KeyError("channel")
            if entry.dedupe_key == "never":
                raise DeliveryFailed("unreachable")
            return Delivery(ref="ok")

    outcome = OutboxDelivery(
        session_factory, {OutboxChannel.SLACK: BrokenOnA()}, clock=clock
    ).deliver_due()

    assert (outcome.delivered, outcome.retrying) == (1, 1)
    [failed] = list_messages(session_factory, status=OutboxStatus.PENDING)
    assert failed.last_error == "KeyError: 'channel'"


def test_a_direct_message_interrupted_by_a_crash_is_found_in_the_dm_not_sent_again(
    session_factory: sessionmaker[Session],
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
    clock: FakeClock,
) -> None:
    owe_slack_message(session_factory, clock, "assigned:T-1001", channel="UAGENT1")

    class CrashesAfterSending:
        def deliver(self, entry: OutboxEntry) -> Delivery:
            slack_sender.deliver(entry)
            raise SimulatedCrash

    with pytest.raises(SimulatedCrash):
        OutboxDelivery(
            session_factory, {OutboxChannel.SLACK: CrashesAfterSending()}, clock=clock
        ).deliver_due()
    clock.advance(minutes=6)

    assert delivery(session_factory, slack_sender, clock).deliver_due().delivered == 1
    [post] = slack_api.calls_to("chat.postMessage")
    assert slack_api.calls_to("conversations.open")[0].args["users"] == "UAGENT1"
    [message] = list_messages(session_factory)
    assert message.delivery_ref == post.response["ts"]
