"""Inbound mail over a real SMTP exchange: smtplib talks to tier0's aiosmtpd endpoint."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from tests.local_smtp import free_port
from tickets.mail import InboundMail, MailRejected, make_mail_server, parse_mail, strip_quoted_reply


class Endpoint:
    """tier0's inbound endpoint with an action that records what it was handed."""

    def __init__(self, max_bytes: int = 64 * 1024) -> None:
        self.port = free_port()
        self.handed: list[InboundMail] = []
        self.fail_with: Exception | None = None
        self._server = make_mail_server(
            self._act, host="127.0.0.1", port=self.port, max_bytes=max_bytes
        )

    def _act(self, mail: InboundMail) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.handed.append(mail)
        return f"Opened T-{1000 + len(self.handed)}"

    def send(self, mail: EmailMessage | bytes, sender: str = "ana@northwind.test") -> str:
        """Send through SMTP; the server's final reply, refusals included."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
            try:
                if isinstance(mail, bytes):
                    client.sendmail(sender, ["it@northwind.test"], mail)
                else:
                    client.send_message(mail, from_addr=sender, to_addrs=["it@northwind.test"])
            except smtplib.SMTPDataError as error:
                return f"{error.smtp_code} {error.smtp_error.decode()}"
            except smtplib.SMTPSenderRefused as error:
                return f"{error.smtp_code} {error.smtp_error.decode()}"
        return "250"


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    server._server.start()
    yield server
    server._server.stop()


def mail(subject: str, body: str, sender: str = "Ana Lima <ana@northwind.test>") -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "it@northwind.test"
    message["Subject"] = subject
    message["Message-ID"] = f"<{abs(hash((subject, body)))}@mail.northwind.test>"
    message.set_content(body)
    return message


def test_a_mail_reaches_tier0_with_its_sender_and_new_text(endpoint: Endpoint) -> None:
    reply = endpoint.send(
        mail(
            "Re: [T-1042] VPN drops every hour",
            "It happened again at 10:00.\n\nOn Mon, 2 Dec 2024, IT <it@northwind.test> wrote:\n"
            "> Please tell us when it happens.\n",
        )
    )

    assert reply == "250"
    [received] = endpoint.handed
    assert received.sender == "ana@northwind.test"
    assert received.sender_name == "Ana Lima"
    assert received.ticket_number == "T-1042"
    assert received.title == "[T-1042] VPN drops every hour"
    assert received.text == "It happened again at 10:00."


def test_an_oversized_mail_is_refused_with_a_clear_reply(endpoint: Endpoint) -> None:
    reply = endpoint.send(mail("Logs attached", "x" * 100_000))

    assert reply.startswith("552")
    assert endpoint.handed == []


def test_an_empty_mail_is_refused_saying_why(endpoint: Endpoint) -> None:
    endpoint.fail_with = ValueError("A ticket needs a title: say in a few words what is wrong.")

    reply = endpoint.send(mail("", ""))

    assert reply == "550 5.6.0 A ticket needs a title: say in a few words what is wrong."


def test_a_fault_on_tier0s_side_asks_the_sender_to_try_again_later(endpoint: Endpoint) -> None:
    endpoint.fail_with = RuntimeError("database unavailable")

    reply = endpoint.send(mail("Printer jammed", "Third floor printer"))

    assert reply.startswith("451 4.3.0")


def test_an_out_of_office_reply_is_accepted_but_never_becomes_a_ticket(endpoint: Endpoint) -> None:
    auto = mail("Automatic reply: [T-1001] Your ticket was resolved", "I am away until Monday.")
    auto["Auto-Submitted"] = "auto-replied"

    assert endpoint.send(auto) == "250"
    assert endpoint.handed == []


def test_a_mail_with_no_sender_address_is_refused() -> None:
    with pytest.raises(MailRejected, match=r"550 5\.1\.7"):
        parse_mail(b"Subject: hello\r\n\r\nno from header\r\n")


def test_a_mail_in_an_unknown_charset_is_read_as_far_as_it_can_be(endpoint: Endpoint) -> None:
    raw = (
        b"From: ana@northwind.test\r\nSubject: =?utf-8?b?!!!?=\r\n"
        b"Content-Type: text/plain; charset=no-such-charset\r\n\r\n\xff\xfe broken \x00\r\n"
    )

    reply = endpoint.send(raw)

    assert reply == "250"
    [received] = endpoint.handed
    assert "broken" in received.text


def test_html_only_mail_is_read_as_text_and_attachments_are_named() -> None:
    message = EmailMessage()
    message["From"] = "ana@northwind.test"
    message["Subject"] = "Screen flickers"
    message.set_content("<p>My screen <b>flickers</b></p><blockquote>old</blockquote>", "html")
    message.add_attachment(b"\x89PNG...", maintype="image", subtype="png", filename="screen.png")

    parsed = parse_mail(message.as_bytes())

    assert parsed.text == "My screen flickers"
    assert parsed.attachments == ("screen.png",)
    assert "Attachments not imported: screen.png" in parsed.description


def test_quoted_text_and_signatures_are_cut_from_replies() -> None:
    reply = "Thanks, that fixed it!\n\n-- \nAna Lima\nFinance\n"
    outlook = "Yes please.\n\n________________________________\nFrom: IT\nSent: Monday\n"
    interleaved = "> did you restart?\nYes, twice.\n> and?\nStill broken."

    assert strip_quoted_reply(reply) == "Thanks, that fixed it!"
    assert strip_quoted_reply(outlook) == "Yes please."
    assert strip_quoted_reply(interleaved) == "Yes, twice.\nStill broken."


def test_the_same_mail_delivered_twice_has_one_identity() -> None:
    message = mail("Printer jammed", "Third floor printer")

    first = parse_mail(message.as_bytes())
    again = parse_mail(message.as_bytes())

    assert first.idempotency_key == again.idempotency_key
    assert first.idempotency_key != parse_mail(mail("Other", "thing").as_bytes()).idempotency_key
