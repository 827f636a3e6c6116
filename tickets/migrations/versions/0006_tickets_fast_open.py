"""Ticket numbers from a sequence, an index for the backlog, questions tied to their
conversation.

Revision ID: 0006_tickets_fast_open
Revises: 0005_slack_inbox
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_tickets_fast_open"
down_revision: str | None = "0005_slack_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The first number a fresh store hands out (T-1001), as before.
FIRST_NUMBER = 1001


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        op.execute(sa.schema.CreateSequence(sa.Sequence("ticket_numbers", start=FIRST_NUMBER)))
        # Carry on after the highest number already given, so none is handed out twice.
        highest = connection.execute(
            sa.text(
                "SELECT max(CAST(substr(number, 3) AS BIGINT)) FROM tickets "
                "WHERE number ~ '^T-[0-9]{1,15}$'"
            )
        ).scalar()
        if highest is not None:
            connection.execute(sa.text("SELECT setval('ticket_numbers', :n)"), {"n": highest})
    # The backlog counts open tickets; the queue lists them.
    op.create_index(op.f("ix_tickets_status"), "tickets", ["status"])
    # A question's conversation: its link to the per-article events in article_feedback.
    with op.batch_alter_table("questions") as batch:
        batch.add_column(sa.Column("conversation_key", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.drop_column("conversation_key")
    op.drop_index(op.f("ix_tickets_status"), table_name="tickets")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.schema.DropSequence(sa.Sequence("ticket_numbers")))
