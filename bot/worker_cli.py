"""`tier0 worker`, `tier0 mail` and `tier0 outbox`: the background side of tier0."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from bot.cli_errors import fail
from bot.config import Settings

console = Console()
outbox_app = typer.Typer(help="The notification outbox.", no_args_is_help=True)


def load_settings() -> Settings:
    """The settings, or a one-line error naming the variable that is wrong."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        fail(f"invalid setting: {problems}")


def open_store(settings: Settings) -> sessionmaker[Session]:
    """The migrated ticket store, or a one-line error and exit."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, OperationalError

    from tickets.db import create_store_engine, make_session_factory, upgrade_schema

    try:
        engine = create_store_engine(settings.resolved_database_url)
        upgrade_schema(engine)
    except ArgumentError as error:
        fail(f"TIER0_DATABASE_URL is not a database URL: {error}")
    except OperationalError as error:
        where = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        reason = str(error.orig or error).strip().splitlines()[0]
        fail(f"cannot open the ticket store at {where}: {reason}")
    return make_session_factory(engine)


def _log_to_console() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")


def _stop_on_sigterm(stop: threading.Event) -> None:
    # Ctrl-C raises KeyboardInterrupt; a service manager sends SIGTERM instead.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())


def worker() -> None:
    """Run the background jobs: notification delivery (and SLA checks, auto-close)."""
    from bot.background import build_scheduler

    _log_to_console()
    settings = load_settings()
    scheduler = build_scheduler(settings, open_store(settings))
    console.print(
        "tier0 worker running: " + ", ".join(job.name for job in scheduler.jobs) + " (Ctrl-C stops)"
    )
    stopping = threading.Event()
    _stop_on_sigterm(stopping)
    thread = scheduler.start_in_background()
    with contextlib.suppress(KeyboardInterrupt):
        while thread.is_alive() and not stopping.wait(0.5):
            pass
    scheduler.stop()


def mail(
    port: Annotated[int | None, typer.Option(help="Port to listen on (TIER0_MAIL_PORT).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
) -> None:
    """Receive mail over SMTP: new mail opens tickets, replies become comments."""
    from bot.background import mail_desk
    from tickets.mail import make_mail_server

    _log_to_console()
    settings = load_settings()
    listen_port = port if port is not None else settings.mail_port
    if not 0 < listen_port < 65536:
        fail(f"--port must be between 1 and 65535, not {listen_port}")
    listen_host = host or settings.mail_host
    server = make_mail_server(
        mail_desk(settings, open_store(settings)).receive,
        host=listen_host,
        port=listen_port,
        max_bytes=settings.mail_max_bytes,
    )
    try:
        server.start()
    except (OSError, RuntimeError) as error:
        fail(f"cannot listen for mail on {listen_host}:{listen_port}: {error}")
    console.print(f"tier0 receiving mail on {listen_host}:{listen_port} (Ctrl-C stops)")
    stopping = threading.Event()
    _stop_on_sigterm(stopping)
    with contextlib.suppress(KeyboardInterrupt):
        while not stopping.wait(0.5):
            pass
    server.stop()


@outbox_app.command("status")
def outbox_status(
    show: Annotated[int, typer.Option(help="How many undelivered messages to list.")] = 20,
) -> None:
    """How many notifications are pending, being sent, delivered or given up."""
    from tickets.outbox import OutboxStatus, list_messages, outbox_counts

    session_factory = open_store(load_settings())
    counts = outbox_counts(session_factory)
    console.print(
        "  ".join(f"{status.value}: [bold]{counts[status]}[/bold]" for status in OutboxStatus)
    )
    waiting = [
        entry
        for status in (OutboxStatus.DEAD, OutboxStatus.PENDING, OutboxStatus.SENDING)
        for entry in list_messages(session_factory, status=status, limit=show)
    ][:show]
    if not waiting:
        return
    table = Table("id", "status", "channel", "ticket", "attempts", "next attempt", "last error")
    for entry in waiting:
        table.add_row(
            str(entry.id),
            entry.status.value,
            entry.channel.value,
            entry.ticket_number or "",
            str(entry.attempts),
            entry.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S"),
            escape((entry.last_error or "")[:80]),
        )
    console.print(table)


@outbox_app.command("retry")
def outbox_retry() -> None:
    """Queue the given-up (dead) notifications again, once their cause is fixed."""
    from tickets.models import utc_now
    from tickets.outbox import retry_dead

    count = retry_dead(open_store(load_settings()), now=utc_now())
    console.print(f"{count} notification(s) queued again.")


def register(app: typer.Typer) -> None:
    app.command()(worker)
    app.command()(mail)
    app.add_typer(outbox_app, name="outbox")
