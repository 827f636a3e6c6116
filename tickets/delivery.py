"""Delivering outbox messages: to Slack through its Web API, to mailboxes through SMTP.

``OutboxDelivery.deliver_due`` is one round of the worker's delivery job: lease the due
messages, hand each to the sender for its channel, record the outcome. A sender raises
``DeliveryFailed`` saying whether trying again can help and, when the far end said so,
how long to wait (Slack's 429 ``Retry-After``).

Never sending twice rests on two things. The delivery is recorded (with the Slack ts or
the mail's Message-ID) in the outbox right after the far end accepts it. And a message
tried before comes back *in doubt*, because the earlier attempt may have landed without
tier0 hearing of it (its worker died before recording it, or the answer was lost to a
time-out or a 5xx): the Slack sender first looks for it in the channel (every post
carries its outbox key in Slack message metadata) and records the one it finds instead
of posting again.

SMTP offers no such look-up and no idempotent send, so the mail sender narrows the doubt
to the one moment SMTP leaves open. A server accepts a mail only when it answers "250"
to the end of its content; before the content is sent (after the server's "354" go-ahead
to DATA) the attempt commits ``handed_over_at`` and the mail's Message-ID to the outbox
(``record_handover``). So on a retry:

* no hand-over recorded: every earlier attempt stopped before the content went out (or
  the server answered it with a refusal): the server cannot have the mail, it is sent
  with no risk of a double;
* a hand-over recorded: that attempt sent the content and then its worker died, or the
  answer was lost (time-out, dropped connection), between the server accepting the mail
  and the outbox recording it. Nothing in SMTP can tell whether the mail arrived. What
  happens then is ``SmtpSettings.in_doubt``:

  - ``resend`` (the default): send it again, with the same Message-ID, From, Date and
    body, so it is the same message: mail stores and clients that de-duplicate by
    Message-ID (Gmail, for one) show it once; others show the same mail twice. A
    notification is never lost.
  - ``hold``: do not send; the message goes ``dead`` with the Message-ID in its error,
    for an operator to look up in the mail server's log and, if it is not there, send
    with ``tier0 outbox retry``. Nothing is ever sent twice, at the price of a person
    checking (and a mail that waits meanwhile).

The window this leaves is the mail server's time to answer the end of the content (it
queues the mail, typically milliseconds) plus one database write: RFC 1047's duplicate
window, which no SMTP client can close.
"""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from enum import StrEnum
from typing import Any, Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from tickets.models import utc_now
from tickets.outbox import (
    Delivery,
    LeaseLost,
    OutboxChannel,
    OutboxEntry,
    OutboxOperation,
    OutboxStatus,
    RetryPolicy,
    claim_due,
    mark_delivered,
    mark_failed,
    record_handover,
)

logger = logging.getLogger(__name__)

# The Slack message metadata type tier0 tags its notifications with.
SLACK_METADATA_EVENT_TYPE = "tier0_notification"
# Slack errors no retry can fix: the message or its destination is wrong.
PERMANENT_SLACK_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_arguments",
        "invalid_metadata_format",
        "cant_update_message",
        "edit_window_closed",
        "message_not_found",
        "restricted_action",
        "user_not_found",
        "users_not_found",
        "cannot_dm_bot",
    }
)
# chat.postMessage flags a Slack outbox message may carry besides its text and blocks.
_POST_OPTIONS = ("reply_broadcast", "unfurl_links", "unfurl_media")
# How far back an in-doubt look-up searches a channel, before the message was written.
_LOOKUP_MARGIN = timedelta(minutes=5)


