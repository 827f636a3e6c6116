"""Slack events kept from their acknowledgement until they have been handled.

Slack redelivers an event only when it did not see it acknowledged, and tier0
acknowledges at once and works afterwards. So the event is stored *before* the ack
(`receive`), claimed with a lease by whichever worker handles it (`claim`), and marked
`done` after. A repeat delivery (`X-Slack-Retry-Num`) finds the row and is not acted
on again; a replica that dies mid-handling leaves a claim whose lease runs out, and
`stale` hands the event to another worker.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, and_, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tickets.models import SlackInboxEvent, utc_now

logger = logging.getLogger(__name__)

MAX_EVENT_ID_CHARS = 200
_INSERT_EVENT = insert(SlackInboxEvent)


class InboxState(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class StaleEvent:
    event_id: str
    body: str


class SlackInbox:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        lease: timedelta = timedelta(seconds=60),
        max_attempts: int = 3,
    ) -> None:
        self._sessions = session_factory
        bind = session_factory.kw.get("bind")
        if not isinstance(bind, Engine):
            raise TypeError("the Slack inbox needs a session factory bound to an engine")
        self._engine = bind
        self.lease = lease
        self.max_attempts = max_attempts

    def receive(self, event_id: str, body: str) -> bool:
        """Keep a delivered event; False when this event id was delivered before.

        This runs before every acknowledgement, so it is one Core INSERT in a
        transaction of its own (the ORM's unit of work would cost more CPU than the rest
        of the ack path together); the row is committed when this returns."""
        _check_event_id(event_id)
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    _INSERT_EVENT,
                    {
                        "event_id": event_id,
                        "body": body,
                        "state": InboxState.RECEIVED.value,
                        "attempts": 0,
                        "received_at": utc_now(),
                    },
                )
        except IntegrityError:
            return False
        return True

    def for_acks(self) -> SlackInbox | GroupCommit:
        """What the ack path stores events with. On PostgreSQL a commit is a round trip
        and an fsync, and events arriving together share one (`GroupCommit`). On SQLite
        the cost is waiting for the file's write lock, which an answering process holds
        now and then: there, request threads waiting each on their own got in sooner
        than one writer thread with everyone behind it (bench/slack_load.py)."""
        if self._engine.dialect.name == "postgresql":
            return GroupCommit(self)
        return self

    def receive_many(self, deliveries: Sequence[tuple[str, str]]) -> list[bool]:
        """Keep several delivered events in one transaction (one commit, one fsync on
        PostgreSQL); for each, False when its id was delivered before (an earlier
        delivery in the same batch included). Nothing is kept if the commit fails."""
        for event_id, _ in deliveries:
            _check_event_id(event_id)
        statement = _insert_unless_kept(self._engine.dialect.name)
        now = utc_now()
        kept = []
        with self._engine.begin() as connection:
            for event_id, body in deliveries:
                result = connection.execute(
                    statement,
                    {
                        "event_id": event_id,
                        "body": body,
                        "state": InboxState.RECEIVED.value,
                        "attempts": 0,
                        "received_at": now,
                    },
                )
                # RETURNING rather than rowcount, which psycopg reports as -1 here.
                kept.append(result.first() is not None)
        return kept

    def claim(self, event_id: str) -> bool:
        """Take the event for handling; False if it is done, failed, or another worker
        holds a lease on it. One UPDATE decides, so two workers never both win."""
        now = utc_now()
        with self._sessions.begin() as session:
            result = cast(
                CursorResult[Any],
                session.execute(
                    update(SlackInboxEvent)
                    .where(
                        SlackInboxEvent.event_id == event_id,
                        SlackInboxEvent.attempts < self.max_attempts,
                        _claimable(now),
                    )
                    .values(
                        state=InboxState.PROCESSING.value,
                        lease_until=now + self.lease,
                        attempts=SlackInboxEvent.attempts + 1,
                    )
                ),
            )
            return result.rowcount == 1

    def claim_waiting(self, limit: int) -> list[StaleEvent]:
        """Claim up to `limit` of the events received and not yet started, oldest first.

        The answering processes call this in a loop; one UPDATE claims the batch, so
        two processes polling together never both take an event (on PostgreSQL the
        rows another poll is claiming are skipped, not waited for). Claimed events are
        handled at once (callers ask only for what they have room for), well inside
        the lease."""
        if limit < 1:
            return []
        now = utc_now()
        waiting = (
            select(SlackInboxEvent.event_id)
            .where(
                SlackInboxEvent.state == InboxState.RECEIVED.value,
                SlackInboxEvent.attempts < self.max_attempts,
            )
            .order_by(SlackInboxEvent.received_at)
            .limit(limit)
        )
        if self._engine.dialect.name == "postgresql":
            waiting = waiting.with_for_update(skip_locked=True)
        with self._engine.begin() as connection:
            claimed = connection.execute(
                update(SlackInboxEvent)
                .where(
                    SlackInboxEvent.event_id.in_(waiting),
                    # Checked again on the row itself: another claim may have won meanwhile.
                    SlackInboxEvent.state == InboxState.RECEIVED.value,
                )
                .values(
                    state=InboxState.PROCESSING.value,
                    lease_until=now + self.lease,
                    attempts=SlackInboxEvent.attempts + 1,
                )
                .returning(
                    SlackInboxEvent.event_id, SlackInboxEvent.body, SlackInboxEvent.received_at
                )
            ).all()
        return [
            StaleEvent(event_id, body)
            for event_id, body, _ in sorted(claimed, key=lambda row: row.received_at)
        ]

    def finish(self, event_id: str) -> None:
        self._settle(event_id, InboxState.DONE)

    def fail(self, event_id: str) -> None:
        """Handling raised: keep the event, as failed, for someone to look at."""
        self._settle(event_id, InboxState.FAILED)

    def _settle(self, event_id: str, state: InboxState) -> None:
        with self._sessions.begin() as session:
            session.execute(
                update(SlackInboxEvent)
                .where(SlackInboxEvent.event_id == event_id)
                .values(state=state.value, lease_until=None, finished_at=utc_now())
            )

    def state_of(self, event_id: str) -> InboxState | None:
        with self._sessions() as session:
            row = session.get(SlackInboxEvent, event_id)
            return InboxState(row.state) if row else None

    def stale(self, *, waiting_longer_than: timedelta, limit: int = 50) -> list[StaleEvent]:
        """Events nobody is working on: received but never started (the worker queue was
        full, or the replica died before starting), or claimed under a lease that ran out."""
        now = utc_now()
        with self._sessions() as session:
            rows = session.execute(
                select(SlackInboxEvent.event_id, SlackInboxEvent.body)
                .where(
                    SlackInboxEvent.attempts < self.max_attempts,
                    or_(
                        and_(
                            SlackInboxEvent.state == InboxState.RECEIVED.value,
                            SlackInboxEvent.received_at < now - waiting_longer_than,
                        ),
                        and_(
                            SlackInboxEvent.state == InboxState.PROCESSING.value,
                            SlackInboxEvent.lease_until < now,
                        ),
                    ),
                )
                .order_by(SlackInboxEvent.received_at)
                .limit(limit)
            ).all()
        return [StaleEvent(event_id, body) for event_id, body in rows]

    def forget_before(self, cutoff: datetime) -> int:
        """Drop the events handled (`done`) that arrived before ``cutoff``; how many.

        Slack stops retrying an event within minutes, so an old done row recognises no
        more repeats. Events still waiting or claimed are kept whatever their age (they
        are work), and so are failed ones: they are kept for someone to look at."""
        with self._sessions.begin() as session:
            result = cast(
                CursorResult[Any],
                session.execute(
                    delete(SlackInboxEvent).where(
                        SlackInboxEvent.received_at < cutoff,
                        SlackInboxEvent.state == InboxState.DONE.value,
                    )
                ),
            )
            return result.rowcount


def _check_event_id(event_id: str) -> None:
    if not event_id.strip() or len(event_id) > MAX_EVENT_ID_CHARS:
        raise ValueError(f"not a Slack event id: {event_id[:40]!r}")


def _insert_unless_kept(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING: a redelivery in a batch must not undo the rest."""
    if dialect == "postgresql":
        insert_event: Any = postgresql.insert(SlackInboxEvent)
    elif dialect == "sqlite":
        insert_event = sqlite.insert(SlackInboxEvent)
    else:
        raise NotImplementedError(f"no batched Slack inbox for {dialect}")
    return insert_event.on_conflict_do_nothing(index_elements=["event_id"]).returning(
        SlackInboxEvent.event_id
    )


