"""`tier0` commands for the service desk: the store's schema, tickets, the catalog,
approvals, people, the SLA check and the metrics report.

Every command acts as a person (``--as U123``, default ``$TIER0_USER`` or the login name)
and goes through the same service layer and access rules as Slack.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bot.cli_errors import fail, parse_period
from bot.config import Settings

console = Console()

db_app = typer.Typer(help="The ticket store's schema and desk configuration.", no_args_is_help=True)
ticket_app = typer.Typer(help="Work tickets.", no_args_is_help=True)
catalog_app = typer.Typer(help="The service catalog.", no_args_is_help=True)
user_app = typer.Typer(help="People, their roles and teams.", no_args_is_help=True)
change_app = typer.Typer(help="Change requests.", no_args_is_help=True)
sla_app = typer.Typer(help="SLA clocks.", no_args_is_help=True)

T = TypeVar("T")

ActingUser = Annotated[
    str,
    typer.Option(
        "--as",
        help="Who is acting (Slack id or login); default $TIER0_USER or your login name.",
        show_default=False,
    ),
]


def _default_user() -> str:
    return os.environ.get("TIER0_USER") or getpass.getuser()


@contextmanager
def _store(*, migrate: bool = False) -> Iterator[Any]:
    """A session factory on the configured store; refuses an out-of-date schema."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, OperationalError

    from tickets.db import create_store_engine, current_revision, make_session_factory

    settings = Settings()
    url = settings.resolved_database_url
    try:
        engine = create_store_engine(url)
    except ArgumentError as error:
        fail(f"TIER0_DATABASE_URL is not a database URL: {error}")
    try:
        if not migrate:
            revision = current_revision(engine)
            if revision != _head_revision():
                fail(
                    f"the ticket store is at revision {revision or 'none'}, not "
                    f"{_head_revision()}: run `tier0 db upgrade` first"
                )
        yield engine, make_session_factory(engine)
    except OperationalError as error:
        where = make_url(url).render_as_string(hide_password=True)
        reason = str(error.orig or error).strip().splitlines()[0]
        fail(f"cannot open the ticket store at {where}: {reason}")
    finally:
        engine.dispose()


def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    from tickets.db import MIGRATIONS_DIR

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head() or ""


def _run(action: Callable[[], T]) -> T:
    """Turn domain errors into one-line messages and a non-zero exit."""
    from tickets.errors import TicketError
    from tickets.seed import DeskConfigError

    try:
        return action()
    except TicketError as error:
        fail(error.message)
    except (DeskConfigError, ValueError) as error:
        fail(str(error))


def _services(session_factory: Any) -> tuple[Any, Any]:
    from tickets.catalog import CatalogService
    from tickets.service import TicketService

    # Roles are always checked here: the CLI vouches for nobody.
    tickets = TicketService(session_factory, enforce_roles=True)
    return tickets, CatalogService(tickets)


# -- db -------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    seed: Annotated[
        bool, typer.Option(help="Load the bundled desk configuration if the store has none.")
    ] = True,
) -> None:
    """Migrate the ticket store up (to the newest schema by default)."""
    from tickets.db import current_revision, upgrade_schema
    from tickets.seed import ensure_desk_config

    with _store(migrate=True) as (engine, session_factory):
        before = current_revision(engine)
        _run(lambda: upgrade_schema(engine, revision))
        after = current_revision(engine)
        console.print(f"schema: {before or 'empty'} → {after}")
        if seed and after == _head_revision():
            summary = _run(lambda: ensure_desk_config(session_factory))
            if summary is not None:
                console.print(
                    f"loaded the bundled desk configuration: {summary.teams} teams, "
                    f"{summary.sla_policies} SLA policies, {summary.catalog_items} catalog items"
                )


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision ('base' drops everything).")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: downgrading drops data.")] = False,
) -> None:
    """Migrate the ticket store down to REVISION; tables of later revisions are dropped."""
    from tickets.db import current_revision, downgrade_schema

    if not yes:
        fail("downgrading drops the tables (and data) of later revisions; add --yes to go on")
    with _store(migrate=True) as (engine, _):
        before = current_revision(engine)
        _run(lambda: downgrade_schema(engine, revision))
        console.print(f"schema: {before or 'empty'} → {current_revision(engine) or 'empty'}")


