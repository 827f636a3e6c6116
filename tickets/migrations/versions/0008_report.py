"""Outbox mails record their hand-over to the SMTP server before the content is sent.

``outbox_messages.handed_over_at``: set (with the Message-ID in ``delivery_ref``) by the
attempt that is about to send a mail's content, so a retry after a crash knows whether
the mail may already have arrived (tickets/delivery.py).

Revision ID: 0008_report
Revises: 0007_slack_outbox_thread_order
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_report"
down_revision: str | None = "0007_slack_outbox_thread_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.add_column(sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages") as batch:
        batch.drop_column("handed_over_at")
