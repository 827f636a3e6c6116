"""Service-desk store benchmark: open tickets, list a queue, report metrics over 1M rows.

    python bench/tickets_bench.py [--backend sqlite|postgres|both] [--tickets 100000]
                                  [--events 1000000]

* **open**: ``TicketService.open_ticket`` from one process, each its own transaction with
  routing, SLA clocks and audit trail, as the bot opens them, from a few threads at once
  (``TIER0_BENCH_OPEN_THREADS``, default 8, each with its own pooled connection) as the
  bot's event handlers do: one connection alone waits for every commit's WAL flush, several
  share one. Target: at least 500 per second on PostgreSQL.
* **queue**: an L1 agent's queue (100 most urgent open tickets), repeated.
* **metrics**: ``desk_report`` over a store holding ``--events`` recorded facts (questions
  asked, tickets, SLA clocks, ratings) on top of the opened tickets. Target: at most 2 s.

PostgreSQL comes from ``TIER0_BENCH_POSTGRES_URL`` (default the local test server); the
benchmark works in a schema of its own and drops it afterwards.
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

from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.engine import make_url

from tickets.db import create_store_engine, make_session_factory, upgrade_schema
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
def store(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{Path(directory) / 'bench.db'}"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield (
            make_url(POSTGRES_URL)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


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


def bench_queue(service: TicketService, repeats: int = 20) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        rows = service.queue(as_user="agent-l1", limit=100)
        timings.append(time.perf_counter() - started)
        assert len(rows) == 100
    return statistics.median(timings)


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


def bench_metrics(engine: Engine) -> dict[str, tuple[float, float]]:
    factory = make_session_factory(engine)
    until = datetime.now(UTC) + timedelta(minutes=1)
    since = until - timedelta(days=90)
    figures = {}
    for group_by in (GroupBy.NONE, GroupBy.TEAM):
        started, cpu_started = time.perf_counter(), time.process_time()
        report = desk_report(factory, since=since, until=until, group_by=group_by)
        figures[group_by.value] = (
            time.perf_counter() - started,
            time.process_time() - cpu_started,
        )
        assert report.rows
    return figures


def run(backend: str, tickets: int, events: int) -> None:
    with store(backend) as url:
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
            queue = bench_queue(service)
            print(
                f"[{backend}] queue: 100 most urgent of {tickets} open, "
                f"median {queue * 1000:.1f} ms",
                flush=True,
            )
            started = time.perf_counter()
            loaded = fill_events(engine, events)
            print(
                f"[{backend}] loaded {sum(loaded.values()):,} history rows {loaded} "
                f"in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
            for group, (seconds, cpu_seconds) in bench_metrics(engine).items():
                print(
                    f"[{backend}] metrics report (group by {group}): {seconds:.2f} s wall, "
                    f"{cpu_seconds:.2f} s CPU of this process (target ≤2 s)",
                    flush=True,
                )
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    if args.tickets < 100 or args.events < 1000:
        parser.error("use at least 100 tickets and 1000 events")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        run(backend, args.tickets, args.events)


if __name__ == "__main__":
    main()
