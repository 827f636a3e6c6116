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
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tickets.models import SlackInboxEvent, utc_now

logger = logging.getLogger(__name__)

MAX_EVENT_ID_CHARS = 200


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
        self.lease = lease
        self.max_attempts = max_attempts

    def receive(self, event_id: str, body: str) -> bool:
        """Keep a delivered event; False when this event id was delivered before."""
        if not event_id.strip() or len(event_id) > MAX_EVENT_ID_CHARS:
            raise ValueError(f"not a Slack event id: {event_id[:40]!r}")
        try:
            with self._sessions.begin() as session:
                session.add(
                    SlackInboxEvent(
                        event_id=event_id,
                        body=body,
                        state=InboxState.RECEIVED.value,
                        attempts=0,
                        received_at=utc_now(),
                    )
                )
        except IntegrityError:
            return False
        return True

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


def _claimable(now: datetime) -> Any:
    return or_(
        SlackInboxEvent.state == InboxState.RECEIVED.value,
        and_(
            SlackInboxEvent.state == InboxState.PROCESSING.value,
            SlackInboxEvent.lease_until < now,
        ),
    )
