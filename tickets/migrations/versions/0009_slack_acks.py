"""The Slack inbox's waiting events are found by one index range scan.

Answering processes look for the oldest events still waiting many times a second
(`SlackInbox.claim_waiting`); (state, received_at) answers that without sorting the
rest of the inbox.

Revision ID: 0009_slack_acks
Revises: 0008_report
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009_slack_acks"
down_revision: str | None = "0008_report"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_slack_inbox_waiting", "slack_inbox", ["state", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_slack_inbox_waiting", table_name="slack_inbox")
