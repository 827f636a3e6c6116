"""Initial schema: tickets, ticket_events, conversations, processed_events.

Revision ID: 0001
Revises:
Create Date: 2024-11-23

Hand-written to match ``tickets/models.py``; ``tests/tickets`` compares the two. The
migration spells its types out instead of importing the models, so it keeps describing
this revision after the models move on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=True),
        sa.Column("requester", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.String(length=2), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.Column("articles_tried", sa.JSON(), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("requester_channel", sa.String(length=64), nullable=True),
        sa.Column("requester_thread_ts", sa.String(length=64), nullable=True),
        sa.Column("triage_channel", sa.String(length=64), nullable=True),
        sa.Column("triage_ts", sa.String(length=64), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("resolved_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("number", name=op.f("uq_tickets_number")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_tickets_idempotency_key")),
    )
    op.create_index(op.f("ix_tickets_requester"), "tickets", ["requester"])

    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    op.create_index(op.f("ix_ticket_events_ticket_id"), "ticket_events", ["ticket_id"])

    op.create_table(
        "conversations",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("requester", sa.String(length=200), nullable=False),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_conversations")),
    )

    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        _timestamp("received_at"),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_processed_events")),
    )
    op.create_index(op.f("ix_processed_events_received_at"), "processed_events", ["received_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_processed_events_received_at"), table_name="processed_events")
    op.drop_table("processed_events")
    op.drop_table("conversations")
    op.drop_index(op.f("ix_ticket_events_ticket_id"), table_name="ticket_events")
    op.drop_table("ticket_events")
    op.drop_index(op.f("ix_tickets_requester"), table_name="tickets")
    op.drop_table("tickets")