class DeliveryFailed(Exception):
    """A send that did not reach its destination."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        retry_after: timedelta | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        # The attempt got past its hand-over and then lost touch: it may have landed.
        self.outcome_unknown = outcome_unknown


class Sender(Protocol):
    """Sends one outbox message to its channel; raises DeliveryFailed when it could not."""

    def deliver(self, entry: OutboxEntry) -> Delivery: ...


# -- Slack --------------------------------------------------------------------------------


def make_slack_client(token: str, api_url: str, *, timeout: int = 30) -> WebClient:
    """A Web API client that fails fast: the outbox, not the client, decides on retries."""
    return WebClient(token=token, base_url=api_url, timeout=timeout, retry_handlers=[])


class SlackSender:
    """Posts and updates Slack messages with ``chat.postMessage`` / ``chat.update``."""

    def __init__(self, client: WebClient) -> None:
        self._client = client

    def deliver(self, entry: OutboxEntry) -> Delivery:
        payload = entry.payload
        try:
            if entry.operation is OutboxOperation.SLACK_UPDATE:
                # An edit applied twice looks the same as once: no look-up needed.
                response = self._client.chat_update(
                    channel=payload["channel"],
                    ts=payload["ts"],
                    text=payload["text"],
                    blocks=payload.get("blocks"),
                )
                return Delivery(ref=str(response.get("ts")), channel=response.get("channel"))
            channel = self._recipient(str(payload["channel"]))
            if entry.in_doubt:
                earlier = self._find_posted(entry, channel)
                if earlier is not None:
                    logger.info("outbox message %s was already posted (%s)", entry.id, earlier)
                    return earlier
            response = self._client.chat_postMessage(
                channel=channel,
                text=payload["text"],
                blocks=payload.get("blocks"),
                thread_ts=payload.get("thread_ts"),
                **{option: payload[option] for option in _POST_OPTIONS if option in payload},
                metadata={
                    "event_type": SLACK_METADATA_EVENT_TYPE,
                    "event_payload": {"outbox_key": entry.dedupe_key},
                },
            )
            return Delivery(ref=str(response["ts"]), channel=response.get("channel"))
        except SlackApiError as error:
            raise _slack_failure(error) from None
        except (OSError, TimeoutError) as error:
            raise DeliveryFailed(f"Slack unreachable: {error}") from None

    def _recipient(self, channel: str) -> str:
        """Where to post: a channel or user id as given, or for a person given by email
        (an article owner) their Slack user id, looked up now, so a lookup during an
        outage is retried with the message instead of losing it."""
        if "@" not in channel:
            return channel
        found = self._client.users_lookupByEmail(email=channel)
        return str((found.get("user") or {}).get("id") or channel)

    def _find_posted(self, entry: OutboxEntry, channel: str) -> Delivery | None:
        """The message an interrupted attempt already posted, found by its outbox key."""
        payload = entry.payload
        oldest = f"{(entry.created_at - _LOOKUP_MARGIN).timestamp():.6f}"
        try:
            if channel.startswith(("U", "W")):
                # A message to a user went to the DM with them, which has its own id.
                opened = self._client.conversations_open(users=channel)
                channel = str((opened.get("channel") or {}).get("id") or channel)
            if payload.get("thread_ts"):
                response = self._client.conversations_replies(
                    channel=channel,
                    ts=payload["thread_ts"],
                    oldest=oldest,
                    include_all_metadata=True,
                    limit=200,
                )
            else:
                response = self._client.conversations_history(
                    channel=channel,
                    oldest=oldest,
                    include_all_metadata=True,
                    limit=200,
                )
        except SlackApiError as error:
            failure = _slack_failure(error)
            if not failure.permanent:
                # Slack is down: posting blind now could double the message; wait.
                raise failure from None
            # The channel cannot be read back (e.g. given by name, or no history scope):
            # post again rather than lose the notification, and say so.
            logger.warning(
                "cannot check whether outbox message %s was posted (%s); posting it again",
                entry.id,
                failure.reason,
            )
            return None
        for message in response.get("messages") or []:
            metadata = message.get("metadata") or {}
            event_payload = metadata.get("event_payload") or {}
            if (
                metadata.get("event_type") == SLACK_METADATA_EVENT_TYPE
                and event_payload.get("outbox_key") == entry.dedupe_key
            ):
                return Delivery(ref=str(message["ts"]), channel=response.get("channel"))
        return None


def _slack_failure(error: SlackApiError) -> DeliveryFailed:
    response = error.response
    status = int(getattr(response, "status_code", 0) or 0)
    code = str(response.get("error") or "unknown_error") if response is not None else "unknown"
    if status == 429 or code == "ratelimited":
        headers = getattr(response, "headers", {}) or {}
        retry_after = _seconds(headers.get("Retry-After") or headers.get("retry-after"))
        return DeliveryFailed(f"Slack rate limit (429): {code}", retry_after=retry_after)
    if status >= 500:
        return DeliveryFailed(f"Slack server error {status}: {code}")
    return DeliveryFailed(
        f"Slack refused the message: {code}", permanent=code in PERMANENT_SLACK_ERRORS
    )


def _seconds(value: Any) -> timedelta | None:
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return timedelta(seconds=max(0.0, seconds))


# -- email --------------------------------------------------------------------------------


class InDoubtMail(StrEnum):
    """What to do with a mail an earlier attempt may have delivered (module docstring)."""

    RESEND = "resend"  # same Message-ID again: never lost, maybe shown twice
    HOLD = "hold"  # dead until an operator checks: never twice, maybe late


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    from_address: str = "tier0@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 30.0
    in_doubt: InDoubtMail = InDoubtMail.RESEND


HandoverHook = Callable[[str], None]


class _HandoverSMTP(smtplib.SMTP):
    """smtplib's client with a hook between the server's "354" go-ahead to DATA and the
    content: the last moment at which the server certainly does not have the mail."""

    def __init__(self, host: str, port: int, *, timeout: float, on_go_ahead: Callable[[], None]):
        self._on_go_ahead = on_go_ahead
        super().__init__(host, port, timeout=timeout)

    def data(self, msg: Any) -> tuple[int, bytes]:
        # smtplib.SMTP.data, with the hook after the go-ahead (RFC 5321 section 4.1.1.4).
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        self._on_go_ahead()
        content = msg.encode("ascii") if isinstance(msg, str) else bytes(msg)
        content = re.sub(rb"(?m)^\.", b"..", content)  # dot-stuffing
        if not content.endswith(b"\r\n"):
            content += b"\r\n"
        self.send(content + b".\r\n")
        return self.getreply()


class SmtpSender:
    """Sends plain-text mails through an SMTP server (smtplib), recording the hand-over
    before the content goes out (see the module docstring)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._domain = settings.from_address.rpartition("@")[2] or "tier0.local"

    def message_id(self, entry: OutboxEntry) -> str:
        """The same Message-ID every time this outbox message is sent."""
        digest = hashlib.sha256(entry.dedupe_key.encode()).hexdigest()[:32]
        return f"<{digest}@{self._domain}>"

    def build(self, entry: OutboxEntry) -> EmailMessage:
        payload = entry.payload
        mail = EmailMessage()
        mail["From"] = self._settings.from_address
        mail["To"] = payload["to"]
        mail["Subject"] = payload["subject"]
        mail["Message-ID"] = self.message_id(entry)
        mail["Date"] = format_datetime(entry.created_at)
        # RFC 3834: out-of-office robots must not answer a notification (mail loops).
        mail["Auto-Submitted"] = "auto-generated"
        if entry.ticket_number:
            # One made-up root per ticket, so mail clients thread all of its mails.
            thread_root = f"<ticket.{entry.ticket_number}@{self._domain}>"
            mail["In-Reply-To"] = thread_root
            mail["References"] = thread_root
            mail["X-Tier0-Ticket"] = entry.ticket_number
        mail.set_content(payload["body"])
        return mail

    def deliver(
        self, entry: OutboxEntry, *, record_handover: HandoverHook | None = None
    ) -> Delivery:
        """Send ``entry``'s mail. ``record_handover(message_id)`` is called (and must have
        committed) when the server has said go ahead and the content is about to go."""
        settings = self._settings
        message_id = self.message_id(entry)
        if entry.handed_over_at is not None:
            if settings.in_doubt is InDoubtMail.HOLD:
                raise DeliveryFailed(
                    f"held: an attempt at {entry.handed_over_at.isoformat()} sent this mail "
                    f"to the server and never learnt whether it was accepted; look for "
                    f"Message-ID {message_id} in the mail server's log, and if it is not "
                    f"there send it with `tier0 outbox retry`",
                    permanent=True,
                    outcome_unknown=True,
                )
            logger.warning(
                "outbox mail %s may have been delivered at %s; sending it again with the "
                "same Message-ID %s",
                entry.id,
                entry.handed_over_at.isoformat(),
                message_id,
            )
        mail = self.build(entry)
        handed_over = False

        def go_ahead() -> None:
            nonlocal handed_over
            if record_handover is not None:
                record_handover(message_id)
            handed_over = True

        try:
            smtp = _HandoverSMTP(
                settings.host, settings.port, timeout=settings.timeout, on_go_ahead=go_ahead
            )
            try:
                if settings.starttls:
                    smtp.starttls()
                if settings.username and settings.password:
                    smtp.login(settings.username, settings.password)
                smtp.send_message(mail)
            finally:
                # Not ``with``: its QUIT raises on an odd answer, which after a "250"
                # would make an accepted mail look refused (and send it again).
                _close_quietly(smtp)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            permanent = all(code >= 500 for code in codes)
            raise DeliveryFailed(
                f"mail server refused {payload_to(entry)}: {error.recipients}", permanent=permanent
            ) from None
        except smtplib.SMTPResponseException as error:
            # An answer, even after the content: the server refused the mail.
            reply = (
                error.smtp_error.decode(errors="replace")
                if isinstance(error.smtp_error, bytes)
                else str(error.smtp_error)
            )
            raise DeliveryFailed(
                f"mail server said {error.smtp_code} {reply}", permanent=error.smtp_code >= 500
            ) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            if handed_over:
                raise DeliveryFailed(
                    f"no answer from the mail server after the content of {message_id} was "
                    f"sent ({error}); it may have been delivered",
                    outcome_unknown=True,
                ) from None
            raise DeliveryFailed(f"mail server unreachable: {error}") from None
        return Delivery(ref=message_id, channel=payload_to(entry))


