"""Opening a ticket on PostgreSQL in one statement, one round trip before the commit.

An open writes the requester (first ticket only), the ticket with its number and
idempotency key, its "opened" audit line, its SLA clocks and the articles already tried.
As separate statements that is four or five round trips, each paying SQLAlchemy's
execution machinery and, for the multi-row clock insert, a fresh compilation. Here they
are data-modifying CTEs of one statement, sent straight to psycopg, which prepares it on
the server after a few uses:

* the ticket's INSERT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING decides, so a
  repeated key (a Slack redelivery, even a concurrent one: the unique index makes the
  second writer wait for the first to commit) inserts nothing at all: the other CTEs
  read their ticket id from it and write no row either;
* the clocks and articles come in as arrays (unnest), so every open runs the same text,
  whatever number of clocks its policy gives or articles it tried.

Notifications, the assignment strategy and the secret-redaction notice run afterwards in
the same transaction (``TicketService._insert_new_ticket``): they need the persistent
ticket and the notification sink. SQLite keeps the plain statements (its writers are
serialised and local, a round trip costs it nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from psycopg import Connection
from psycopg.types.json import Json

from tickets.models import (
    ArticleOutcome,
    ArticleTried,
    SlaClock,
    TicketEventKind,
    TicketStatus,
)
from tickets.steps import TICKET_NUMBER_PREFIX

# The ticket columns an open writes; the others keep their defaults (NULL, 0 reopens).
OPENED_TICKET_COLUMNS = (
    "requester",
    "title",
    "description",
    "status",
    "priority",
    "category",
    "source",
    "transcript",
    "articles_tried",
    "idempotency_key",
    "requester_channel",
    "requester_thread_ts",
    "type",
    "impact",
    "urgency",
    "tier",
    "team_id",
    "asset_id",
    "form_answers",
    "reopen_count",
    "created_at",
    "updated_at",
)
_JSON_COLUMNS = frozenset({"transcript", "articles_tried", "form_answers"})
_USER_COLUMNS = ("handle", "slack_id", "name", "email", "roles", "created_at")

# (column, element type of the array it arrives in) for each started clock.
_CLOCK_ARRAYS = (
    ("kind", "varchar"),
    ("target_minutes", "integer"),
    ("business_hours", "boolean"),
    ("calendar_id", "integer"),
    ("consumed_minutes", "double precision"),
    ("running_since", "timestamptz"),
    ("due_at", "timestamptz"),
    ("warn_at", "timestamptz"),
)


@cache
def open_statement(register_requester: bool) -> str:
    """The statement's text, with or without registering a requester seen for the first
    time (two texts, so each stays one prepared statement)."""
    parts = []
    if register_requester:
        # Whichever unique column clashes (handle, Slack id, email), the person is known.
        parts.append(
            f"new_requester AS (INSERT INTO users ({', '.join(_USER_COLUMNS)}) "
            f"VALUES ({', '.join(f'%(user_{column})s' for column in _USER_COLUMNS)}) "
            "ON CONFLICT DO NOTHING)"
        )
    parts.append(
        f"ticket AS (INSERT INTO tickets (number, {', '.join(OPENED_TICKET_COLUMNS)}) "
        f"VALUES ('{TICKET_NUMBER_PREFIX}' || nextval('ticket_numbers')::text, "
        f"{', '.join(f'%({column})s' for column in OPENED_TICKET_COLUMNS)}) "
        # Without a key NULL never clashes, so this costs keyless tickets nothing.
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, number)"
    )
    parts.append(
        "opened AS (INSERT INTO ticket_events "
        "(ticket_id, actor, kind, from_status, to_status, detail, created_at) "
        f"SELECT id, %(requester)s, '{TicketEventKind.OPENED.value}', NULL, "
        f"'{TicketStatus.NEW.value}', %(opened_detail)s, %(created_at)s FROM ticket)"
    )
    clock_columns = ", ".join(column for column, _ in _CLOCK_ARRAYS)
    clock_arrays = ", ".join(f"%(clock_{column})s::{kind}[]" for column, kind in _CLOCK_ARRAYS)
    parts.append(
        f"clocks AS (INSERT INTO sla_clocks (ticket_id, {clock_columns}) "
        f"SELECT ticket.id, {clock_columns} FROM ticket, "
        f"unnest({clock_arrays}) AS clock({clock_columns}))"
    )
    parts.append(
        "tried AS (INSERT INTO ticket_articles "
        "(ticket_id, article_id, title, outcome, created_at) "
        f"SELECT ticket.id, article.article_id, article.title, "
        f"'{ArticleOutcome.TRIED.value}', %(created_at)s FROM ticket, "
        "unnest(%(article_ids)s::varchar[], %(article_titles)s::varchar[]) "
        "AS article(article_id, title))"
    )
    return "WITH " + ",\n".join(parts) + "\nSELECT id, number FROM ticket"


def insert_opened_ticket(
    connection: Connection[Any],
    ticket: Mapping[str, Any],
    *,
    requester_row: Mapping[str, object] | None,
    opened_detail: Mapping[str, Any],
    clocks: Sequence[SlaClock],
    articles: Sequence[ArticleTried],
) -> tuple[int, str] | None:
    """Insert the ticket and everything an open writes with it, in the connection's open
    transaction; its (id, number), or None when its idempotency key is taken."""
    params: dict[str, Any] = {
        column: Json(ticket[column]) if column in _JSON_COLUMNS else ticket.get(column)
        for column in OPENED_TICKET_COLUMNS
    }
    params["opened_detail"] = Json(dict(opened_detail))
    if requester_row is not None:
        for column in _USER_COLUMNS:
            value = requester_row[column]
            params[f"user_{column}"] = Json(value) if column == "roles" else value
    for column, _ in _CLOCK_ARRAYS:
        params[f"clock_{column}"] = [getattr(clock, column) for clock in clocks]
    params["article_ids"] = [article["id"][:200] for article in articles]
    params["article_titles"] = [article["title"][:200] for article in articles]
    with connection.cursor() as cursor:
        row = cursor.execute(open_statement(requester_row is not None), params).fetchone()
    return None if row is None else (row[0], row[1])
