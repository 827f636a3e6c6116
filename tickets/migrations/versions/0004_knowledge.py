"""Knowledge base: article_versions (every version of every article) and article_feedback.

Revision ID: 0004_knowledge
Revises: 0003_outbox
Create Date: 2026-11-23

Hand-written to match ``knowledge/records.py``; ``tests/tickets`` compares the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_knowledge"
down_revision: str | None = "0003_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "article_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("change", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("review_by", sa.String(length=10), nullable=True),
        sa.Column("path", sa.String(length=1000), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_versions")),
        sa.UniqueConstraint("article_id", "version", name=op.f("uq_article_versions_article_id")),
    )
    op.create_index(op.f("ix_article_versions_article_id"), "article_versions", ["article_id"])

    op.create_table(
        "article_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("conversation_key", sa.String(length=200), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("ticket_number", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_feedback")),
    )
    op.create_index(op.f("ix_article_feedback_article_id"), "article_feedback", ["article_id"])
    op.create_index(op.f("ix_article_feedback_created_at"), "article_feedback", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_article_feedback_created_at"), table_name="article_feedback")
    op.drop_index(op.f("ix_article_feedback_article_id"), table_name="article_feedback")
    op.drop_table("article_feedback")
    op.drop_index(op.f("ix_article_versions_article_id"), table_name="article_versions")
    op.drop_table("article_versions")
