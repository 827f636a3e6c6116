"""The notification hook: what a transaction notifies is kept only if it commits."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tickets.notifications import Notification, NotificationKind, RecordingSink


def _resolved_for(recipient: str) -> Notification:
    return Notification(
        kind=NotificationKind.TICKET_RESOLVED,
        recipient=recipient,
        text="T-1001 is resolved.",
        ticket_number="T-1001",
    )


def test_a_committed_transaction_delivers_its_notifications(
    session_factory: sessionmaker[Session],
) -> None:
    sink = RecordingSink()
    with session_factory.begin() as session:
        sink.notify(session, _resolved_for("U1"))
        assert sink.sent == []  # nothing leaves before the commit
    assert sink.sent == [_resolved_for("U1")]


def test_a_rolled_back_transaction_notifies_nobody(session_factory: sessionmaker[Session]) -> None:
    sink = RecordingSink()
    with pytest.raises(RuntimeError), session_factory.begin() as session:
        sink.notify(session, _resolved_for("U1"))
        raise RuntimeError("the change failed")
    with session_factory.begin() as session:
        sink.notify(session, _resolved_for("U2"))
    assert [n.recipient for n in sink.sent] == ["U2"]
