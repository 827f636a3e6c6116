"""A mail whose delivery was interrupted, over a real SMTP exchange with a local server.

The dangerous moment is between the server accepting a mail ("250" to the end of its
content) and the outbox recording it: a worker that dies there, or loses the answer,
leaves a mail that may or may not have arrived. The worker records the hand-over (with
the Message-ID) before it sends the content, so a retry knows which case it is in. The
crashes here are real: a worker process killed at that point.
"""

from __future__ import annotations

import multiprocessing
import os

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.local_smtp import LocalSmtpServer
from tests.notifications.conftest import FakeClock
from tickets import create_store_engine, make_session_factory
from tickets.delivery import InDoubtMail, OutboxDelivery, SmtpSender, SmtpSettings
from tickets.outbox import (
    LeaseLost,
    OutboxChannel,
    OutboxEntry,
    OutboxStatus,
    RetryPolicy,
    claim_due,
    enqueue_email,
    list_messages,
    record_handover,
    retry_dead,
)

CRASH_EXIT_CODE = 17


def owe_mail(session_factory: sessionmaker[Session], clock: FakeClock) -> None:
    with session_factory.begin() as session:
        enqueue_email(
            session,
            to="ana@northwind.test",
            subject="[T-1001] Your ticket was resolved",
            body="Hi Ana,\n\nWe replaced your VPN certificate.\n",
            dedupe_key="resolved:T-1001:mail",
            ticket_number="T-1001",
            now=clock(),
        )


def sender(server: LocalSmtpServer, *, in_doubt: InDoubtMail, timeout: float = 5) -> SmtpSender:
    return SmtpSender(
        SmtpSettings(
            host="127.0.0.1",
            port=server.port,
            from_address="it@northwind.test",
            timeout=timeout,
            in_doubt=in_doubt,
        )
    )


def worker_that_dies(store_url: str, port: int, dies_at: str) -> None:
    """A worker process killed at ``dies_at``: "recording the delivery" (the server has
    accepted the mail) or "recording the hand-over" (after the server's go-ahead to
    DATA, before the content)."""
    import tickets.delivery

    def die(*_args: object, **_kwargs: object) -> None:
        os._exit(CRASH_EXIT_CODE)

    if dies_at == "recording the delivery":
        tickets.delivery.mark_delivered = die  # type: ignore[assignment]
    else:
        tickets.delivery.record_handover = die  # type: ignore[assignment]
    engine = create_store_engine(store_url)
    mail = SmtpSender(
        SmtpSettings(host="127.0.0.1", port=port, from_address="it@northwind.test", timeout=5)
    )
    OutboxDelivery(make_session_factory(engine), {OutboxChannel.EMAIL: mail}).deliver_due()
    os._exit(0)  # not reached when it dies


def crash_a_worker(store_url: str, server: LocalSmtpServer, dies_at: str) -> None:
    process = multiprocessing.get_context("spawn").Process(
        target=worker_that_dies, args=(store_url, server.port, dies_at)
    )
    process.start()
    process.join(timeout=60)
    assert process.exitcode == CRASH_EXIT_CODE


def the_message(session_factory: sessionmaker[Session]) -> OutboxEntry:
    [message] = list_messages(session_factory)
    return message


def test_a_worker_killed_after_the_server_accepted_resends_the_same_mail_by_default(
    migrated_store_url: str,
    session_factory: sessionmaker[Session],
    smtp_server: LocalSmtpServer,
    clock: FakeClock,
) -> None:
    owe_mail(session_factory, clock)
    crash_a_worker(migrated_store_url, smtp_server, "recording the delivery")
    [first] = smtp_server.wait_for(1)
    crashed = the_message(session_factory)
    assert crashed.status is OutboxStatus.SENDING  # the worker died holding it
    assert crashed.handed_over_at is not None
    assert crashed.delivery_ref == first["Message-ID"]  # what to look for in the mail log

    clock.advance(minutes=10)  # the dead worker's lease runs out
    worker = OutboxDelivery(
        session_factory,
        {OutboxChannel.EMAIL: sender(smtp_server, in_doubt=InDoubtMail.RESEND)},
        clock=clock,
    )
    assert worker.deliver_due().delivered == 1

    first, second = smtp_server.wait_for(2)
    # The same message again, so mail stores that de-duplicate show it once.
    for header in ("Message-ID", "Date", "Subject", "From", "References"):
        assert second[header] == first[header]
    assert second.get_content() == first.get_content()
    assert the_message(session_factory).status is OutboxStatus.DELIVERED
    assert worker.deliver_due().claimed == 0


