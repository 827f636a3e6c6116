"""The Slack inbox: events kept from their acknowledgement until they are handled.

Revision ID: 0003_slack_inbox
Revises: 0002_itsm
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_slack_inbox"
down_revision: str | None = "0002_itsm"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_inbox",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_slack_inbox")),
    )
    op.create_index(op.f("ix_slack_inbox_state"), "slack_inbox", ["state"])
    op.create_index(op.f("ix_slack_inbox_received_at"), "slack_inbox", ["received_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_slack_inbox_received_at"), table_name="slack_inbox")
    op.drop_index(op.f("ix_slack_inbox_state"), table_name="slack_inbox")
    op.drop_table("slack_inbox")
