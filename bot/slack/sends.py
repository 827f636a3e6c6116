"""Every message the Slack desk sends goes through the notifications outbox.

`SlackSends.post` / `SlackSends.update` write the message to the outbox (in the caller's
transaction when it passes one, so the message exists exactly when its change does) and
wake a delivery thread that sends it at once. While Slack answers 500 or 429 the message
stays in the outbox and is retried with backoff (or after `Retry-After`); messages of
one thread keep their order; a message interrupted by a crash is found again by its
metadata rather than posted twice (`tickets.delivery.SlackSender`).

Some Slack calls stay direct, because the outbox cannot keep their promise:
`views.open` (its trigger id expires three seconds after the click), ephemeral
messages (they answer the click in front of the person, and mean nothing later) and
read calls (`conversations.replies`, `users.lookupByEmail`, …).

Usage, for any new flow::

    desk.sends.post(channel, text, key="approval-asked:T-1042", blocks=blocks)
    with session_factory.begin() as session:
        ...  # the change
        desk.sends.post(channel, text, key=..., session=session)  # sent after commit
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from tickets.delivery import DeliveryRound, OutboxDelivery, SlackSender, make_slack_client
from tickets.models import utc_now
from tickets.outbox import (
    Delivery,
    OutboxChannel,
    OutboxEntry,
    OutboxMessage,
    OutboxStatus,
    RetryPolicy,
    enqueue_slack_message,
    enqueue_slack_update,
)

logger = logging.getLogger(__name__)

# Retries of Slack sends: quick at first (a blip), then backing off; Retry-After wins.
SLACK_RETRY_POLICY = RetryPolicy(first_delay=timedelta(seconds=2))
# With nothing woken, look for retries that came due this often.
IDLE_POLL_SECONDS = 1.0
Block = Mapping[str, Any]


class SlackSends:
    """The Slack desk's one way to send: through the outbox, delivered right away."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        token: str,
        api_url: str,
        policy: RetryPolicy = SLACK_RETRY_POLICY,
        poll_seconds: float = IDLE_POLL_SECONDS,
    ) -> None:
        self._sessions = session_factory
        self._poll_seconds = poll_seconds
        self.delivery = OutboxDelivery(
            session_factory,
            {OutboxChannel.SLACK: SlackSender(make_slack_client(token, api_url))},
            policy=policy,
            worker=f"slack-sends:{uuid.uuid4().hex[:8]}",
        )
        self._wake = threading.Event()
        self._delivered = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- sending ---------------------------------------------------------------------

    def post(
        self,
        channel: str,
        text: str,
        *,
        key: str | None = None,
        blocks: Sequence[Block] | None = None,
        thread_ts: str | None = None,
        purpose: str | None = None,
        ticket_number: str | None = None,
        session: Session | None = None,
        reply_broadcast: bool = False,
        unfurl: bool = False,
    ) -> OutboxEntry:
        """Owe `chat.postMessage`; `key` makes it once-only (a retried event posts once).

        With `session` the message is written in that transaction and sent after it
        commits; without, in a transaction of its own, sent at once.
        """
        return self._write(
            session,
            lambda s: enqueue_slack_message(
                s,
                channel=channel,
                text=text,
                blocks=blocks,
                thread_ts=thread_ts,
                purpose=purpose,
                ticket_number=ticket_number,
                reply_broadcast=reply_broadcast,
                unfurl=unfurl,
                **_key(key),
            ),
        )

    def update(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        key: str | None = None,
        blocks: Sequence[Block] | None = None,
        ticket_number: str | None = None,
        session: Session | None = None,
    ) -> OutboxEntry:
        """Owe `chat.update` of a message tier0 posted; edits of it go out in order."""
        return self._write(
            session,
            lambda s: enqueue_slack_update(
                s,
                channel=channel,
                ts=ts,
                text=text,
                blocks=blocks,
                ticket_number=ticket_number,
                **_key(key),
            ),
        )

    def post_and_wait(
        self, channel: str, text: str, *, timeout: float = 10.0, **kwargs: Any
    ) -> Delivery | None:
        """Post and wait for Slack's answer, for the few flows that need the new message's
        ts (a thread to answer under); None if Slack has not taken it in `timeout` (it
        stays owed and goes out later). `channel` must be a channel id here."""
        entry = self.post(channel, text, **kwargs)
        return self.wait_for(entry, timeout=timeout)

    def wait_for(self, entry: OutboxEntry, *, timeout: float) -> Delivery | None:
        deadline = time.monotonic() + timeout
        while True:
            landed = self._delivery_of(entry.id)
            if landed is not None:
                return landed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if self._thread is None:
                self.deliver_due()  # no delivery thread (tests, one-off commands)
                if self._delivery_of(entry.id) is None:
                    return None
                continue
            with self._delivered:
                self._delivered.wait(min(remaining, 0.2))

    def _write(
        self, session: Session | None, write: Callable[[Session], OutboxEntry]
    ) -> OutboxEntry:
        if session is not None:
            entry = write(session)
            # Sent once the change is committed, not before (and never if rolled back).
            event.listen(session, "after_commit", lambda _s: self.wake(), once=True)
            return entry
        with self._sessions.begin() as own:
            entry = write(own)
        self.wake()
        return entry

    def _delivery_of(self, entry_id: int) -> Delivery | None:
        with self._sessions() as session:
            row = session.execute(
                select(
                    OutboxMessage.status, OutboxMessage.delivery_ref, OutboxMessage.payload
                ).where(OutboxMessage.id == entry_id)
            ).one_or_none()
        if row is None or row.status != OutboxStatus.DELIVERED.value:
            return None
        return Delivery(ref=row.delivery_ref, channel=str(row.payload.get("channel")))

    # -- delivering --------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    def deliver_due(self) -> DeliveryRound:
        """Deliver everything due now (the delivery thread's round; tests call it too)."""
        outcome = self.delivery.deliver_all_due()
        if outcome.delivered:
            with self._delivered:
                self._delivered.notify_all()
        return outcome

    def start(self) -> None:
        if self._thread is not None:
            return

        def run() -> None:
            while not self._stop.is_set():
                self._wake.wait(self._poll_seconds)
                self._wake.clear()
                if self._stop.is_set():
                    return
                try:
                    self.deliver_due()
                except Exception:
                    logger.exception("delivering Slack messages failed; trying again shortly")
                    self._stop.wait(self._poll_seconds)

        self._thread = threading.Thread(target=run, name="slack-sends", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def pending(self) -> int:
        """Slack messages owed and not yet delivered (tests, the load benchmark)."""
        with self._sessions() as session:
            return len(
                session.scalars(
                    select(OutboxMessage.id).where(
                        OutboxMessage.channel == OutboxChannel.SLACK.value,
                        OutboxMessage.status.in_(
                            [OutboxStatus.PENDING.value, OutboxStatus.SENDING.value]
                        ),
                    )
                ).all()
            )


def _key(key: str | None) -> dict[str, Any]:
    """A caller's natural key, or a fresh one for a message that exists only once anyway."""
    if key:
        return {"dedupe_key": key}
    return {"dedupe_key": f"slack:{uuid.uuid4().hex}", "fresh_key": True, "now": utc_now()}