class GroupCommit:
    """The inbox's writer for the ack path: events arriving together share a commit.

    Each request thread hands its event over and waits until the transaction holding
    it has committed, so an event is still acknowledged only once it is stored. While
    one commit is under way (an fsync on PostgreSQL, another process's write lock on
    SQLite) the next events gather, and go in the next transaction together rather
    than each queueing for its own.
    """

    def __init__(self, inbox: SlackInbox, *, max_batch: int = 256) -> None:
        self._inbox = inbox
        self._max_batch = max_batch
        self._waiting: queue.SimpleQueue[_Handover] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._starting = threading.Lock()

    def receive(self, event_id: str, body: str) -> bool:
        """`SlackInbox.receive`, batched with whatever else is being received."""
        _check_event_id(event_id)
        self._start()
        handover = _Handover(event_id, body)
        self._waiting.put(handover)
        handover.done.wait()
        if handover.error is not None:
            raise handover.error
        return handover.kept

    def _start(self) -> None:
        if self._writer is not None:
            return
        with self._starting:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write, name="slack-inbox-writer", daemon=True
                )
                self._writer.start()

    def _write(self) -> None:
        while True:
            batch = [self._waiting.get()]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            try:
                kept = self._inbox.receive_many([(h.event_id, h.body) for h in batch])
            except Exception as error:
                logger.exception("could not store %d Slack event(s)", len(batch))
                for handover in batch:
                    handover.error = error
                    handover.done.set()
                continue
            for handover, was_kept in zip(batch, kept, strict=True):
                handover.kept = was_kept
                handover.done.set()


@dataclass
class _Handover:
    event_id: str
    body: str
    kept: bool = False
    error: Exception | None = None
    done: threading.Event = field(default_factory=threading.Event)


def _claimable(now: datetime) -> Any:
    return or_(
        SlackInboxEvent.state == InboxState.RECEIVED.value,
        and_(
            SlackInboxEvent.state == InboxState.PROCESSING.value,
            SlackInboxEvent.lease_until < now,
        ),
    )
