"""The `tier0` command: console chat, one-shot questions, knowledge and NLU upkeep, Slack."""

from __future__ import annotations

import contextlib
import getpass
import json
import sys
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel

from bot import desk_cli, worker_cli
from bot.assistant import Decision, IncomingMessage, Reply
from bot.cli_errors import fail
from bot.config import Settings
from bot.kb_cli import register_kb_commands
from bot.nlu_cli import nlu_app
from bot.rasa_cli import actions_app, rasa_serve

if TYPE_CHECKING:
    from bot.runtime import Tier0
    from bot.slack.app import SlackService
    from tickets.worker import Scheduler

app = typer.Typer(help="tier0: the IT self-service desk.", no_args_is_help=True)
kb_app = typer.Typer(help="The knowledge base.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")
app.add_typer(nlu_app, name="nlu")
app.add_typer(actions_app, name="actions")
nlu_app.command("rasa-serve")(rasa_serve)
# The knowledge editors' commands (sync, list, show, add, edit, …) live in their own module.
register_kb_commands(kb_app)
desk_cli.register(app)

console = Console()


def _build(dry_run: bool = False) -> Tier0:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, OperationalError

    from bot.runtime import NluBackendError, build_tier0
    from knowledge.articles import ArticleError
    from nlu.training_data import NluDataError

    settings = Settings()
    try:
        return build_tier0(settings, dry_run=dry_run)
    except (ArticleError, NluDataError, NluBackendError) as error:
        fail(str(error))
    except ArgumentError as error:
        fail(f"TIER0_DATABASE_URL is not a database URL: {error}")
    except OperationalError as error:
        where = make_url(settings.resolved_database_url).render_as_string(hide_password=True)
        reason = str(error.orig or error).strip().splitlines()[0]
        fail(f"cannot open the ticket store at {where}: {reason}")


def reply_as_json(question: str, reply: Reply) -> dict[str, Any]:
    return {
        "text": question,
        "reply": reply.text,
        "intent": reply.intent,
        "confidence": round(reply.confidence, 4),
        "decision": reply.decision.value,
        "articles": [
            {"id": hit.article_id, "title": hit.title, "score": hit.score} for hit in reply.articles
        ],
        "ticket": reply.ticket.number if reply.ticket else None,
        "notices": list(reply.notices),
    }


def render_reply(reply: Reply) -> None:
    for notice in reply.notices:
        console.print(f"[yellow]note:[/yellow] {escape(notice)}")
    answer = reply.answer
    if answer is None:
        console.print(f"[bold cyan]tier0>[/bold cyan] {escape(reply.text)}")
        if reply.offers_ticket:
            console.print("[dim](yes / no)[/dim]")
        return
    heading = f" › {answer.heading}" if answer.heading else ""
    console.print(
        Panel(
            Markdown(answer.passage),
            title=f"[bold]{escape(answer.title)}[/bold]{escape(heading)}",
            subtitle=f"source: {escape(answer.article_id)} ({escape(answer.path)})",
            title_align="left",
            subtitle_align="left",
        )
    )
    for related in reply.articles[1:]:
        console.print(
            f"  related: {escape(related.title)} [dim]({escape(related.article_id)})[/dim]"
        )
    console.print("[bold cyan]tier0>[/bold cyan] Did this help? [dim](yes / no)[/dim]")


@app.command()
def chat(
    user: Annotated[str, typer.Option(help="Who is asking.")] = getpass.getuser(),
) -> None:
    """Chat with the assistant in the terminal."""
    tier0 = _build()
    console.print(
        f"tier0 — {tier0.knowledge.article_count} articles loaded. "
        "Ask an IT question; 'quit' or Ctrl-D to leave."
    )
    conversation = f"console:{user}:{uuid.uuid4().hex[:8]}"
    while True:
        try:
            text = console.input("[bold green]you>[/bold green] ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            break
        if text.strip().lower() in {"quit", "exit", "/quit"}:
            break
        reply = tier0.assistant.respond(IncomingMessage(conversation, user, text))
        render_reply(reply)
        if reply.decision is Decision.TICKET and reply.ticket is not None:
            # A fresh conversation after a ticket, so the next question starts clean.
            conversation = f"console:{user}:{uuid.uuid4().hex[:8]}"


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question to ask.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reply as JSON.")] = False,
    jsonl: Annotated[
        bool, typer.Option("--jsonl", help="Read questions from stdin, one per line.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide only: open no ticket, store nothing.")
    ] = False,
    user: Annotated[str, typer.Option(help="Who is asking.")] = getpass.getuser(),
) -> None:
    """Ask one question (or many with --jsonl) and print the reply."""
    if not jsonl and question is None:
        fail('give a question, e.g. tier0 ask "how do I reset my password", or use --jsonl')
    tier0 = _build(dry_run=dry_run)

    def answer(text: str) -> Reply:
        key = f"console:ask:{uuid.uuid4().hex}"
        reply: Reply = tier0.assistant.respond(IncomingMessage(key, user, text))
        return reply

    if jsonl:
        for line in sys.stdin:
            text = line.rstrip("\n")
            sys.stdout.write(json.dumps(reply_as_json(text, answer(text))) + "\n")
            sys.stdout.flush()
        return
    assert question is not None
    reply = answer(question)
    if as_json:
        sys.stdout.write(json.dumps(reply_as_json(question, reply), indent=2) + "\n")
    else:
        render_reply(reply)


