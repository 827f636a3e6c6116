"""Service-desk store benchmark: open tickets, list a queue, report metrics over 1M rows.

    python bench/tickets_bench.py [--backend sqlite|postgres|both] [--tickets 100000]
                                  [--events 1000000] [--keep]
    python bench/tickets_bench.py --report-only STORE_URL

The defaults are the issue's full-scale run: 100k tickets opened, a queue listed among
them, the report over 1M history rows, on SQLite and then PostgreSQL.

* **open**: ``TicketService.open_ticket`` from one process, each its own transaction with
  routing, SLA clocks and audit trail, as the bot opens them, from a few threads at once
  (``TIER0_BENCH_OPEN_THREADS``, default 8, each with its own pooled connection) as the
  bot's event handlers do: one connection alone waits for every commit's WAL flush, several
  share one. Target: at least 500 per second on PostgreSQL.
* **queue**: an L1 agent's queue (100 most urgent open tickets), repeated.
* **metrics**: ``desk_report`` over a store holding ``--events`` recorded facts (questions
  asked, tickets, SLA clocks, ratings) on top of the opened tickets. Target: at most 2 s.

PostgreSQL comes from ``TIER0_BENCH_POSTGRES_URL`` (default the local test server); the
benchmark works in a schema of its own and drops it afterwards, unless ``--keep`` says to
keep the store (its URL is printed) so that ``--report-only URL`` can list the queue and
time the report on it again, e.g. after a change to the report, without reloading.

Times are wall clock and CPU: the CPU of this process (all of SQLite's work, which runs
in-process) and, for a PostgreSQL server on this machine, the CPU of the server process
serving the report's connection (read from /proc; parallel workers, if PostgreSQL starts
any, are not in that figure).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, insert, select, text

from tickets.db import (
    create_store_engine,
    make_session_factory,
    scratch_schema,
    upgrade_schema,
)
from tickets.directory import Directory
from tickets.metrics import GroupBy, desk_report
from tickets.models import CsatResponse, Question, SlaClock, Team, Ticket
from tickets.seed import load_desk_config
from tickets.service import TicketService

POSTGRES_URL = os.environ.get(
    "TIER0_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# Threads opening tickets at once, each with a pooled connection of its own.
OPEN_THREADS = int(os.environ.get("TIER0_BENCH_OPEN_THREADS", "8"))
CATEGORIES = ["general", "hardware", "access", "software", "network"]
LEVELS = ["high", "medium", "low"]


@contextmanager
def store(backend: str, *, keep: bool = False) -> Iterator[str]:
    if backend == "sqlite":
        if keep:
            directory = tempfile.mkdtemp(prefix="tier0-bench-")
            yield f"sqlite:///{Path(directory) / 'bench.db'}"
            return
        with tempfile.TemporaryDirectory() as temporary:
            yield f"sqlite:///{Path(temporary) / 'bench.db'}"
        return
    with scratch_schema(POSTGRES_URL, f"bench_{uuid.uuid4().hex[:12]}", keep=keep) as url:
        yield url


def bench_open(
    service: TicketService, count: int, threads: int = OPEN_THREADS
) -> tuple[float, float]:
    """Tickets per second, by the wall clock and by this process's CPU time (all threads;
    the machine may be shared; PostgreSQL's own CPU time is not in the second figure)."""

    def open_share(first: int) -> None:
        rng = random.Random(7 + first)
        for index in range(first, count, threads):
            service.open_ticket(
                requester=f"U{index % 5000:06d}",
                title=f"Problem number {index}: the thing does not work",
                description="Since this morning it fails with an error.",
                category=rng.choice(CATEGORIES),
                impact=rng.choice(LEVELS),
                urgency=rng.choice(LEVELS),
                source="slack",
                idempotency_key=f"Ev{index:09d}",
            )

    started, cpu_started = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        for share in [pool.submit(open_share, first) for first in range(threads)]:
            share.result()
    return count / (time.perf_counter() - started), count / (time.process_time() - cpu_started)


