"""Exactly-once handling of Slack event deliveries.

Slack redelivers an event it did not see acknowledged within 3 seconds, possibly to
another replica. Each handler asks ``first_delivery`` before acting, so a retry never
answers twice or opens a second ticket.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tickets.models import ProcessedEvent, utc_now


def first_delivery(session_factory: sessionmaker[Session], event_id: str) -> bool:
    """True the first time ``event_id`` is seen, False on every redelivery.

    The primary key decides, not a lookup: of two replicas receiving the same event at
    the same moment, exactly one insert succeeds.
    """
    if not event_id.strip():
        raise ValueError("an event id is needed to recognise redeliveries")
    if len(event_id) > 200:
        raise ValueError("event id is longer than 200 characters")
    try:
        with session_factory.begin() as session:
            session.add(ProcessedEvent(event_id=event_id, received_at=utc_now()))
    except IntegrityError:
        return False
    return True


def forget_deliveries_before(session_factory: sessionmaker[Session], cutoff: datetime) -> int:
    """Drop delivery records older than ``cutoff``; Slack stops retrying within minutes.

    Returns how many were dropped.
    """
    with session_factory.begin() as session:
        result = cast(
            CursorResult[Any],
            session.execute(delete(ProcessedEvent).where(ProcessedEvent.received_at < cutoff)),
        )
        return result.rowcount
