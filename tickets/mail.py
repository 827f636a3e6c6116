"""The email channel, inbound: an SMTP endpoint (aiosmtpd) that turns mail into tickets.

A mail whose subject names a ticket ("Re: [T-1001] VPN drops") becomes a comment on that
ticket; any other mail opens a ticket with the sender's address as the requester. What
is stored is the new text only: quoted earlier messages and signatures are cut. Secrets
are redacted by the ticket service before anything is stored, which also tells the
sender to rotate them (so the text is handed over as written, never logged here).

Every refusal is an SMTP reply the sender's mail server turns into a bounce they can
read: too big (552), unreadable (554), nothing to act on (550). A fault on tier0's side
answers 451, so the sending server tries again later and the mail is not lost. The same
mail delivered twice (same Message-ID) opens one ticket.

Automatic mail (RFC 3834 ``Auto-Submitted``, bulk and list mail, bounces) is accepted and
logged but never turned into a ticket, so an out-of-office reply to a notification
cannot start a loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.errors import HeaderParseError, MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tickets.directory import ensure_user
from tickets.errors import InvalidTransition, TicketNotFound
from tickets.models import TicketSource, User
from tickets.service import TicketService

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
# A ticket number in a subject: "[T-1001]", "T-1001", "t1001".
_SUBJECT_TICKET = re.compile(r"\bT-?(\d{1,12})\b", re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|sv|antw)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
# Where a mail client starts quoting the message being answered.
_QUOTE_HEADERS = (
    re.compile(r"^\s*On .{1,300}wrote:\s*$", re.IGNORECASE),
    re.compile(r"^\s*Le .{1,300}a écrit\s*:\s*$", re.IGNORECASE),
    re.compile(r"^\s*Am .{1,300}schrieb .{0,200}:\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*_{10,}\s*$"),  # Outlook's rule above "From: … Sent: …"
    re.compile(r"^\s*From:\s.+$", re.IGNORECASE),  # Outlook's quoted header block
)
_SIGNATURE_DELIMITER = re.compile(r"^-- ?$")
_MAX_TITLE = 200


class MailRejected(Exception):
    """A mail tier0 refuses; ``reply`` is the SMTP reply line for the sender's server."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True)
class InboundMail:
    """What tier0 reads from one mail."""

    sender: str  # the From address, lower-cased
    sender_name: str
    subject: str
    text: str  # the new text: quotes and signature cut (the service redacts secrets)
    message_id: str | None
    ticket_number: str | None  # "T-1001" when the subject names one
    attachments: tuple[str, ...]
    automatic: bool

    @property
    def idempotency_key(self) -> str:
        """Stable for redeliveries of the same mail."""
        # Without a Message-ID the content is the best identity there is.
        source = self.message_id or f"{self.sender}\n{self.subject}\n{self.text}"
        digest = hashlib.sha256(source.encode()).hexdigest()[:40]
        return f"email:{digest}"

    @property
    def title(self) -> str:
        """The ticket title: the subject without Re:/Fwd:, else the first line of text."""
        title = " ".join(_REPLY_PREFIX.sub("", self.subject).split())
        if not title:
            first_line = next((line for line in self.text.splitlines() if line.strip()), "")
            title = " ".join(first_line.split())
        if len(title) > _MAX_TITLE:
            title = title[: _MAX_TITLE - 1].rstrip() + "…"
        return title

    @property
    def description(self) -> str:
        if not self.attachments:
            return self.text
        names = ", ".join(self.attachments)
        return f"{self.text}\n\n(Attachments not imported: {names})".strip()


def parse_mail(content: bytes, *, envelope_sender: str | None = None) -> InboundMail:
    """Read a raw mail; raises MailRejected with the SMTP reply when it is unusable."""
    try:
        message = message_from_bytes(content, policy=policy.default)
        sender_name, sender = _sender(message, envelope_sender)
        subject = " ".join(str(message.get("Subject", "")).split())
        body, attachments = _body_and_attachments(message)
        message_id = str(message.get("Message-ID", "")).strip() or None
    except MailRejected:
        raise
    except (MessageError, HeaderParseError, ValueError, LookupError, TypeError) as error:
        raise MailRejected(f"554 5.6.0 tier0 cannot read this mail: {error}") from None
    text = strip_quoted_reply(body).strip()
    match = _SUBJECT_TICKET.search(subject)
    return InboundMail(
        sender=sender,
        sender_name=sender_name,
        subject=subject,
        text=text,
        message_id=message_id,
        ticket_number=None if match is None else f"T-{int(match.group(1))}",
        attachments=tuple(attachments),
        automatic=_is_automatic(message, sender),
    )


def strip_quoted_reply(text: str) -> str:
    """The new part of a reply: up to the quoted message or the signature."""
    kept: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if _SIGNATURE_DELIMITER.match(line) or any(p.match(line) for p in _QUOTE_HEADERS):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def _sender(message: EmailMessage, envelope_sender: str | None) -> tuple[str, str]:
    header = message.get("From")
    if header is not None:
        addresses = getattr(header, "addresses", ())
        if addresses:
            address = cast(Address, addresses[0])
            if address.addr_spec and "@" in address.addr_spec:
                return address.display_name, address.addr_spec.lower()
        for name, addr in getaddresses([str(header)]):
            if "@" in addr:
                return name, addr.lower()
    if envelope_sender and "@" in envelope_sender:
        return "", envelope_sender.strip("<>").lower()
    raise MailRejected("550 5.1.7 tier0 needs a sender address to answer to")


