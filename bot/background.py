"""The background worker put together from the settings: senders, delivery, jobs.

``tier0 worker`` runs it in the foreground; ``tier0 run`` starts it in a thread next to
the bot. Extra jobs (SLA checks, auto-close) are passed in by whoever owns them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from tickets.delivery import (
    OutboxDelivery,
    Sender,
    SlackSender,
    SmtpSender,
    SmtpSettings,
    make_slack_client,
)
from tickets.mail import MailDesk
from tickets.models import utc_now
from tickets.outbox import OutboxChannel
from tickets.outbox_sink import OutboxSink
from tickets.service import TicketService
from tickets.worker import Job, Scheduler, delivery_job

logger = logging.getLogger(__name__)


def smtp_settings(settings: Settings) -> SmtpSettings | None:
    if not settings.smtp_host:
        return None
    return SmtpSettings(
        host=settings.smtp_host,
        port=settings.smtp_port,
        from_address=settings.smtp_from,
        username=settings.smtp_username,
        password=settings.smtp_password,
        starttls=settings.smtp_starttls,
    )


def senders_from_settings(settings: Settings) -> dict[OutboxChannel, Sender]:
    """A sender for each channel the settings make reachable (Slack token, SMTP host)."""
    senders: dict[OutboxChannel, Sender] = {}
    if settings.slack_bot_token:
        senders[OutboxChannel.SLACK] = SlackSender(
            make_slack_client(settings.slack_bot_token, settings.slack_api_url)
        )
    mail = smtp_settings(settings)
    if mail is not None:
        senders[OutboxChannel.EMAIL] = SmtpSender(mail)
    return senders


def missing_channels(senders: Iterable[OutboxChannel]) -> list[str]:
    """What the settings lack for the channels without a sender, in words."""
    notes = []
    if OutboxChannel.SLACK not in senders:
        notes.append("Slack notifications wait in the outbox: SLACK_BOT_TOKEN is not set")
    if OutboxChannel.EMAIL not in senders:
        notes.append("mail notifications wait in the outbox: TIER0_SMTP_HOST is not set")
    return notes


def build_scheduler(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    extra_jobs: Iterable[Job] = (),
    clock: Callable[[], datetime] = utc_now,
) -> Scheduler:
    """The worker's scheduler: outbox delivery, SLA checks, auto-close, ``extra_jobs``."""
    delivery = OutboxDelivery(session_factory, senders_from_settings(settings), clock=clock)
    for note in missing_channels(delivery.channels):
        logger.warning(note)
    # The jobs' own notifications (SLA warnings, closures) go through the outbox too.
    tickets = TicketService(session_factory, clock=clock, notifications=OutboxSink(clock=clock))
    return Scheduler(
        [
            delivery_job(delivery, settings.worker_delivery_interval),
            Job("sla checks", settings.worker_sla_interval, tickets.run_sla_checks),
            Job("auto-close", settings.worker_auto_close_interval, tickets.auto_close_resolved),
            *extra_jobs,
        ]
    )


def mail_desk(settings: Settings, session_factory: sessionmaker[Session]) -> MailDesk:
    """What `tier0 mail` hands each mail to: tickets and comments, notified by outbox."""
    return MailDesk(TicketService(session_factory, notifications=OutboxSink()), session_factory)
