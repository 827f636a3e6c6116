"""The production ``NotificationSink``: each notification becomes an outbox message.

The ticket services hand their notifications to the sink inside the transaction of the
change (see ``tickets.notifications``); ``OutboxSink.notify`` adds the outbox row to that
same session, so the change and its notification are committed together, and the worker
delivers the message afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tickets.models import utc_now
from tickets.notifications import Notification, NotificationChannel
from tickets.outbox import enqueue_email, enqueue_slack_message

# Turns a notification into Slack Block Kit blocks (the Slack front end owns the look);
# None means plain text.
SlackRenderer = Callable[[Notification], Sequence[Mapping[str, Any]] | None]


class OutboxSink:
    """Writes every notification to the outbox in the caller's session."""

    def __init__(
        self,
        *,
        slack_renderer: SlackRenderer | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._slack_renderer = slack_renderer
        self._clock = clock

    def notify(self, session: Session, notification: Notification) -> None:
        # A notification is written once, by the transaction of its change; a key of its
        # own is enough unless the caller names one (to merge repeats of one event).
        named_key = str(notification.detail.get("dedupe_key") or "")
        dedupe_key = named_key or ":".join(
            (notification.kind.value, notification.ticket_number or "-", uuid.uuid4().hex)
        )
        fresh_key = not named_key
        if notification.channel is NotificationChannel.EMAIL:
            enqueue_email(
                session,
                to=notification.recipient,
                subject=email_subject(notification),
                body=email_body(notification),
                dedupe_key=dedupe_key,
                ticket_number=notification.ticket_number,
                purpose=notification.kind.value,
                now=self._clock(),
                fresh_key=fresh_key,
            )
            return
        blocks = self._slack_renderer(notification) if self._slack_renderer else None
        enqueue_slack_message(
            session,
            channel=notification.slack_channel or notification.recipient,
            # Notification text is plain: what people wrote (a comment, a mail) must reach
            # Slack as text, never as a <!channel> ping or a disguised link.
            text=escape_slack_text(notification.text),
            blocks=blocks,
            thread_ts=notification.slack_thread_ts if notification.slack_channel else None,
            dedupe_key=dedupe_key,
            ticket_number=notification.ticket_number,
            purpose=notification.kind.value,
            now=self._clock(),
            fresh_key=fresh_key,
        )


def escape_slack_text(text: str) -> str:
    """Escape the three characters Slack reads as markup (``<``, ``>``, ``&``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def email_subject(notification: Notification) -> str:
    """The subject; it always names the ticket, which is how replies find their way back."""
    subject = notification.subject or notification.kind.value.replace("_", " ").capitalize()
    number = notification.ticket_number
    if number and number not in subject:
        subject = f"[{number}] {subject}"
    return subject


def email_body(notification: Notification) -> str:
    if not notification.ticket_number:
        return notification.text
    return (
        f"{notification.text}\n\n"
        f"-- \nReply to this mail to add a comment to {notification.ticket_number}.\n"
        "tier0 IT service desk"
    )
