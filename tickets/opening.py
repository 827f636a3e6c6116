"""Opening a ticket on PostgreSQL in one statement, one round trip before the commit.

An open writes the requester (first ticket only), the ticket with its number and
idempotency key, its "opened" audit line, its SLA clocks and the articles already tried.
As separate statements that is four or five round trips, each paying SQLAlchemy's
execution machinery and, for the multi-row clock insert, a fresh compilation. Here they
are data-modifying CTEs of one statement, sent as driver SQL (nothing to compile) that
psycopg prepares on the server after a few uses:

* the ticket's INSERT … ON CONFLICT (idempotency_key) DO NOTHING RETURNING decides, so a
  repeated key (a Slack redelivery, even a concurrent one: the unique index makes the
  second writer wait for the first to commit) inserts nothing at all: the other CTEs
  read their ticket id from it and write no row either;
* each table's rows come in as one JSON parameter (see ``open_statement``), so every
  open runs the same text, whatever number of clocks its policy gives or articles it
  tried.

Notifications, the assignment strategy and the secret-redaction notice run afterwards in
the same transaction (``TicketService._insert_new_ticket``): they need the persistent
ticket and the notification sink. SQLite keeps the plain statements (its writers are
serialised and local, a round trip costs it nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection

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
_USER_COLUMNS = ("handle", "slack_id", "name", "email", "roles", "created_at")

_CLOCK_COLUMNS = (
    "kind",
    "target_minutes",
    "business_hours",
    "calendar_id",
    "consumed_minutes",
    "running_since",
    "due_at",
    "warn_at",
)
_EVENT_COLUMNS = ("actor", "kind", "from_status", "to_status", "detail", "created_at")
_ARTICLE_COLUMNS = ("article_id", "title", "outcome", "created_at")


def _columns(names: Sequence[str], row: str) -> str:
    return ", ".join(f"{row}.{name}" for name in names)


@cache
def open_statement(register_requester: bool) -> str:
    """The statement's text, with or without registering a requester seen for the first
    time (two texts, so each stays one prepared statement).

    Each table's rows arrive as one JSON parameter that json_populate_record(set) turns
    into rows of that table's own type: one json.dumps in C instead of psycopg adapting
    some forty values one by one, and PostgreSQL checks each value against its column
    (a text too long for its column fails as in a plain INSERT).
    """
    parts = []
    if register_requester:
        # Whichever unique column clashes (handle, Slack id, email), the person is known.
        parts.append(
            f"new_requester AS (INSERT INTO users ({', '.join(_USER_COLUMNS)}) "
            f"SELECT {_columns(_USER_COLUMNS, 'person')} "
            "FROM json_populate_record(NULL::users, %(requester)s::json) AS person "
            "ON CONFLICT DO NOTHING)"
        )
    parts.append(
        f"ticket AS (INSERT INTO tickets (number, {', '.join(OPENED_TICKET_COLUMNS)}) "
        f"SELECT '{TICKET_NUMBER_PREFIX}' || nextval('ticket_numbers')::text, "
        f"{_columns(OPENED_TICKET_COLUMNS, 'opened')} "
        "FROM json_populate_record(NULL::tickets, %(ticket)s::json) AS opened "
        # Without a key NULL never clashes, so this costs keyless tickets nothing.
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, number)"
    )
    parts.append(
        f"opened_event AS (INSERT INTO ticket_events (ticket_id, {', '.join(_EVENT_COLUMNS)}) "
        f"SELECT ticket.id, {_columns(_EVENT_COLUMNS, 'event')} FROM ticket, "
        "json_populate_record(NULL::ticket_events, %(event)s::json) AS event)"
    )
    parts.append(
        f"clocks AS (INSERT INTO sla_clocks (ticket_id, {', '.join(_CLOCK_COLUMNS)}) "
        f"SELECT ticket.id, {_columns(_CLOCK_COLUMNS, 'clock')} FROM ticket, "
        "json_populate_recordset(NULL::sla_clocks, %(clocks)s::json) AS clock)"
    )
    parts.append(
        f"tried AS (INSERT INTO ticket_articles (ticket_id, {', '.join(_ARTICLE_COLUMNS)}) "
        f"SELECT ticket.id, {_columns(_ARTICLE_COLUMNS, 'article')} FROM ticket, "
        "json_populate_recordset(NULL::ticket_articles, %(articles)s::json) AS article)"
    )
    return "WITH " + ",\n".join(parts) + "\nSELECT id, number FROM ticket"


def insert_opened_ticket(
    connection: Connection,
    ticket: Mapping[str, Any],
    *,
    requester_row: Mapping[str, object] | None,
    opened_detail: Mapping[str, Any],
    clocks: Sequence[SlaClock],
    articles: Sequence[ArticleTried],
) -> tuple[int, str] | None:
    """Insert the ticket and everything an open writes with it, in the connection's open
    transaction; its (id, number), or None when its idempotency key is taken."""
    created_at = ticket["created_at"]
    params = {
        "ticket": _json({column: ticket.get(column) for column in OPENED_TICKET_COLUMNS}),
        "event": _json(
            {
                "actor": ticket["requester"],
                "kind": TicketEventKind.OPENED.value,
                "from_status": None,
                "to_status": TicketStatus.NEW.value,
                "detail": opened_detail,
                "created_at": created_at,
            }
        ),
        "clocks": _json(
            [{column: getattr(clock, column) for column in _CLOCK_COLUMNS} for clock in clocks]
        ),
        "articles": _json(
            [
                {
                    "article_id": article["id"][:200],
                    "title": article["title"][:200],
                    "outcome": ArticleOutcome.TRIED.value,
                    "created_at": created_at,
                }
                for article in articles
            ]
        ),
    }
    if requester_row is not None:
        params["requester"] = _json(requester_row)
    # Driver SQL: nothing to compile, and SQLAlchemy still wraps the driver's errors (a
    # lost connection is an OperationalError and is dropped from the pool).
    row = connection.exec_driver_sql(open_statement(requester_row is not None), params).first()
    return None if row is None else (row[0], row[1])


def _json(value: object) -> str:
    return json.dumps(value, default=_timestamp)


def _timestamp(value: object) -> str:
    if not isinstance(value, datetime):
        raise TypeError(f"cannot store {type(value).__name__} as JSON")
    if value.tzinfo is None:
        # As UTCDateTime refuses them: PostgreSQL would read it in the session's zone.
        raise ValueError(f"refusing to store a naive datetime ({value!r}); use UTC")
    return value.isoformat()