def _body_and_attachments(message: EmailMessage) -> tuple[str, list[str]]:
    attachments = [
        part.get_filename() or part.get_content_type()
        for part in message.walk()
        if part.get_content_disposition() == "attachment"
    ]
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return "", attachments
    try:
        content = part.get_content()
    except LookupError:
        # An unknown charset: read what can be read rather than refuse the mail.
        raw = part.get_payload(decode=True)
        content = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else ""
    if not isinstance(content, str):
        raise ValueError("the text of the mail is not text")
    if part.get_content_type() == "text/html":
        content = _html_to_text(content)
    return content, attachments


def _html_to_text(markup: str) -> str:
    # Enough for mail bodies: drop quoted blocks and scripts, keep line breaks.
    markup = re.sub(r"(?is)<(script|style|blockquote)\b.*?</\1>", "", markup)
    markup = re.sub(r"(?i)<br\s*/?>|</p>|</div>|</li>", "\n", markup)
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def _is_automatic(message: EmailMessage, sender: str) -> bool:
    auto_submitted = str(message.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(message.get("Precedence", "")).strip().lower()
    local_part = sender.partition("@")[0]
    return (
        auto_submitted != "no"
        or precedence in {"bulk", "junk", "list", "auto_reply"}
        or "List-Id" in message
        or local_part in {"mailer-daemon", "postmaster", "noreply", "no-reply"}
    )


# -- what a mail becomes ------------------------------------------------------------------


class MailDesk:
    """Turns mail into tickets and comments through the ticket service.

    The sender is the requester: the user whose email address it is, or else a new
    employee named by the address. A reply naming a ticket the sender may comment on
    becomes a public comment (a requester's reply resumes a ticket waiting on them); a
    reply to a closed ticket, or naming one the sender cannot see, opens a new ticket, as
    a mail that names no ticket does.
    """

    def __init__(self, tickets: TicketService, session_factory: sessionmaker[Session]) -> None:
        self._tickets = tickets
        self._session_factory = session_factory

    def receive(self, mail: InboundMail) -> str:
        requester = self._requester(mail)
        if mail.ticket_number is not None:
            try:
                commented = self._tickets.comment(
                    mail.ticket_number,
                    mail.text,
                    as_user=requester,
                    via=TicketSource.EMAIL,
                    idempotency_key=mail.idempotency_key,
                )
            except TicketNotFound:
                pass  # the same answer as "not yours": open a ticket of their own
            except InvalidTransition:
                return self._open(mail, requester, follow_up_of=mail.ticket_number)
            else:
                return f"Added to {commented.number}"
        return self._open(mail, requester)

    def _open(self, mail: InboundMail, requester: str, follow_up_of: str | None = None) -> str:
        description = mail.description
        if follow_up_of is not None:
            description = f"{description}\n\n(Follow-up to {follow_up_of}, which is closed.)"
        opened = self._tickets.open_ticket(
            requester=requester,
            title=mail.title,
            description=description.strip(),
            source=TicketSource.EMAIL,
            idempotency_key=mail.idempotency_key,
        )
        return f"Opened {opened.number}"

    def _requester(self, mail: InboundMail) -> str:
        with self._session_factory.begin() as session:
            known = session.scalars(select(User).where(User.email == mail.sender)).one_or_none()
            if known is not None:
                return known.handle
            user = ensure_user(session, mail.sender)
            if mail.sender_name and user.name == mail.sender:
                user.name = " ".join(mail.sender_name.split())[:200]
            return user.handle


# -- the SMTP endpoint --------------------------------------------------------------------

# What a mail becomes: the handler calls this (off the event loop) and answers with the
# text it returns, e.g. "Opened T-1001".
MailAction = Callable[[InboundMail], str]


class InboundMailHandler:
    """The aiosmtpd handler: parses each mail and hands it to ``act``."""

    def __init__(self, act: MailAction, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._act = act
        self.max_bytes = max_bytes

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content: bytes = envelope.original_content or envelope.content or b""
        if len(content) > self.max_bytes:
            return f"552 5.3.4 Mail too big for tier0 (limit {self.max_bytes} bytes)"
        try:
            mail = parse_mail(content, envelope_sender=envelope.mail_from)
        except MailRejected as rejected:
            return rejected.reply
        if mail.automatic:
            logger.info("automatic mail from %s not turned into a ticket", mail.sender)
            return "250 2.0.0 Automatic mail accepted; tier0 does not answer it"
        try:
            outcome = await asyncio.get_running_loop().run_in_executor(None, self._act, mail)
        except MailRejected as rejected:
            return rejected.reply
        except ValueError as error:
            # The service's message for the person (an empty mail, an unknown ticket).
            return "550 5.6.0 " + " ".join(str(error).split())
        except Exception:
            logger.exception("inbound mail from %s could not be stored", mail.sender)
            return "451 4.3.0 tier0 could not store this mail now; please try again later"
        return f"250 2.0.0 {outcome}"


def make_mail_server(
    act: MailAction, *, host: str, port: int, max_bytes: int = DEFAULT_MAX_BYTES
) -> Any:
    """An aiosmtpd controller (``.start()``/``.stop()``) for the inbound endpoint."""
    from aiosmtpd.controller import Controller

    handler = InboundMailHandler(act, max_bytes=max_bytes)
    return Controller(
        handler,
        hostname=host,
        port=port,
        # The protocol refuses oversized DATA itself (552) before it is all in memory.
        data_size_limit=max_bytes,
        ident="tier0 mail",
    )