def _close_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def payload_to(entry: OutboxEntry) -> str:
    return str(entry.payload.get("to", "?"))


# -- one delivery round -------------------------------------------------------------------


@dataclass
class DeliveryRound:
    """What one round of delivery did."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        return self.delivered + self.retrying + self.dead


class OutboxDelivery:
    """Delivers due outbox messages through the senders it has, one round per call.

    Messages for a channel without a sender (no SMTP server configured, no Slack token)
    wait in the outbox, untouched, until a worker that has one runs.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        senders: Mapping[OutboxChannel, Sender],
        *,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utc_now,
        worker: str | None = None,
        batch_size: int = 50,
    ) -> None:
        self._session_factory = session_factory
        self._senders = dict(senders)
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self.worker = worker or f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
        self._batch_size = batch_size

    @property
    def channels(self) -> list[OutboxChannel]:
        return list(self._senders)

    def deliver_due(self) -> DeliveryRound:
        """Lease what is due now and try each message once."""
        outcome = DeliveryRound()
        if not self._senders:
            return outcome
        claimed = claim_due(
            self._session_factory,
            worker=self.worker,
            now=self._clock(),
            policy=self.policy,
            limit=self._batch_size,
            channels=self.channels,
        )
        for entry in claimed:
            self._deliver_one(entry, outcome)
        return outcome

    def deliver_all_due(self, *, max_rounds: int = 1000) -> DeliveryRound:
        """Rounds until nothing due is left (or ``max_rounds``); the totals."""
        total = DeliveryRound()
        for _ in range(max_rounds):
            outcome = self.deliver_due()
            total.delivered += outcome.delivered
            total.retrying += outcome.retrying
            total.dead += outcome.dead
            total.errors.extend(outcome.errors)
            if outcome.claimed == 0:
                break
        return total

    def _deliver_one(self, entry: OutboxEntry, outcome: DeliveryRound) -> None:
        sender = self._senders[entry.channel]

        def handover(ref: str) -> None:
            record_handover(
                self._session_factory, entry, worker=self.worker, now=self._clock(), ref=ref
            )

        try:
            if isinstance(sender, SmtpSender):
                delivery = sender.deliver(entry, record_handover=handover)
            else:
                delivery = sender.deliver(entry)
        except LeaseLost as lost:
            # Another worker has the message now; it is its to send and record.
            logger.warning("outbox message %s not sent: %s", entry.id, lost)
            outcome.errors.append(f"{entry.dedupe_key}: {lost}")
            return
        except DeliveryFailed as failure:
            self._record_failure(entry, outcome, failure)
            return
        except Exception as error:  # a sender bug must not stop the other messages
            logger.exception("outbox message %s: unexpected error from its sender", entry.id)
            self._record_failure(entry, outcome, DeliveryFailed(f"{type(error).__name__}: {error}"))
            return
        mark_delivered(
            self._session_factory,
            entry,
            worker=self.worker,
            now=self._clock(),
            delivery=delivery,
        )
        outcome.delivered += 1

    def _record_failure(
        self, entry: OutboxEntry, outcome: DeliveryRound, failure: DeliveryFailed
    ) -> None:
        status = mark_failed(
            self._session_factory,
            entry,
            worker=self.worker,
            now=self._clock(),
            policy=self.policy,
            error=failure.reason,
            permanent=failure.permanent,
            retry_after=failure.retry_after,
            outcome_unknown=failure.outcome_unknown,
        )
        outcome.errors.append(f"{entry.dedupe_key}: {failure.reason}")
        if status is OutboxStatus.DEAD:
            outcome.dead += 1
        else:
            outcome.retrying += 1