@kb_app.command("build")
def kb_build() -> None:
    """Build the search index of the knowledge base if an article changed."""
    from bot.runtime import build_knowledge
    from knowledge.articles import ArticleError
    from nlu.embedding import shared_embedder

    settings = Settings()
    try:
        index, rebuilt = build_knowledge(settings, shared_embedder())
    except ArticleError as error:
        fail(str(error))
    state = "rebuilt" if rebuilt else "already up to date"
    console.print(
        f"Index of {index.article_count} articles ({len(index.chunks)} passages) {state}: "
        f"{settings.resolved_kb_dir}"
    )


@app.command()
def serve(
    http: Annotated[bool, typer.Option("--http", help="Serve Slack over HTTP.")] = False,
    port: Annotated[int, typer.Option(help="HTTP port.")] = 3000,
    answer_processes: Annotated[
        int,
        typer.Option(
            min=0,
            help="With --http: processes that answer the stored events (0: this process "
            "answers too). Run `tier0 answer-events` elsewhere for more.",
        ),
    ] = 1,
) -> None:
    """Run the Slack bot: Socket Mode by default, the Events API over HTTP with --http.

    Over HTTP this process verifies, stores and acknowledges Slack's event deliveries
    (and handles interactions and commands); the answers are worked out by answering
    processes it starts beside it, so acknowledgements never wait behind answer work.
    """
    from bot.slack.answering import AnsweringProcesses
    from bot.slack.http import EVENTS_PATH, make_http_server

    settings = Settings()
    if not settings.slack_bot_token:
        fail("SLACK_BOT_TOKEN is not set")
    if http and not settings.slack_signing_secret:
        fail("SLACK_SIGNING_SECRET is not set (needed to verify Slack's requests)")
    if not http and not settings.slack_app_token:
        fail("SLACK_APP_TOKEN is not set (needed for Socket Mode); or use --http")
    answers_here = not http or answer_processes == 0
    slack = _slack_service(settings, answer_events=answers_here)
    if answers_here:
        slack.start_sweeper()
    # Several Slack workers embed one short message each at a time: the embedder runs
    # each call on one thread (nlu.embedding.embedder_threads), leaving cores to the acks.
    if http:
        answering = None if answers_here else AnsweringProcesses(answer_processes)
        server = make_http_server(slack.app, port=port, intake=slack.intake)
        _stop_on_sigterm()
        try:
            if answering is not None:
                answering.start()
            console.print(f"tier0 serving Slack at http://0.0.0.0:{port}{EVENTS_PATH}")
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            if answering is not None:
                answering.stop()
    else:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        console.print("tier0 connected to Slack in Socket Mode")
        SocketModeHandler(slack.app, settings.slack_app_token).start()  # type: ignore[no-untyped-call]


@app.command("answer-events")
def answer_events(
    exit_with: Annotated[
        int | None,
        typer.Option(
            help="Exit when the process with this id exits (`serve` sets it).", hidden=True
        ),
    ] = None,
) -> None:
    """Answer the Slack events `tier0 serve --http` stored: as many of these as you like,
    on any machine that reaches the store; each event is answered by exactly one."""
    import threading

    from bot.slack.answering import parent_gone
    from bot.slack.app import WORKER_NICENESS
    from bot.slack.workers import lower_priority

    settings = Settings()
    if not settings.slack_bot_token:
        fail("SLACK_BOT_TOKEN is not set")
    if exit_with is not None:
        # Beside `serve --http` on the same cores: its acknowledgements come first.
        with contextlib.suppress(AttributeError, OSError):
            lower_priority(0, WORKER_NICENESS)
    slack = _slack_service(settings, answer_events=True)
    slack.start_sweeper()
    stop = threading.Event()
    _stop_on_sigterm()
    try:
        while not stop.wait(1.0):
            if exit_with is not None and parent_gone(exit_with):
                break
    except KeyboardInterrupt:
        pass
    finally:
        slack.stop()


def _slack_service(settings: Settings, *, answer_events: bool) -> SlackService:
    from slack_bolt.error import BoltError
    from slack_sdk.errors import SlackApiError

    from bot.slack.app import build_slack_service

    tier0 = _build()
    try:
        # Checks the bot token with auth.test.
        return build_slack_service(tier0, answer_events=answer_events)
    except (BoltError, SlackApiError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        fail(f"cannot check SLACK_BOT_TOKEN with Slack at {settings.slack_api_url}: {reason}")


def _stop_on_sigterm() -> None:
    """A service manager stops us with SIGTERM: leave as on Ctrl-C, cleaning up."""
    import signal
    import threading

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


@app.command()
def run() -> None:
    """Start tier0: Slack in Socket Mode when tokens are set, the console chat otherwise.

    The background worker (notification delivery) runs in a thread alongside, unless
    TIER0_WORKER_IN_RUN=false (when `tier0 worker` runs as a process of its own).
    """
    settings = Settings()
    worker = _start_background_worker(settings) if settings.worker_in_run else None
    try:
        if settings.slack_configured_for_socket_mode:
            serve(http=False, port=3000)
        else:
            console.print(
                "[dim]No SLACK_BOT_TOKEN/SLACK_APP_TOKEN set: starting the console chat.[/dim]"
            )
            chat()
    finally:
        if worker is not None:
            worker.stop()


def _start_background_worker(settings: Settings) -> Scheduler:
    from bot.background import build_scheduler
    from bot.worker_cli import open_store

    scheduler = build_scheduler(settings, open_store(settings))
    scheduler.start_in_background()
    return scheduler


# `tier0 worker` and `tier0 outbox` live in their own module.
worker_cli.register(app)

if __name__ == "__main__":
    app()
