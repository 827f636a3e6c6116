"""The one hook through which the service desk tells people about their tickets.

Every user-visible message a service step causes (a requester told their ticket was
resolved, a team told a ticket was escalated to it, an approver asked to decide) is handed
to a ``NotificationSink`` *inside the transaction that made the change*, as a
``Notification``. The production sink writes it to the outbox table in that same session,
so a rolled-back change notifies nobody and a committed one is never forgotten; the
worker delivers it afterwards. Services never talk to Slack or SMTP themselves.

``RecordingSink`` keeps what committed transactions notified, in memory: what tests and
the CLI without a worker use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.orm import Session


class NotificationChannel(StrEnum):
    """How a notification reaches its recipient."""

    # recipient is a Slack user id (U…, delivered as a DM) or a channel id (C…/G…).
    SLACK = "slack"
    # recipient is an email address.
    EMAIL = "email"


class NotificationKind(StrEnum):
    TICKET_OPENED = "ticket_opened"
    TICKET_ASSIGNED = "ticket_assigned"
    TICKET_ESCALATED = "ticket_escalated"
    PRIORITY_CHANGED = "priority_changed"
    COMMENT_ADDED = "comment_added"
    WAITING_ON_REQUESTER = "waiting_on_requester"
    TICKET_RESOLVED = "ticket_resolved"
    TICKET_REOPENED = "ticket_reopened"
    TICKET_CLOSED = "ticket_closed"
    APPROVAL_REQUESTED = "approval_requested"
    APPROVAL_DECIDED = "approval_decided"
    REQUEST_FULFILLED = "request_fulfilled"
    CHANGE_SCHEDULED = "change_scheduled"
    CHANGE_COMPLETED = "change_completed"
    SLA_WARNING = "sla_warning"
    SLA_BREACHED = "sla_breached"
    SECRET_REDACTED = "secret_redacted"


@dataclass(frozen=True)
class Notification:
    """One message for one recipient, already worded; secrets are redacted before this."""

    kind: NotificationKind
    recipient: str
    text: str
    channel: NotificationChannel = NotificationChannel.SLACK
    ticket_number: str | None = None
    # Email subject; Slack ignores it. Replies thread by the ticket number in it.
    subject: str | None = None
    # Slack: the thread to answer in (the requester's conversation), when known.
    slack_channel: str | None = None
    slack_thread_ts: str | None = None
    # Anything a renderer may use (e.g. ticket status, approval id for buttons).
    detail: dict[str, Any] = field(default_factory=dict)


class NotificationSink(Protocol):
    """Receives notifications inside the caller's transaction.

    ``notify`` must only use ``session`` (no commit, no network): the change and its
    notifications commit or roll back together.
    """

    def notify(self, session: Session, notification: Notification) -> None: ...


_PENDING_KEY = "tier0.pending_notifications"


class RecordingSink:
    """Keeps, in memory, the notifications of transactions that committed.

    A notification raised in a transaction that rolls back is discarded, like an outbox
    row would be.
    """

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def notify(self, session: Session, notification: Notification) -> None:
        pending_key = (_PENDING_KEY, id(self))
        pending: list[Notification] | None = session.info.get(pending_key)
        if pending is None:
            pending = []
            session.info[pending_key] = pending
            # Listeners stay for the session's life: SQLAlchemy forbids removing one from
            # inside its own dispatch, and sessions here live for one transaction anyway.
            if not event.contains(session, "after_commit", self._committed):
                event.listen(session, "after_commit", self._committed)
                event.listen(session, "after_rollback", self._rolled_back)
        pending.append(notification)

    def for_recipient(self, recipient: str) -> list[Notification]:
        return [n for n in self.sent if n.recipient == recipient]

    def of_kind(self, kind: NotificationKind) -> list[Notification]:
        return [n for n in self.sent if n.kind is kind]

    def clear(self) -> None:
        self.sent.clear()

    def _committed(self, session: Session) -> None:
        self.sent.extend(session.info.pop((_PENDING_KEY, id(self)), []))

    def _rolled_back(self, session: Session) -> None:
        session.info.pop((_PENDING_KEY, id(self)), None)


class AlreadyTold:
    """The sink for a change whose caller has told the people concerned itself (the Slack
    front end answers in the threads it is working in): queueing the same news again
    would reach them twice."""

    def notify(self, session: Session, notification: Notification) -> None:
        return None
