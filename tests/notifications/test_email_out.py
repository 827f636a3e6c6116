"""Outbound mail: notifications delivered over a real SMTP exchange with a local server."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from tests.local_smtp import LocalSmtpServer, free_port
from tests.notifications.conftest import FakeClock
from tickets.delivery import OutboxDelivery, SmtpSender, SmtpSettings
from tickets.outbox import (
    OutboxChannel,
    OutboxStatus,
    enqueue_email,
    list_messages,
)


def owe_mail(session_factory: sessionmaker[Session], clock: FakeClock, key: str) -> None:
    with session_factory.begin() as session:
        enqueue_email(
            session,
            to="ana@northwind.test",
            subject="[T-1001] Your ticket was resolved",
            body="Hi Ana,\n\nWe replaced your VPN certificate.\n",
            dedupe_key=key,
            ticket_number="T-1001",
            now=clock(),
        )


def test_a_notification_mail_arrives_threaded_with_its_ticket(
    session_factory: sessionmaker[Session],
    smtp_server: LocalSmtpServer,
    smtp_sender: SmtpSender,
    clock: FakeClock,
) -> None:
    owe_mail(session_factory, clock, "resolved:T-1001:mail")
    worker = OutboxDelivery(session_factory, {OutboxChannel.EMAIL: smtp_sender}, clock=clock)

    assert worker.deliver_due().delivered == 1

    [mail] = smtp_server.wait_for(1)
    assert smtp_server.envelopes()[0].rcpt_tos == ["ana@northwind.test"]
    assert mail["From"] == "it@northwind.test"
    assert mail["Subject"] == "[T-1001] Your ticket was resolved"
    assert mail["References"] == "<ticket.T-1001@northwind.test>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert "replaced your VPN certificate" in mail.get_content()
    [record] = list_messages(session_factory)
    assert record.status is OutboxStatus.DELIVERED
    assert record.delivery_ref == mail["Message-ID"]


def test_the_mail_server_down_then_busy_loses_nothing(
    session_factory: sessionmaker[Session], smtp_server: LocalSmtpServer, clock: FakeClock
) -> None:
    owe_mail(session_factory, clock, "resolved:T-1001:mail")
    nowhere = SmtpSender(SmtpSettings(host="127.0.0.1", port=free_port(), timeout=2))
    down = OutboxDelivery(session_factory, {OutboxChannel.EMAIL: nowhere}, clock=clock)

    assert down.deliver_due().retrying == 1  # connection refused
    clock.advance(minutes=1)
    smtp_server.refuse("451 4.3.0 Mail server under maintenance, try again later")
    sender = SmtpSender(SmtpSettings(host="127.0.0.1", port=smtp_server.port, timeout=5))
    up = OutboxDelivery(session_factory, {OutboxChannel.EMAIL: sender}, clock=clock)
    assert up.deliver_due().retrying == 1
    [waiting] = list_messages(session_factory)
    assert "451" in (waiting.last_error or "")

    smtp_server.accept()
    clock.advance(minutes=1)
    assert up.deliver_due().delivered == 1
    assert len(smtp_server.wait_for(1)) == 1


def test_a_mail_the_server_rejects_for_good_is_kept_as_dead(
    session_factory: sessionmaker[Session],
    smtp_server: LocalSmtpServer,
    smtp_sender: SmtpSender,
    clock: FakeClock,
) -> None:
    owe_mail(session_factory, clock, "resolved:T-1001:mail")
    smtp_server.refuse("550 5.1.1 No such mailbox")

    outcome = OutboxDelivery(
        session_factory, {OutboxChannel.EMAIL: smtp_sender}, clock=clock
    ).deliver_due()

    assert outcome.dead == 1
    [dead] = list_messages(session_factory, status=OutboxStatus.DEAD)
    assert "550" in (dead.last_error or "")


def test_a_mail_sent_again_after_an_ambiguous_failure_keeps_its_message_id(
    session_factory: sessionmaker[Session],
    smtp_server: LocalSmtpServer,
    smtp_sender: SmtpSender,
    clock: FakeClock,
) -> None:
    owe_mail(session_factory, clock, "resolved:T-1001:mail")
    [entry] = list_messages(session_factory)

    first = smtp_sender.build(entry)
    again = smtp_sender.build(entry)

    assert first["Message-ID"] == again["Message-ID"]
