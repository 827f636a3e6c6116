"""Outbox messages of one Slack thread are delivered in the order they were written.

Revision ID: 0007_slack_outbox_thread_order
Revises: 0006_tickets_fast_open
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_slack_outbox_thread_order"
down_revision: str | None = "0006_tickets_fast_open"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.add_column(sa.Column("thread_key", sa.String(length=200), nullable=True))
        batch.create_index(op.f("ix_outbox_messages_thread_key"), ["thread_key"])


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_index(op.f("ix_outbox_messages_thread_key"))
        batch.drop_column("thread_key")
