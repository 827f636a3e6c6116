"""The notification outbox: every message tier0 owes someone, kept until it is delivered.

A change that should notify somebody (a ticket opened, a comment, a resolution) writes an
``OutboxMessage`` in the same transaction as the change itself, so a notification exists
exactly when its change was committed. The worker (``tickets.worker``) then delivers it
(``tickets.delivery``), with retries and exponential backoff while Slack or the mail
server is down, and records the delivery so nothing is sent twice.

One message's life::

    pending ──claim──▶ sending ──delivered──▶ delivered
       ▲                  │
       └──failed (retry)──┤            (a lease that runs out puts a crashed worker's
                          └──gave up──▶ dead     message back in play, marked in doubt)

A claim is a lease: the worker that claimed a message owns it until ``lease_expires_at``.
Several worker processes can run at once; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` hands
each message to one of them, on SQLite the database write lock serialises the claims.
Nothing is ever deleted here: a message that cannot be delivered ends ``dead``, visible to
``tier0 outbox`` and put back in the queue by ``tier0 outbox retry``.

For the Slack front end (``enqueue_slack_message``, ``enqueue_slack_update``)::

    with session_factory.begin() as session:
        ...  # the change itself
        enqueue_slack_message(
            session,
            channel="C0123",            # a channel id, a user id (DM) or a channel name
            text="T-1001 was resolved",  # the fallback text notifications show
            blocks=[...],                # optional Block Kit blocks
            thread_ts="1700000001.0001", # optional: reply in this thread
            dedupe_key="resolved:T-1001",
            purpose="requester-update",  # optional: names a delivery hook, see below
        )

``dedupe_key`` makes enqueueing idempotent: the same key enqueued twice (a retried Slack
event, a re-run job) gives one message. Delivery hooks registered with
``on_delivered(purpose, hook)`` run in the transaction that marks a message delivered,
with the Slack ``ts`` it got, e.g. to remember where a triage message was posted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import JSON, CursorResult, Index, Integer, String, Text, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, aliased, mapped_column, sessionmaker

from tickets.models import Base, UTCDateTime, utc_now

logger = logging.getLogger(__name__)

MAX_DEDUPE_KEY_LENGTH = 200
# Slack refuses text over 40,000 characters; mail bodies get the same bound so a runaway
# notification is refused when it is written, not retried for hours.
MAX_TEXT_LENGTH = 40_000


class OutboxChannel(StrEnum):
    SLACK = "slack"
    EMAIL = "email"


class OutboxOperation(StrEnum):
    SLACK_POST = "slack.post"  # chat.postMessage
    SLACK_UPDATE = "slack.update"  # chat.update of a message tier0 posted
    EMAIL_SEND = "email.send"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    DEAD = "dead"


class OutboxMessage(Base):
    """One notification owed to someone, and what became of it."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        # The worker's query: what is due, oldest first.
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique: enqueueing the same notification twice stores it once.
    dedupe_key: Mapped[str] = mapped_column(String(MAX_DEDUPE_KEY_LENGTH), unique=True)
    channel: Mapped[str] = mapped_column(String(20))
    operation: Mapped[str] = mapped_column(String(20))
    # What to send: Slack arguments or the mail's recipients, subject and body.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Names the delivery hook (``on_delivered``) to run once delivered, if any.
    purpose: Mapped[str | None] = mapped_column(String(50))
    ticket_number: Mapped[str | None] = mapped_column(String(20), index=True)
    # Slack messages in one thread (or edits of one message) share a thread key and are
    # delivered in the order they were written: a later one waits while an earlier one
    # is still pending, so a retry never lets the conversation overtake itself.
    thread_key: Mapped[str | None] = mapped_column(String(MAX_DEDUPE_KEY_LENGTH), index=True)
    status: Mapped[str] = mapped_column(String(20), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    # What the far end called it: the Slack message ts, the mail's Message-ID.
    delivery_ref: Mapped[str | None] = mapped_column(String(200))
    # When an attempt passed the point of no return without tier0 learning the outcome
    # (a mail's content went to the SMTP server, whose "250 accepted" never came back or
    # was never recorded): from then on the message may have been delivered already.
    # Written, with the Message-ID in ``delivery_ref``, before the content is sent.
    handed_over_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class OutboxEntry:
    """A message as it was when read; safe to keep after its session is gone."""

    id: int
    dedupe_key: str
    channel: OutboxChannel
    operation: OutboxOperation
    payload: Mapping[str, Any]
    purpose: str | None
    ticket_number: str | None
    status: OutboxStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivery_ref: str | None
    created_at: datetime
    delivered_at: datetime | None
    # True when an earlier attempt may have reached the far end without tier0 learning of
    # it (its worker died holding the lease, or the answer was lost to a time-out or a
    # server error), so the sender checks before sending again.
    in_doubt: bool = False
    # Set when an earlier attempt handed the content over and its outcome is unknown
    # (``record_handover``): narrower than ``in_doubt``, which any earlier attempt sets.
    handed_over_at: datetime | None = None

    @classmethod
    def of(cls, message: OutboxMessage, *, in_doubt: bool = False) -> OutboxEntry:
        return cls(
            id=message.id,
            dedupe_key=message.dedupe_key,
            channel=OutboxChannel(message.channel),
            operation=OutboxOperation(message.operation),
            payload=json.loads(json.dumps(message.payload)),
            purpose=message.purpose,
            ticket_number=message.ticket_number,
            status=OutboxStatus(message.status),
            attempts=message.attempts,
            next_attempt_at=message.next_attempt_at,
            last_error=message.last_error,
            delivery_ref=message.delivery_ref,
            created_at=message.created_at,
            delivered_at=message.delivered_at,
            in_doubt=in_doubt,
            handed_over_at=message.handed_over_at,
        )


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: 10 s, 20 s, 40 s … capped at 15 min, for 30 attempts.

    With these defaults a message keeps being retried for about six hours before it is
    given up as dead, so an hour-long Slack or mail outage loses nothing.
    """

    first_delay: timedelta = timedelta(seconds=10)
    max_delay: timedelta = timedelta(minutes=15)
    max_attempts: int = 30
    # How long a claim lasts. Longer than any single send (the Slack client and SMTP time
    # out after 30 s), so a live worker never loses a message to another one.
    lease: timedelta = timedelta(minutes=5)

    def delay_after(self, attempts: int) -> timedelta:
        """How long to wait after the ``attempts``-th failed attempt (1-based)."""
        exponent = max(0, attempts - 1)
        if exponent >= 32:  # 2**32 × 10 s is far past any cap; avoid huge numbers
            return self.max_delay
        delay: timedelta = self.first_delay * (1 << exponent)
        return min(delay, self.max_delay)


class OutboxError(ValueError):
    """A notification that cannot be enqueued as given; the message says why."""


# -- enqueueing (inside the caller's transaction) -----------------------------------------


def enqueue(
    session: Session,
    *,
    channel: OutboxChannel,
    operation: OutboxOperation,
    payload: Mapping[str, Any],
    dedupe_key: str,
    purpose: str | None = None,
    ticket_number: str | None = None,
    now: datetime | None = None,
    fresh_key: bool = False,
    thread_key: str | None = None,
) -> OutboxEntry:
    """Add a message to the outbox in ``session``'s transaction; commit is the caller's.

    Idempotent by ``dedupe_key``: if a message with this key exists, it is returned and
    nothing is added. A savepoint keeps a concurrent duplicate from spoiling the caller's
    transaction. ``fresh_key=True`` says the key was just made up (a random id), so the
    look-up and the savepoint are skipped: the cheap path for notifications that exist
    only through the transaction writing them.
    """
    key = dedupe_key.strip()
    if not key:
        raise OutboxError("a notification needs a dedupe key")
    if len(key) > MAX_DEDUPE_KEY_LENGTH:
        # Long natural keys (thread ts + event ids) stay unique as a digest.
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    try:
        stored_payload = json.loads(json.dumps(dict(payload)))
    except (TypeError, ValueError) as error:
        raise OutboxError(f"the notification payload is not JSON: {error}") from None
    existing = None if fresh_key else _by_dedupe_key(session, key)
    if existing is not None:
        return OutboxEntry.of(existing)
    at = now or utc_now()
    message = OutboxMessage(
        dedupe_key=key,
        channel=channel.value,
        operation=operation.value,
        payload=stored_payload,
        purpose=purpose,
        ticket_number=ticket_number,
        thread_key=thread_key[:MAX_DEDUPE_KEY_LENGTH] if thread_key else None,
        status=OutboxStatus.PENDING.value,
        attempts=0,
        next_attempt_at=at,
        created_at=at,
    )
    if fresh_key:
        session.add(message)
        session.flush()  # the id, for the entry handed back
        return OutboxEntry.of(message)
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        # Another transaction enqueued the same key between our lookup and insert.
        winner = _by_dedupe_key(session, key)
        if winner is None:
            raise
        return OutboxEntry.of(winner)
    return OutboxEntry.of(message)


def enqueue_slack_message(
    session: Session,
    *,
    channel: str,
    text: str,
    dedupe_key: str,
    blocks: Sequence[Mapping[str, Any]] | None = None,
    thread_ts: str | None = None,
    purpose: str | None = None,
    ticket_number: str | None = None,
    now: datetime | None = None,
    fresh_key: bool = False,
    reply_broadcast: bool = False,
    unfurl: bool = True,
) -> OutboxEntry:
    """Owe a Slack message (``chat.postMessage``), delivered by the worker.

    ``channel`` is a channel id (C…), a user id (U…, delivered as a DM) or a channel
    name; ``text`` is required even with ``blocks`` (it is what notifications show);
    ``thread_ts`` posts the message as a reply in that thread (``reply_broadcast`` shows
    it in the channel too); ``unfurl=False`` keeps Slack from previewing its links. Call
    it inside the transaction of the change that causes the message; see the module
    docstring.
    """
    payload: dict[str, Any] = {
        "channel": _required(channel, "channel"),
        "text": _checked_text(text),
    }
    if blocks:
        payload["blocks"] = [dict(block) for block in blocks]
    if thread_ts:
        payload["thread_ts"] = thread_ts
        if reply_broadcast:
            payload["reply_broadcast"] = True
    if not unfurl:
        payload["unfurl_links"] = payload["unfurl_media"] = False
    return enqueue(
        session,
        channel=OutboxChannel.SLACK,
        operation=OutboxOperation.SLACK_POST,
        payload=payload,
        dedupe_key=dedupe_key,
        purpose=purpose,
        ticket_number=ticket_number,
        now=now,
        fresh_key=fresh_key,
        # Replies in a thread keep their order; top-level posts (one per ticket, say) do
        # not wait on each other, so one refused post cannot hold up a whole channel.
        thread_key=slack_thread_key(payload["channel"], thread_ts) if thread_ts else None,
    )


def enqueue_slack_update(
    session: Session,
    *,
    channel: str,
    ts: str,
    text: str,
    dedupe_key: str,
    blocks: Sequence[Mapping[str, Any]] | None = None,
    purpose: str | None = None,
    ticket_number: str | None = None,
    now: datetime | None = None,
    fresh_key: bool = False,
) -> OutboxEntry:
    """Owe an edit of a message tier0 posted (``chat.update`` of ``ts`` in ``channel``).

    An update is idempotent at Slack (the same edit twice shows once), so it is simply
    retried until it lands. Use a ``dedupe_key`` naming the new state (e.g.
    ``"triage-card:T-1001:claimed"``) so each state change is one update.
    """
    payload: dict[str, Any] = {
        "channel": _required(channel, "channel"),
        "ts": _required(ts, "ts"),
        "text": _checked_text(text),
    }
    if blocks:
        payload["blocks"] = [dict(block) for block in blocks]
    return enqueue(
        session,
        channel=OutboxChannel.SLACK,
        operation=OutboxOperation.SLACK_UPDATE,
        payload=payload,
        dedupe_key=dedupe_key,
        purpose=purpose,
        ticket_number=ticket_number,
        now=now,
        fresh_key=fresh_key,
        # Edits of one message go out in order, so the card never shows an older state.
        thread_key=slack_thread_key(payload["channel"], payload["ts"]),
    )


def slack_thread_key(channel: str, ts: str) -> str:
    """What orders Slack messages: the thread they belong to (or the message edited)."""
    return f"slack:{channel.strip()}:{ts}"


def enqueue_email(
    session: Session,
    *,
    to: str,
    subject: str,
    body: str,
    dedupe_key: str,
    ticket_number: str | None = None,
    purpose: str | None = None,
    now: datetime | None = None,
    fresh_key: bool = False,
) -> OutboxEntry:
    """Owe a plain-text mail to ``to``; with ``ticket_number`` it threads with the ticket's
    other mails and its subject carries the number, so replies come back to the ticket."""
    address = _required(to, "recipient address")
    if "@" not in address or any(ch in address for ch in "\r\n,;<> "):
        raise OutboxError(f"{address!r} is not a single mail address")
    subject_line = " ".join(subject.split())
    if not subject_line:
        raise OutboxError("a mail needs a subject")
    return enqueue(
        session,
        channel=OutboxChannel.EMAIL,
        operation=OutboxOperation.EMAIL_SEND,
        payload={"to": address, "subject": subject_line[:250], "body": _checked_text(body)},
        dedupe_key=dedupe_key,
        purpose=purpose,
        ticket_number=ticket_number,
        now=now,
        fresh_key=fresh_key,
    )


# -- the worker's side: claim, then record what happened ---------------------------------


def claim_due(
    session_factory: sessionmaker[Session],
    *,
    worker: str,
    now: datetime,
    policy: RetryPolicy,
    limit: int = 50,
    channels: Sequence[OutboxChannel] | None = None,
) -> list[OutboxEntry]:
    """Lease up to ``limit`` due messages to ``worker``, oldest first, in one transaction.

    Due means pending with its next attempt at or before ``now``, or sending under a lease
    that ran out (its worker died), and not behind an earlier undelivered message of the
    same thread (``thread_key``): those go first. Any message tried before comes back
    ``in_doubt``. A message leased to one worker is never handed to another while the
    lease lasts.
    """
    due = or_(
        (OutboxMessage.status == OutboxStatus.PENDING.value)
        & (OutboxMessage.next_attempt_at <= now),
        (OutboxMessage.status == OutboxStatus.SENDING.value)
        & (OutboxMessage.lease_expires_at <= now),
    )
    earlier = aliased(OutboxMessage)
    waits_behind_an_earlier_one = (
        select(earlier.id)
        .where(
            earlier.thread_key == OutboxMessage.thread_key,
            earlier.id < OutboxMessage.id,
            earlier.status.in_([OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]),
        )
        .exists()
    )
    query = select(OutboxMessage).where(
        due, or_(OutboxMessage.thread_key.is_(None), ~waits_behind_an_earlier_one)
    )
    if channels is not None:
        query = query.where(OutboxMessage.channel.in_([channel.value for channel in channels]))
    query = (
        query.order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        # PostgreSQL: rows another worker is claiming are skipped, not waited for. SQLite
        # renders no FOR UPDATE; its BEGIN IMMEDIATE (tickets.db) serialises claimers.
        .with_for_update(skip_locked=True)
    )
    claimed: list[OutboxEntry] = []
    with session_factory.begin() as session:
        for message in session.scalars(query):
            in_doubt = message.attempts > 0
            message.status = OutboxStatus.SENDING.value
            message.attempts += 1
            message.lease_owner = worker
            message.lease_expires_at = now + policy.lease
            claimed.append(OutboxEntry.of(message, in_doubt=in_doubt))
    return claimed


@dataclass(frozen=True)
class Delivery:
    """Where a message landed: the Slack channel id and ts, or the mail's Message-ID."""

    ref: str | None
    channel: str | None = None


DeliveryHook = Callable[[Session, OutboxEntry, Delivery], None]
_delivery_hooks: dict[str, DeliveryHook] = {}


def on_delivered(purpose: str, hook: DeliveryHook) -> None:
    """Run ``hook(session, entry, delivery)`` when a message of ``purpose`` is delivered.

    It runs in the transaction that records the delivery, so what it writes (a Slack ts
    stored on the ticket) is committed exactly when the delivery is.
    """
    _delivery_hooks[purpose] = hook


def mark_delivered(
    session_factory: sessionmaker[Session],
    entry: OutboxEntry,
    *,
    worker: str,
    now: datetime,
    delivery: Delivery,
) -> bool:
    """Record that ``entry`` reached its destination; False if it was no longer ours.

    The delivery is recorded even when the lease ran out meanwhile (the send did
    happen), unless another worker already recorded it.
    """
    with session_factory.begin() as session:
        result = cast(
            CursorResult[Any],
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == entry.id,
                    OutboxMessage.status != OutboxStatus.DELIVERED.value,
                )
                .values(
                    status=OutboxStatus.DELIVERED.value,
                    delivered_at=now,
                    delivery_ref=delivery.ref,
                    lease_owner=None,
                    lease_expires_at=None,
                    last_error=None,
                )
                .execution_options(synchronize_session=False)
            ),
        )
        if result.rowcount != 1:
            logger.warning("outbox message %s was already delivered by another worker", entry.id)
            return False
        if entry.purpose is not None and entry.purpose in _delivery_hooks:
            _delivery_hooks[entry.purpose](session, entry, delivery)
    return True