@db_app.command("load")
def db_load(
    path: Annotated[Path, typer.Argument(help="A desk configuration YAML file.")],
) -> None:
    """Load teams, calendars, routing, SLA policies and catalog items from a YAML file."""
    from tickets.seed import load_desk_config

    with _store() as (_, session_factory):
        summary = _run(lambda: load_desk_config(session_factory, path))
    console.print(
        f"loaded {summary.calendars} calendars, {summary.teams} teams, "
        f"{summary.routing_rules} routing rules, {summary.sla_policies} SLA policies, "
        f"{summary.catalog_items} catalog items"
    )


# -- users ------------------------------------------------------------------------------


@user_app.command("add")
def user_add(
    handle: Annotated[str, typer.Argument(help="Slack user id (U…) or login.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    email: Annotated[str | None, typer.Option(help="Email address.")] = None,
    role: Annotated[
        list[str] | None, typer.Option(help="employee, agent, editor or admin (repeatable).")
    ] = None,
    team: Annotated[str | None, typer.Option(help="Team name (agents).")] = None,
    manager: Annotated[str | None, typer.Option(help="Manager's handle.")] = None,
    as_user: ActingUser = "",
) -> None:
    """Add or update a person (admins only, once any admin exists)."""
    from tickets.directory import Directory

    with _store() as (_, session_factory):
        directory = Directory(session_factory)
        _require_admin_once_there_is_one(directory, as_user or _default_user())
        user = _run(
            lambda: directory.register_user(
                handle,
                name=name,
                email=email,
                roles=role or ["employee"],
                team=team,
                manager=manager,
            )
        )
    console.print(
        f"{escape(user.handle)}: {escape(user.name)}, roles {', '.join(sorted(user.roles))}"
        + (f", team {escape(user.team)}" if user.team else "")
    )


def _require_admin_once_there_is_one(directory: Any, acting: str) -> None:
    from tickets.models import Role

    users = directory.users()
    admins = [u for u in users if Role.ADMIN in u.roles]
    # The very first admin has to come from somewhere: whoever runs the CLI on the
    # server, while the store has no admin yet.
    if admins and acting not in {u.handle for u in admins}:
        fail("only admins change people's roles and teams")


@user_app.command("list")
def user_list() -> None:
    """Everyone tier0 knows."""
    from tickets.directory import Directory

    with _store() as (_, session_factory):
        users = Directory(session_factory).users()
    table = Table("handle", "name", "email", "roles", "team", "manager")
    for user in users:
        table.add_row(
            *(escape(v or "") for v in (user.handle, user.name, user.email)),
            ", ".join(sorted(user.roles)),
            escape(user.team or ""),
            escape(user.manager or ""),
        )
    console.print(table)


# -- tickets -----------------------------------------------------------------------------


@ticket_app.command("list")
def ticket_list(
    as_user: ActingUser = "",
    team: Annotated[str | None, typer.Option(help="A team's queue (agents).")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only tickets assigned to me.")] = False,
    closed: Annotated[bool, typer.Option("--all", help="Include resolved and closed.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The tickets you may see: your team's queue, or your own and your reports'."""
    acting = as_user or _default_user()
    with _store() as (_, session_factory):
        tickets, _ = _services(session_factory)
        rows = _run(
            lambda: tickets.queue(
                as_user=acting,
                team=team,
                assignee=acting if mine else None,
                include_closed=closed,
                limit=limit,
            )
        )
    if as_json:
        print(json.dumps([_ticket_json(t) for t in rows], indent=2))
        return
    if not rows:
        console.print("No tickets.")
        return
    table = Table("number", "pri", "status", "type", "team", "assignee", "requester", "title")
    for t in rows:
        table.add_row(
            t.number,
            t.priority,
            t.status.value,
            t.type.value,
            escape(t.team or ""),
            escape(t.assignee or ""),
            escape(t.requester),
            escape(t.title),
        )
    console.print(table)


@ticket_app.command("show")
def ticket_show(
    number: Annotated[str, typer.Argument(help="Ticket number, e.g. T-1001.")],
    as_user: ActingUser = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A ticket with its conversation, SLA clocks and history."""
    acting = as_user or _default_user()
    with _store() as (_, session_factory):
        tickets, _ = _services(session_factory)
        ticket = _run(lambda: tickets.view(number, as_user=acting))
        comments = tickets.comments(number, as_user=acting)
        clocks = tickets.sla(number, as_user=acting)
        history = tickets.history(number, as_user=acting)
    if as_json:
        data = _ticket_json(ticket)
        data["comments"] = [
            {
                "author": c.author,
                "body": c.body,
                "internal": c.internal,
                "at": c.created_at.isoformat(),
            }
            for c in comments
        ]
        data["sla"] = [
            {
                "clock": c.kind.value,
                "target_minutes": c.target_minutes,
                "used_minutes": c.consumed_minutes,
                "due_at": None if c.due_at is None else c.due_at.isoformat(),
                "paused": c.paused,
                "met": c.met,
                "breached": c.breached,
            }
            for c in clocks
        ]
        print(json.dumps(data, indent=2))
        return
    console.print(
        f"[bold]{ticket.number}[/bold] {escape(ticket.title)}\n"
        f"{ticket.type.value} · {ticket.priority} · {ticket.status.value} · "
        f"{escape(ticket.team or 'no team')} ({ticket.tier}) · "
        f"assignee {escape(ticket.assignee or '—')} · requester {escape(ticket.requester)}"
    )
    if ticket.description:
        console.print(escape(ticket.description))
    if ticket.approval_state is not None:
        console.print(f"approval: {ticket.approval_state.value}")
    if ticket.change_state is not None:
        console.print(f"change: {ticket.change_state}")
    if ticket.resolution:
        console.print(f"[green]resolution:[/green] {escape(ticket.resolution)}")
    for clock in clocks:
        state = (
            "paused"
            if clock.paused
            else ("met" if clock.met else "missed")
            if clock.met is not None
            else ("BREACHED" if clock.breached else f"due {clock.due_at:%Y-%m-%d %H:%M} UTC")
        )
        console.print(
            f"SLA {clock.kind.value.replace('_', ' ')}: {clock.consumed_minutes:.0f}/"
            f"{clock.target_minutes} working minutes, {state}"
        )
    for comment in comments:
        tag = " [yellow](internal)[/yellow]" if comment.internal else ""
        console.print(
            f"[dim]{comment.created_at:%Y-%m-%d %H:%M}[/dim] {escape(comment.author)}{tag}: "
            f"{escape(comment.body)}"
        )
    table = Table("when", "who", "what", "from → to")
    for event in history:
        moved = (
            f"{event.from_status.value if event.from_status else '—'} → {event.to_status.value}"
            if event.to_status
            else ""
        )
        table.add_row(f"{event.created_at:%Y-%m-%d %H:%M}", escape(event.actor), event.kind, moved)
    console.print(table)


@ticket_app.command("open")
def ticket_open(
    title: Annotated[str, typer.Argument(help="What is wrong, in a few words.")],
    description: Annotated[str, typer.Option(help="More detail.")] = "",
    ticket_type: Annotated[
        str, typer.Option("--type", help="incident, service_request, problem or change.")
    ] = "incident",
    impact: Annotated[str | None, typer.Option(help="high, medium or low.")] = None,
    urgency: Annotated[str | None, typer.Option(help="high, medium or low.")] = None,
    category: Annotated[str, typer.Option(help="Category (routes to a team).")] = "general",
    as_user: ActingUser = "",
) -> None:
    """Open a ticket as yourself."""
    acting = as_user or _default_user()
    with _store() as (_, session_factory):
        tickets, _ = _services(session_factory)
        ticket = _run(
            lambda: tickets.open_ticket(
                requester=acting,
                title=title,
                description=description,
                ticket_type=ticket_type,
                impact=impact,
                urgency=urgency,
                category=category,
                source="cli",
            )
        )
    console.print(f"opened {ticket.number} ({ticket.priority}, {escape(ticket.team or 'no team')})")


def _ticket_step(verb: str, act: Callable[[Any], Any]) -> None:
    with _store() as (_, session_factory):
        tickets, _ = _services(session_factory)
        ticket = _run(lambda: act(tickets))
    console.print(
        f"{ticket.number} {verb}: {ticket.status.value}, {ticket.priority}, "
        f"{escape(ticket.team or 'no team')}, assignee {escape(ticket.assignee or '—')}"
    )


@ticket_app.command("claim")
def ticket_claim(number: str, as_user: ActingUser = "") -> None:
    """Take a ticket from your team's queue."""
    _ticket_step("claimed", lambda t: t.claim(number, as_user or _default_user()))


@ticket_app.command("assign")
def ticket_assign(
    number: str,
    agent: Annotated[str, typer.Argument(help="The agent to give it to.")],
    as_user: ActingUser = "",
) -> None:
    """Give a ticket to an agent."""
    _ticket_step("assigned", lambda t: t.assign(number, agent, as_user=as_user or _default_user()))


@ticket_app.command("escalate")
def ticket_escalate(
    number: str,
    reason: Annotated[str, typer.Option(help="Why the next tier is needed.")],
    as_user: ActingUser = "",
) -> None:
    """Hand a ticket to the next tier."""
    _ticket_step(
        "escalated", lambda t: t.escalate(number, as_user=as_user or _default_user(), reason=reason)
    )


@ticket_app.command("priority")
def ticket_priority(
    number: str,
    priority: Annotated[str | None, typer.Argument(help="P1 to P4.")] = None,
    impact: Annotated[str | None, typer.Option(help="high, medium or low.")] = None,
    urgency: Annotated[str | None, typer.Option(help="high, medium or low.")] = None,
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    as_user: ActingUser = "",
) -> None:
    """Change a ticket's priority (or its impact and urgency)."""
    _ticket_step(
        "reprioritised",
        lambda t: t.change_priority(
            number,
            as_user=as_user or _default_user(),
            priority=priority,
            impact=impact,
            urgency=urgency,
            reason=reason,
        ),
    )


@ticket_app.command("comment")
def ticket_comment(
    number: str,
    text: Annotated[str, typer.Argument(help="The comment.")],
    internal: Annotated[bool, typer.Option("--internal", help="For agents only.")] = False,
    as_user: ActingUser = "",
) -> None:
    """Comment on a ticket (public, or --internal for agents)."""
    _ticket_step(
        "commented",
        lambda t: t.comment(number, text, as_user=as_user or _default_user(), internal=internal),
    )


@ticket_app.command("hold")
def ticket_hold(
    number: str,
    question: Annotated[str, typer.Argument(help="What you need from the requester.")],
    as_user: ActingUser = "",
) -> None:
    """Ask the requester something; the ticket and its SLA wait for the answer."""
    _ticket_step(
        "on hold", lambda t: t.await_requester(number, question, as_user=as_user or _default_user())
    )


@ticket_app.command("resolve")
def ticket_resolve(
    number: str,
    note: Annotated[str, typer.Argument(help="What fixed it (the requester reads this).")],
    as_user: ActingUser = "",
) -> None:
    """Resolve a ticket with a note."""
    _ticket_step("resolved", lambda t: t.resolve(number, as_user or _default_user(), note))


@ticket_app.command("reopen")
def ticket_reopen(
    number: str,
    reason: Annotated[str, typer.Argument(help="What is still wrong.")],
    as_user: ActingUser = "",
) -> None:
    """Reopen a resolved ticket."""
    _ticket_step(
        "reopened", lambda t: t.reopen(number, as_user=as_user or _default_user(), reason=reason)
    )


@ticket_app.command("close")
def ticket_close(number: str, as_user: ActingUser = "") -> None:
    """Close a resolved ticket."""
    _ticket_step("closed", lambda t: t.close(number, as_user=as_user or _default_user()))


@ticket_app.command("link-problem")
def ticket_link_problem(
    number: str,
    problem: Annotated[str, typer.Argument(help="The problem ticket.")],
    as_user: ActingUser = "",
) -> None:
    """Group an incident under a problem."""
    _ticket_step(
        "linked", lambda t: t.link_to_problem(number, problem, as_user=as_user or _default_user())
    )


@ticket_app.command("rate")
def ticket_rate(
    number: str,
    score: Annotated[int, typer.Argument(help="1 (very unhappy) to 5 (very happy).")],
    comment: Annotated[str | None, typer.Option(help="Anything to add.")] = None,
    as_user: ActingUser = "",
) -> None:
    """Rate a resolved ticket."""
    with _store() as (_, session_factory):
        tickets, _ = _services(session_factory)
        _run(
            lambda: tickets.rate(number, score, as_user=as_user or _default_user(), comment=comment)
        )
    console.print("Thank you for the rating.")


# -- catalog and approvals ------------------------------------------------------------------


@catalog_app.command("list")
def catalog_list() -> None:
    """What can be requested."""
    with _store() as (_, session_factory):
        _, catalog = _services(session_factory)
        items = catalog.items()
    table = Table("key", "name", "approval", "team", "fields")
    for item in items:
        table.add_row(
            item.key,
            escape(item.name),
            ", ".join(item.approvers) or "none",
            escape(item.team),
            ", ".join(f"{f.name}{'*' if f.required else ''}" for f in item.fields),
        )
    console.print(table)


_FIELD = re.compile(r"([A-Za-z0-9_-]+)=(.*)", re.DOTALL)


@catalog_app.command("request")
def catalog_request(
    key: Annotated[str, typer.Argument(help="The catalog item's key (see `catalog list`).")],
    field: Annotated[
        list[str] | None, typer.Option("--field", "-f", help="name=value (repeatable).")
    ] = None,
    as_user: ActingUser = "",
) -> None:
    """Request a catalog item."""
    answers: dict[str, str] = {}
    for pair in field or []:
        match = _FIELD.fullmatch(pair)
        if match is None:
            fail(f"--field takes name=value, not {pair!r}")
        answers[match.group(1)] = match.group(2)
    with _store() as (_, session_factory):
        _, catalog = _services(session_factory)
        ticket = _run(
            lambda: catalog.request(key, as_user=as_user or _default_user(), answers=answers)
        )
    waiting = " (waiting for approval)" if ticket.approval_state is not None else ""
    console.print(f"requested: {ticket.number}{waiting}")


def approve(
    number: Annotated[str, typer.Argument(help="The ticket waiting for your approval.")],
    comment: Annotated[str | None, typer.Option(help="A note for the requester.")] = None,
    as_user: ActingUser = "",
) -> None:
    """Approve a request or change waiting for you."""
    _decide(number, approve=True, comment=comment, as_user=as_user)


def reject(
    number: Annotated[str, typer.Argument(help="The ticket waiting for your approval.")],
    comment: Annotated[str, typer.Option(help="Why (the requester reads it).")],
    as_user: ActingUser = "",
) -> None:
    """Reject a request or change waiting for you."""
    _decide(number, approve=False, comment=comment, as_user=as_user)


def _decide(number: str, *, approve: bool, comment: str | None, as_user: str) -> None:
    with _store() as (_, session_factory):
        _, catalog = _services(session_factory)
        ticket = _run(
            lambda: catalog.decide(
                number, as_user=as_user or _default_user(), approve=approve, comment=comment
            )
        )
    state = ticket.approval_state.value if ticket.approval_state else "decided"
    console.print(f"{ticket.number}: {state}")


def approvals(as_user: ActingUser = "") -> None:
    """Approvals waiting for you."""
    with _store() as (_, session_factory):
        _, catalog = _services(session_factory)
        waiting = catalog.pending_approvals(as_user=as_user or _default_user())
    if not waiting:
        console.print("Nothing is waiting for your approval.")
    for approval in waiting:
        console.print(
            f"{approval.ticket_number} from {escape(approval.requester)}: "
            f"{escape(approval.ticket_title)}"
        )


# -- changes ------------------------------------------------------------------------------


@change_app.command("request")
def change_request(
    title: str,
    approver: Annotated[list[str], typer.Option(help="Who approves (repeatable).")],
    description: Annotated[str, typer.Option(help="What changes and how to back out.")] = "",
    team: Annotated[str | None, typer.Option(help="The team that implements it.")] = None,
    as_user: ActingUser = "",
) -> None:
    """Propose a change; it waits for its approvers."""
    with _store() as (_, session_factory):
        _, catalog = _services(session_factory)
        ticket = _run(
            lambda: catalog.request_change(
                as_user=as_user or _default_user(),
                title=title,
                description=description,
                approvers=approver,
                team=team,
            )
        )
    console.print(f"change {ticket.number} waits for approval")


@change_app.command("schedule")
def change_schedule(
    number: str,
    start: Annotated[str, typer.Option(help="Window start, ISO 8601 (UTC if no zone).")],
    end: Annotated[str, typer.Option(help="Window end, ISO 8601 (UTC if no zone).")],
    as_user: ActingUser = "",
) -> None:
    """Schedule an approved change."""
    window = (_instant(start), _instant(end))
    with _store() as (_, session_factory):
        _, catalog = _services(session_factory)
        ticket = _run(
            lambda: catalog.schedule_change(
                number, as_user=as_user or _default_user(), start=window[0], end=window[1]
            )
        )
    console.print(f"change {ticket.number} scheduled")


@change_app.command("complete")
def change_complete(
    number: str,
    note: Annotated[str, typer.Argument(help="What was done, or what failed.")],
    failed: Annotated[
        bool, typer.Option("--failed", help="It failed (and was backed out).")
    ] = False,
    as_user: ActingUser = "",
) -> None:
    """Record a scheduled change as implemented (or --failed)."""
    with _store() as (_, session_factory):
        _, catalog = _services(session_factory)
        ticket = _run(
            lambda: catalog.complete_change(
                number, as_user=as_user or _default_user(), succeeded=not failed, note=note
            )
        )
    console.print(f"change {ticket.number}: {ticket.change_state}")


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"{text!r} is not a date and time like 2026-12-01T20:00")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- SLA, report, export -------------------------------------------------------------------


@sla_app.command("check")
def sla_check() -> None:
    """Raise SLA warnings and breaches that are due now (the worker does this on a timer)."""
    with _store() as (_, session_factory):
        tickets, _ = _services(session_factory)
        alerts = tickets.run_sla_checks()
    for alert in alerts:
        what = "breached" if alert.breached else "warning"
        console.print(f"{alert.ticket_number}: {alert.kind.value.replace('_', ' ')} {what}")
    console.print(f"{len(alerts)} alerts")


def report(
    since: Annotated[str, typer.Option(help="How far back: 30d, 8w, 12h.")] = "30d",
    by: Annotated[str, typer.Option(help="Group by: none, team, category or week.")] = "none",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Deflection (and verified deflection), response and resolution times, SLA
    compliance, reopen rate, backlog and CSAT."""
    from tickets.metrics import GroupBy, desk_report

    try:
        group_by = GroupBy(by.strip().lower())
    except ValueError:
        fail(f"--by takes none, team, category or week, not {by!r}")
    until = datetime.now(UTC)
    start = until - parse_period(since)
    with _store() as (_, session_factory):
        result = _run(
            lambda: desk_report(session_factory, since=start, until=until, group_by=group_by)
        )
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
        return
    table = Table(
        "group",
        "questions",
        "deflection",
        "verified",
        "opened",
        "1st resp h",
        "resolved",
        "MTTR h",
        "SLA",
        "reopen",
        "backlog",
        "CSAT",
        title=f"Service desk, {start:%Y-%m-%d} → {until:%Y-%m-%d}",
    )
    for row in result.rows:
        table.add_row(
            escape(row.group),
            str(row.questions),
            _percent(row.deflection_rate),
            _percent(row.verified_deflection_rate),
            str(row.tickets_opened),
            _number(row.first_response_hours),
            str(row.resolved),
            _number(row.mttr_hours),
            _percent(row.sla_compliance),
            _percent(row.reopen_rate),
            str(row.backlog),
            "—" if row.csat_average is None else f"{row.csat_average:.1f}/5 ({row.csat_responses})",
        )
    console.print(table)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def export_user(
    user: Annotated[str, typer.Argument(help="Whose data (Slack id or login).")],
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
    as_user: ActingUser = "",
) -> None:
    """Everything tier0 holds about a person, as JSON (themselves, or an admin)."""
    from tickets.export import export_user_data

    with _store() as (_, session_factory):
        data = _run(
            lambda: export_user_data(session_factory, user, as_user=as_user or _default_user())
        )
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if out is None:
        sys.stdout.write(text + "\n")
        return
    try:
        out.write_text(text + "\n", encoding="utf-8")
    except OSError as error:
        fail(f"cannot write {out}: {error.strerror}")
    console.print(f"wrote {out}")


def _ticket_json(ticket: Any) -> dict[str, Any]:
    return {
        "number": ticket.number,
        "title": ticket.title,
        "type": ticket.type.value,
        "status": ticket.status.value,
        "priority": ticket.priority,
        "category": ticket.category,
        "team": ticket.team,
        "tier": ticket.tier.value,
        "assignee": ticket.assignee,
        "requester": ticket.requester,
        "created_at": ticket.created_at.isoformat(),
        "resolution": ticket.resolution,
    }


def register(app: typer.Typer) -> None:
    """Add the service-desk commands to the `tier0` app."""
    app.add_typer(db_app, name="db")
    app.add_typer(ticket_app, name="ticket")
    app.add_typer(catalog_app, name="catalog")
    app.add_typer(user_app, name="user")
    app.add_typer(change_app, name="change")
    app.add_typer(sla_app, name="sla")
    app.command("approve")(approve)
    app.command("reject")(reject)
    app.command("approvals")(approvals)
    app.command("report")(report)
    app.command("export-user")(export_user)