class ServerCpu:
    """CPU seconds used by the PostgreSQL server process behind an engine's one pooled
    connection, read from /proc: only when the server runs on this machine."""

    def __init__(self, engine: Engine) -> None:
        self._path: Path | None = None
        if engine.dialect.name != "postgresql":
            return
        with engine.connect() as connection:
            pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        path = Path(f"/proc/{pid}/stat")
        if engine.url.host in ("127.0.0.1", "localhost", "::1", None) and path.exists():
            self._path = path

    def seconds(self) -> float | None:
        if self._path is None:
            return None
        fields = self._path.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_queue(service: TicketService, repeats: int = 20) -> tuple[float, float]:
    """The median time to list an L1 agent's 100 most urgent open tickets, wall and CPU
    of this process."""
    timings, cpu_timings = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        rows = service.queue(as_user="agent-l1", limit=100)
        timings.append(time.perf_counter() - started)
        cpu_timings.append(time.process_time() - cpu_started)
        assert len(rows) == 100
    return statistics.median(timings), statistics.median(cpu_timings)


def fill_events(engine: Engine, total: int) -> dict[str, int]:
    """Bulk-load ``total`` rows of history: 40 % questions, 20 % tickets (resolved, with
    first response), 40 % their SLA clocks, plus ratings on a tenth of the tickets."""
    rng = random.Random(11)
    now = datetime.now(UTC)
    questions = int(total * 0.4)
    tickets = int(total * 0.2)
    clocks = total - questions - tickets
    with engine.begin() as connection:
        team_ids = list(connection.execute(select(Team.id)).scalars())
        first_id = (
            connection.execute(select(Ticket.id).order_by(Ticket.id.desc())).scalar() or 0
        ) + 1
        batch: list[dict[str, object]] = []
        for index in range(questions):
            asked = now - timedelta(minutes=rng.randrange(60 * 24 * 60))
            helpful = rng.random() < 0.6
            batch.append(
                {
                    "asker": f"U{rng.randrange(20000):06d}",
                    "text": "how do I reset my password",
                    "intent": rng.choice(["ask_question", "vpn", "password", "printer"]),
                    "article_id": f"KB-{rng.randrange(200)}",
                    "answered": True,
                    "helpful": helpful,
                    "asked_at": asked,
                }
            )
            if len(batch) == 20_000 or index == questions - 1:
                connection.execute(insert(Question), batch)
                batch = []
        for index in range(tickets):
            created = now - timedelta(minutes=rng.randrange(60 * 24 * 60))
            batch.append(
                {
                    "id": first_id + index,
                    # Historic rows get numbers of their own, clear of the live sequence.
                    "number": f"H-{first_id + index}",
                    "requester": f"U{rng.randrange(20000):06d}",
                    "title": "Historic ticket",
                    "description": "",
                    "status": "closed",
                    "priority": rng.choice(["P1", "P2", "P3", "P4"]),
                    "category": rng.choice(CATEGORIES),
                    "source": "slack",
                    "transcript": [],
                    "articles_tried": [],
                    "type": "incident",
                    "tier": "L1",
                    "team_id": rng.choice(team_ids),
                    "reopen_count": 1 if rng.random() < 0.05 else 0,
                    "created_at": created,
                    "updated_at": created,
                    "first_response_at": created + timedelta(minutes=rng.randrange(5, 600)),
                    "resolved_at": created + timedelta(minutes=rng.randrange(30, 6000)),
                    "closed_at": created + timedelta(days=8),
                }
            )
            if len(batch) == 10_000 or index == tickets - 1:
                connection.execute(insert(Ticket), batch)
                batch = []
        for index in range(clocks):
            ticket_id = first_id + (index // 2) % tickets
            stopped = now - timedelta(minutes=rng.randrange(60 * 24 * 60))
            met = rng.random() < 0.9
            batch.append(
                {
                    "ticket_id": ticket_id,
                    "kind": "first_response" if index % 2 == 0 else "resolution",
                    "target_minutes": 240,
                    "business_hours": True,
                    "consumed_minutes": 100.0,
                    "stopped_at": stopped,
                    "met": met,
                    "breached_at": None if met else stopped,
                }
            )
            if len(batch) == 20_000 or index == clocks - 1:
                connection.execute(insert(SlaClock), batch)
                batch = []
        ratings = [
            {
                "ticket_id": first_id + index,
                "requester": "U000001",
                "score": rng.randint(1, 5),
                "created_at": now - timedelta(minutes=rng.randrange(60 * 24 * 60)),
            }
            for index in range(0, tickets, 10)
        ]
        connection.execute(insert(CsatResponse), ratings)
        if connection.dialect.name == "postgresql":
            connection.execute(text("ANALYZE"))
    return {
        "questions": questions,
        "tickets": tickets,
        "sla_clocks": clocks,
        "ratings": len(ratings),
    }


def bench_metrics(engine: Engine) -> dict[str, tuple[float, float, float | None]]:
    """The report over the last 90 days (all the history), ungrouped and by team: wall
    seconds, CPU seconds of this process and of the PostgreSQL server process."""
    factory = make_session_factory(engine)
    server = ServerCpu(engine)
    with engine.connect() as connection:
        # The history's newest row, so a store kept by --keep is reported over the same
        # period when it is timed again later.
        newest = connection.execute(select(func.max(Ticket.created_at))).scalar()
    until = (newest or datetime.now(UTC)) + timedelta(minutes=1)
    since = until - timedelta(days=90)
    figures: dict[str, tuple[float, float, float | None]] = {}
    for group_by in (GroupBy.NONE, GroupBy.TEAM):
        server_before = server.seconds()
        started, cpu_started = time.perf_counter(), time.process_time()
        report = desk_report(factory, since=since, until=until, group_by=group_by)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        server_after = server.seconds()
        figures[group_by.value] = (
            wall,
            cpu,
            None if server_before is None or server_after is None else server_after - server_before,
        )
        assert report.rows
    return figures


def report_queue_and_metrics(backend: str, engine: Engine, tickets: int) -> None:
    service = TicketService(make_session_factory(engine))
    queue, queue_cpu = bench_queue(service)
    print(
        f"[{backend}] queue: 100 most urgent of {tickets:,} open, median "
        f"{queue * 1000:.1f} ms wall, {queue_cpu * 1000:.1f} ms CPU of this process",
        flush=True,
    )
    for group, (seconds, cpu_seconds, server_seconds) in bench_metrics(engine).items():
        server_note = (
            ""
            if server_seconds is None
            else (f", {server_seconds:.2f} s CPU of the PostgreSQL server process")
        )
        print(
            f"[{backend}] metrics report (group by {group}): {seconds:.2f} s wall, "
            f"{cpu_seconds:.2f} s CPU of this process{server_note} (target ≤2 s)",
            flush=True,
        )


def report_only(url: str) -> None:
    """Queue and report timings on a store kept by an earlier ``--keep`` run."""
    engine = create_store_engine(url)
    try:
        backend = "postgres" if engine.dialect.name == "postgresql" else engine.dialect.name
        with engine.connect() as connection:
            open_tickets = connection.execute(
                select(func.count()).select_from(Ticket).where(Ticket.status != "closed")
            ).scalar_one()
            history = sum(
                connection.execute(select(func.count()).select_from(model)).scalar_one()
                for model in (Question, Ticket, SlaClock, CsatResponse)
            )
        print(f"[{backend}] kept store: {open_tickets:,} open tickets, {history:,} rows")
        report_queue_and_metrics(backend, engine, open_tickets)
    finally:
        engine.dispose()


def run(backend: str, tickets: int, events: int, *, keep: bool = False) -> None:
    with store(backend, keep=keep) as url:
        engine = create_store_engine(url, pool_size=max(5, OPEN_THREADS))
        try:
            upgrade_schema(engine)
            factory = make_session_factory(engine)
            load_desk_config(factory)
            Directory(factory).register_user("agent-l1", roles=["agent"], team="Service Desk L1")
            service = TicketService(factory)
            rate, cpu_rate = bench_open(service, tickets)
            print(
                f"[{backend}] open: {tickets} tickets from {OPEN_THREADS} threads, "
                f"{rate:,.0f} tickets/s wall, "
                f"{cpu_rate:,.0f} tickets per CPU-second of this process "
                "(target ≥500/s wall on PostgreSQL)",
                flush=True,
            )
            started = time.perf_counter()
            loaded = fill_events(engine, events)
            print(
                f"[{backend}] loaded {sum(loaded.values()):,} history rows {loaded} "
                f"in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            report_queue_and_metrics(backend, engine, tickets)
            if keep:
                print(f"[{backend}] store kept: --report-only '{url}'", flush=True)
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--keep", action="store_true", help="keep the store and print its URL for --report-only"
    )
    parser.add_argument(
        "--report-only",
        metavar="STORE_URL",
        help="only list the queue and time the report on a store kept by --keep",
    )
    args = parser.parse_args()
    if args.report_only:
        report_only(args.report_only)
        return
    if args.tickets < 100 or args.events < 1000:
        parser.error("use at least 100 tickets and 1000 events")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        run(backend, args.tickets, args.events, keep=args.keep)


if __name__ == "__main__":
    main()