class LeaseLost(Exception):
    """The message is no longer this worker's to send (its lease ran out and another
    worker took it): the attempt must stop before it sends anything."""


def record_handover(
    session_factory: sessionmaker[Session],
    entry: OutboxEntry,
    *,
    worker: str,
    now: datetime,
    ref: str,
) -> None:
    """Commit, before the point of no return, that this attempt is about to hand the
    message over under ``ref`` (a mail's Message-ID): if the worker dies before it records
    the outcome, the next attempt knows the message may have arrived (``handed_over_at``)
    and which Message-ID to look for. The first hand-over's time is kept.

    Raises ``LeaseLost`` when the message is no longer leased to ``worker``.
    """
    with session_factory.begin() as session:
        result = cast(
            CursorResult[Any],
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == entry.id,
                    OutboxMessage.status == OutboxStatus.SENDING.value,
                    OutboxMessage.lease_owner == worker,
                )
                .values(
                    handed_over_at=func.coalesce(OutboxMessage.handed_over_at, now),
                    delivery_ref=ref[:200],
                )
                .execution_options(synchronize_session=False)
            ),
        )
        if result.rowcount != 1:
            raise LeaseLost(f"outbox message {entry.id} is no longer leased to {worker}")


def mark_failed(
    session_factory: sessionmaker[Session],
    entry: OutboxEntry,
    *,
    worker: str,
    now: datetime,
    policy: RetryPolicy,
    error: str,
    permanent: bool = False,
    retry_after: timedelta | None = None,
    outcome_unknown: bool = False,
) -> OutboxStatus:
    """Record a failed attempt: back off and retry, or give up (``dead``) when the error is
    permanent or the attempts are used up. Returns the message's new status.

    Unless ``outcome_unknown`` (the attempt got past its hand-over and then lost touch),
    the failure was an answer (the server refused the mail), so this attempt delivered
    nothing: a hand-over it recorded is taken back. One recorded by an earlier attempt
    stays, as that attempt's outcome is still unknown.
    """
    gives_up = permanent or entry.attempts >= policy.max_attempts
    delay = policy.delay_after(entry.attempts)
    if retry_after is not None:
        # The far end said when to come back (Slack's 429 Retry-After); never sooner.
        delay = max(retry_after, timedelta(seconds=1))
    status = OutboxStatus.DEAD if gives_up else OutboxStatus.PENDING
    values: dict[str, Any] = {
        "status": status.value,
        "next_attempt_at": now + delay,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_error": error[:2000],
    }
    if not outcome_unknown and entry.handed_over_at is None:
        values.update(handed_over_at=None, delivery_ref=None)
    with session_factory.begin() as session:
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == entry.id,
                OutboxMessage.status == OutboxStatus.SENDING.value,
                OutboxMessage.lease_owner == worker,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    if gives_up:
        logger.error(
            "outbox message %s (%s) given up after %s attempt(s): %s",
            entry.id,
            entry.dedupe_key,
            entry.attempts,
            error,
        )
    return status


