"""The background worker put together from the settings: senders, delivery, jobs.

``tier0 worker`` runs it in the foreground; ``tier0 run`` starts it in a thread next to
the bot. Extra jobs (SLA checks, auto-close) are passed in by whoever owns them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.config import BUNDLED_KB_DIR, Settings
from bot.slack.inbox import SlackInbox
from bot.slack.sla_alerts import sla_checks_told_in_threads
from tickets.delivery import (
    InDoubtMail,
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

# How often the worker looks for articles past their review date. Each owner still gets
# at most one reminder a day: the outbox keeps one message per owner and day.
STALE_REVIEW_INTERVAL = 3600.0
# How often the worker forgets Slack events handled longer ago than the retention period.
INBOX_CLEANUP_INTERVAL = 3600.0


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
        in_doubt=InDoubtMail(settings.smtp_in_doubt),
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
            Job(
                "sla checks",
                settings.worker_sla_interval,
                sla_checks_told_in_threads(tickets.run_sla_checks, session_factory, clock),
            ),
            Job("auto-close", settings.worker_auto_close_interval, tickets.auto_close_resolved),
            *stale_review_jobs(settings, session_factory, clock),
            slack_inbox_cleanup_job(settings, session_factory, clock),
            *extra_jobs,
        ]
    )


def slack_inbox_cleanup_job(
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: Callable[[], datetime] = utc_now,
) -> Job:
    """Forget the Slack events handled more than TIER0_SLACK_INBOX_RETENTION_DAYS ago."""
    inbox = SlackInbox(session_factory)
    retention = timedelta(days=settings.slack_inbox_retention_days)

    def forget() -> str | None:
        forgotten = inbox.forget_before(clock() - retention)
        return f"forgot {forgotten} handled Slack events" if forgotten else None

    return Job("slack inbox cleanup", INBOX_CLEANUP_INTERVAL, forget)


def stale_review_jobs(
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: Callable[[], datetime] = utc_now,
) -> list[Job]:
    """With Slack or mail configured, remind owners of articles past `review_by`, once a
    day each: a Slack DM to an owner given as a Slack id, a mail to one given as an email
    address.

    The bundled sample articles are nobody's: no reminders for them."""
    by_slack, by_email = bool(settings.slack_bot_token), smtp_settings(settings) is not None
    if not (by_slack or by_email):
        return []
    if settings.resolved_kb_dir.resolve() == BUNDLED_KB_DIR.resolve():
        return []

    def remind() -> str | None:
        from knowledge.articles import load_articles
        from knowledge.stale import enqueue_review_reminders, stale_articles

        today = clock().date()
        # A broken article fails the job (logged) until it is fixed; kb sync names it.
        stale = stale_articles(load_articles(settings.resolved_kb_dir), today)
        notices = enqueue_review_reminders(
            session_factory, stale, today, by_slack=by_slack, by_email=by_email
        )
        for owner, ids in notices.not_reachable.items():
            logger.warning("stale articles %s: no channel reaches their owner %s", ids, owner)
        if notices.no_owner:
            logger.warning("stale articles without an owner: %s", notices.no_owner)
        return f"{len(stale)} stale articles" if stale else None

    return [Job("stale article reminders", STALE_REVIEW_INTERVAL, remind)]


def mail_desk(settings: Settings, session_factory: sessionmaker[Session]) -> MailDesk:
    """What `tier0 mail` hands each mail to: tickets and comments, notified by outbox."""
    return MailDesk(TicketService(session_factory, notifications=OutboxSink()), session_factory)