def test_held_a_mail_that_may_have_arrived_waits_for_an_operator_and_is_never_doubled(
    migrated_store_url: str,
    session_factory: sessionmaker[Session],
    smtp_server: LocalSmtpServer,
    clock: FakeClock,
) -> None:
    owe_mail(session_factory, clock)
    crash_a_worker(migrated_store_url, smtp_server, "recording the delivery")
    [first] = smtp_server.wait_for(1)
    clock.advance(minutes=10)
    worker = OutboxDelivery(
        session_factory,
        {OutboxChannel.EMAIL: sender(smtp_server, in_doubt=InDoubtMail.HOLD)},
        clock=clock,
    )

    outcome = worker.deliver_due()

    assert (outcome.delivered, outcome.dead) == (0, 1)
    held = the_message(session_factory)
    assert held.status is OutboxStatus.DEAD
    assert first["Message-ID"] in (held.last_error or "")
    clock.advance(hours=1)
    assert worker.deliver_due().claimed == 0
    assert len(smtp_server.messages) == 1

    # The operator finds no trace of it in the mail server's log and sends it.
    assert retry_dead(session_factory, now=clock()) == 1
    assert worker.deliver_due().delivered == 1
    assert [mail["Message-ID"] for mail in smtp_server.wait_for(2)] == [first["Message-ID"]] * 2


def test_a_worker_killed_before_the_content_went_out_leaves_no_doubt(
    migrated_store_url: str,
    session_factory: sessionmaker[Session],
    smtp_server: LocalSmtpServer,
    clock: FakeClock,
) -> None:
    owe_mail(session_factory, clock)
    crash_a_worker(migrated_store_url, smtp_server, "recording the hand-over")
    assert smtp_server.messages == []
    assert the_message(session_factory).handed_over_at is None

    clock.advance(minutes=10)
    worker = OutboxDelivery(
        session_factory,
        # Even the cautious setting sends it: the server cannot have it.
        {OutboxChannel.EMAIL: sender(smtp_server, in_doubt=InDoubtMail.HOLD)},
        clock=clock,
    )
    assert worker.deliver_due().delivered == 1
    assert len(smtp_server.wait_for(1)) == 1


@pytest.mark.parametrize("in_doubt", list(InDoubtMail))
def test_an_answer_lost_to_a_time_out_after_the_content_is_in_doubt(
    session_factory: sessionmaker[Session],
    smtp_server: LocalSmtpServer,
    clock: FakeClock,
    in_doubt: InDoubtMail,
) -> None:
    owe_mail(session_factory, clock)
    smtp_server.answer_late(3)
    impatient = OutboxDelivery(
        session_factory,
        {OutboxChannel.EMAIL: sender(smtp_server, in_doubt=in_doubt, timeout=1)},
        clock=clock,
    )

    assert impatient.deliver_due().retrying == 1
    [first] = smtp_server.wait_for(1)  # the server kept it; its "250" came too late
    waiting = the_message(session_factory)
    assert waiting.handed_over_at is not None
    assert "may have been delivered" in (waiting.last_error or "")

    smtp_server.accept()
    clock.advance(minutes=1)
    outcome = impatient.deliver_due()
    if in_doubt is InDoubtMail.RESEND:
        assert outcome.delivered == 1
        assert [m["Message-ID"] for m in smtp_server.wait_for(2)] == [first["Message-ID"]] * 2
    else:
        assert outcome.dead == 1
        assert len(smtp_server.messages) == 1


def test_a_refusal_at_the_end_of_the_content_is_an_answer_not_a_doubt(
    session_factory: sessionmaker[Session], smtp_server: LocalSmtpServer, clock: FakeClock
) -> None:
    owe_mail(session_factory, clock)
    smtp_server.refuse("451 4.3.0 Mail server under maintenance, try again later")
    worker = OutboxDelivery(
        session_factory,
        {OutboxChannel.EMAIL: sender(smtp_server, in_doubt=InDoubtMail.HOLD)},
        clock=clock,
    )

    assert worker.deliver_due().retrying == 1
    assert the_message(session_factory).handed_over_at is None

    smtp_server.accept()
    clock.advance(minutes=1)
    assert worker.deliver_due().delivered == 1
    assert len(smtp_server.wait_for(1)) == 1


def test_a_worker_that_lost_its_lease_stops_before_the_content_goes_out(
    session_factory: sessionmaker[Session], smtp_server: LocalSmtpServer, clock: FakeClock
) -> None:
    owe_mail(session_factory, clock)
    policy = RetryPolicy()
    [stale] = claim_due(session_factory, worker="slow", now=clock(), policy=policy)
    clock.advance(minutes=10)  # "slow" stalled past its lease; "fast" takes the message over
    fast = OutboxDelivery(
        session_factory,
        {OutboxChannel.EMAIL: sender(smtp_server, in_doubt=InDoubtMail.HOLD)},
        clock=clock,
        worker="fast",
    )
    assert fast.deliver_due().delivered == 1

    def slow_hands_over(ref: str) -> None:
        record_handover(session_factory, stale, worker="slow", now=clock(), ref=ref)

    with pytest.raises(LeaseLost):
        sender(smtp_server, in_doubt=InDoubtMail.HOLD).deliver(
            stale, record_handover=slow_hands_over
        )
    assert len(smtp_server.wait_for(1)) == 1
    assert the_message(session_factory).status is OutboxStatus.DELIVERED