# -- looking at the outbox (tier0 outbox) -------------------------------------------------


def outbox_counts(session_factory: sessionmaker[Session]) -> dict[OutboxStatus, int]:
    """How many messages are in each state."""
    with session_factory.begin() as session:
        rows = session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        ).all()
    counts = {status: 0 for status in OutboxStatus}
    for status, number in rows:
        counts[OutboxStatus(status)] = int(number)
    return counts


def list_messages(
    session_factory: sessionmaker[Session],
    *,
    status: OutboxStatus | None = None,
    ticket_number: str | None = None,
    limit: int = 100,
) -> list[OutboxEntry]:
    """Messages, newest first, optionally of one status or one ticket."""
    query = select(OutboxMessage)
    if status is not None:
        query = query.where(OutboxMessage.status == status.value)
    if ticket_number is not None:
        query = query.where(OutboxMessage.ticket_number == ticket_number)
    query = query.order_by(OutboxMessage.id.desc()).limit(limit)
    with session_factory.begin() as session:
        return [OutboxEntry.of(message) for message in session.scalars(query)]


def retry_dead(session_factory: sessionmaker[Session], *, now: datetime) -> int:
    """Put every dead message back in the queue (after the cause was fixed); how many.

    Retrying is the operator's decision to send again, so a mail held because an earlier
    attempt may have delivered it (``SmtpSettings.in_doubt`` "hold"; its Message-ID is in
    ``delivery_ref`` to look up in the mail server's log) loses its hand-over mark and
    is sent."""
    with session_factory.begin() as session:
        result = cast(
            CursorResult[Any],
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.DEAD.value)
                .values(
                    status=OutboxStatus.PENDING.value,
                    attempts=0,
                    next_attempt_at=now,
                    handed_over_at=None,
                )
                .execution_options(synchronize_session=False)
            ),
        )
        return int(result.rowcount)


def _by_dedupe_key(session: Session, key: str) -> OutboxMessage | None:
    return session.scalars(
        select(OutboxMessage).where(OutboxMessage.dedupe_key == key)
    ).one_or_none()


def _required(value: str, name: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise OutboxError(f"a notification needs a {name}")
    return text


def _checked_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise OutboxError("a notification needs some text")
    if len(text) > MAX_TEXT_LENGTH:
        raise OutboxError(
            f"a notification of {len(text)} characters is over the {MAX_TEXT_LENGTH} limit"
        )
    return text
