"""SLA warnings and breaches, told in the ticket's triage thread.

The SLA engine raises each warning and breach once and the ticket service tells the
assignee and the team channel (see ``TicketService._on_sla_alert``). The agents working
the ticket read its triage thread, so each alert is posted there too, through the outbox
(delivered by the worker, once: the outbox key names the ticket, clock and alert). So
that every alert also reaches the team's channel, a warning the service told only the
assignee is broadcast from the thread to the channel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.sla_due import slack_time
from tickets.models import Ticket
from tickets.outbox import enqueue_slack_message
from tickets.sla import SlaAlert


def alert_text(alert: SlaAlert, priority: str) -> str:
    what = alert.kind.value.replace("_", " ")
    due = "" if alert.due_at is None else f" (due {slack_time(alert.due_at)})"
    if alert.breached:
        return f"🔴 SLA breached: {alert.ticket_number} ({priority}) missed its {what} target{due}."
    return (
        f"🟠 SLA warning: {alert.ticket_number} ({priority}) has used 75 % of its {what} time{due}."
    )


def post_in_triage_threads(
    session_factory: sessionmaker[Session], alerts: Sequence[SlaAlert], now: datetime
) -> int:
    """Owe one thread reply per alert on a ticket that has a triage post; how many."""
    numbers = {alert.ticket_number for alert in alerts}
    if not numbers:
        return 0
    posted = 0
    with session_factory.begin() as session:
        threads = {
            number: (channel, ts, priority, assignee)
            for number, channel, ts, priority, assignee in session.execute(
                select(
                    Ticket.number,
                    Ticket.triage_channel,
                    Ticket.triage_ts,
                    Ticket.priority,
                    Ticket.assignee,
                ).where(Ticket.number.in_(numbers))
            )
        }
        for alert in alerts:
            channel, ts, priority, assignee = threads.get(
                alert.ticket_number, (None, None, "", None)
            )
            if not channel or not ts:
                continue
            which = "breach" if alert.breached else "warning"
            enqueue_slack_message(
                session,
                channel=channel,
                thread_ts=ts,
                # The service tells the team channel of breaches and of warnings nobody
                # owns; a warning on an owned ticket went to its assignee only, so the
                # thread reply is also shown in the channel, for the team to see it.
                reply_broadcast=not alert.breached and assignee is not None,
                text=alert_text(alert, priority),
                dedupe_key=f"sla-thread:{alert.ticket_number}:{alert.kind.value}:{which}",
                purpose=f"sla_{which}",
                ticket_number=alert.ticket_number,
                now=now,
            )
            posted += 1
    return posted


def sla_checks_told_in_threads(
    run_checks: Callable[[], list[SlaAlert]],
    session_factory: sessionmaker[Session],
    clock: Callable[[], datetime],
) -> Callable[[], str | None]:
    """The worker's SLA job: the service's checks, then each alert in its triage thread."""

    def job() -> str | None:
        alerts = run_checks()
        if not alerts:
            return None
        threaded = post_in_triage_threads(session_factory, alerts, clock())
        return f"{len(alerts)} SLA alert(s), {threaded} told in triage threads"

    return job
