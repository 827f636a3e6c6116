"""An employee's story by email, end to end over real SMTP, on SQLite and PostgreSQL.

Ana mails the service desk; tier0's SMTP endpoint opens a ticket; the notifications are
written to the outbox with it; the worker mails Ana (through a real local SMTP server) and
posts to the service desk's Slack channel (through the Slack Web API played locally). Ana
replies to the mail; the reply lands on her ticket as a comment, without the quoted text.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.fake_slack import FakeSlackApi
from tests.local_smtp import LocalSmtpServer, free_port
from tests.notifications.conftest import FakeClock
from tickets.delivery import OutboxDelivery, SlackSender, SmtpSender
from tickets.mail import MailDesk, make_mail_server
from tickets.models import Team, TicketSource
from tickets.outbox import OutboxChannel, list_messages
from tickets.outbox_sink import OutboxSink
from tickets.service import TicketService

ANA = "ana@northwind.test"


@pytest.fixture
def service(session_factory: sessionmaker[Session], clock: FakeClock) -> TicketService:
    with session_factory.begin() as session:
        session.add(Team(name="Service Desk", tier="L1", slack_channel="CSERVICEDESK"))
    return TicketService(session_factory, clock=clock, notifications=OutboxSink(clock=clock))


@pytest.fixture
def mail_port(service: TicketService, session_factory: sessionmaker[Session]) -> Iterator[int]:
    port = free_port()
    server = make_mail_server(
        MailDesk(service, session_factory).receive, host="127.0.0.1", port=port
    )
    server.start()
    yield port
    server.stop()


def send(port: int, subject: str, body: str, message_id: str) -> None:
    mail = EmailMessage()
    mail["From"] = f"Ana Lima <{ANA}>"
    mail["To"] = "it@northwind.test"
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    mail.set_content(body)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.send_message(mail)


def test_a_mail_opens_a_ticket_notifies_by_mail_and_slack_and_the_reply_becomes_a_comment(
    service: TicketService,
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    mail_port: int,
    smtp_server: LocalSmtpServer,
    smtp_sender: SmtpSender,
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
) -> None:
    send(
        mail_port,
        "VPN drops every hour",
        "Since Monday the VPN drops every hour. My password is Hunter2! if you need it.",
        "<first@mail.northwind.test>",
    )

    [ticket] = service.list_for_requester(ANA)
    assert (ticket.number, ticket.source, ticket.title) == (
        "T-1001",
        TicketSource.EMAIL,
        "VPN drops every hour",
    )
    assert "Hunter2" not in ticket.description
    owed = list_messages(session_factory)
    assert {(m.channel, m.ticket_number) for m in owed} == {
        (OutboxChannel.EMAIL, "T-1001"),
        (OutboxChannel.SLACK, "T-1001"),
    }

    worker = OutboxDelivery(
        session_factory,
        {OutboxChannel.EMAIL: smtp_sender, OutboxChannel.SLACK: slack_sender},
        clock=clock,
    )
    worker.deliver_all_due()

    mails = smtp_server.wait_for(len([m for m in owed if m.channel is OutboxChannel.EMAIL]))
    assert {mail["To"] for mail in mails} == {ANA}
    opened_mail = next(mail for mail in mails if "We opened T-1001" in mail.get_content())
    assert opened_mail["Subject"] == "[T-1001] VPN drops every hour"
    rotate_notices = [mail for mail in mails if "rotate" in mail.get_content().lower()]
    assert rotate_notices, "Ana is told to change the password she mailed"
    [team_post] = slack_api.calls_to("chat.postMessage")
    assert team_post.args["channel"] == "CSERVICEDESK"
    assert "T-1001" in team_post.args["text"] and "Hunter2" not in team_post.args["text"]

    reply = (
        "It dropped again at 10:00.\n\n"
        f"On Mon, 2 Dec 2024, tier0 <it@northwind.test> wrote:\n> {opened_mail.get_content()}"
    )
    send(mail_port, f"Re: {opened_mail['Subject']}", reply, "<reply-1@mail.northwind.test>")
    send(mail_port, f"Re: {opened_mail['Subject']}", reply, "<reply-1@mail.northwind.test>")

    [comment] = service.comments("T-1001", as_user=ANA)
    assert (comment.author, comment.body, comment.via) == (
        ANA,
        "It dropped again at 10:00.",
        "email",
    )
    assert len(service.list_for_requester(ANA)) == 1
    worker.deliver_all_due()
    posts = slack_api.calls_to("chat.postMessage")
    assert len(posts) == 2
    assert "It dropped again at 10:00." in posts[1].args["text"]
    assert "We opened" not in posts[1].args["text"]


def test_the_same_mail_delivered_twice_opens_one_ticket(
    service: TicketService, mail_port: int
) -> None:
    for _ in range(2):
        send(mail_port, "Printer jammed", "Third floor printer", "<jam@mail.northwind.test>")

    assert len(service.list_for_requester(ANA)) == 1


def test_a_reply_to_a_ticket_the_sender_cannot_see_opens_their_own(
    service: TicketService, mail_port: int
) -> None:
    other = service.open_ticket(
        requester="bob@northwind.test", title="Bob's laptop", description=""
    )

    send(mail_port, f"Re: [{other.number}] Bob's laptop", "Mine too", "<nosy@mail.northwind.test>")

    [own] = service.list_for_requester(ANA)
    assert own.number != other.number
    assert service.comments(other.number, as_user="bob@northwind.test") == []


def test_a_reply_delivered_again_after_a_crash_adds_one_comment(
    service: TicketService, mail_port: int
) -> None:
    # A sending server that crashed after tier0 accepted the reply, but before it recorded
    # the acceptance, delivers it again: same Message-ID, so tier0 stores it once.
    send(mail_port, "VPN drops", "Every ten minutes", "<vpn@mail.northwind.test>")
    [ticket] = service.list_for_requester(ANA)
    for _ in range(2):
        send(mail_port, f"Re: [{ticket.number}] VPN drops", "Still", "<still@mail.northwind.test>")

    comments = service.comments(ticket.number, as_user=ANA)
    assert [comment.body for comment in comments] == ["Still"]
