"""The knowledge base's tables in the tier0 store: every version of every article, and
what employees did after an article was shown to them.

They live on the ticket store's declarative base so one set of Alembic migrations (and
one database) holds everything; migration ``0004_knowledge`` creates them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tickets.models import Base, UTCDateTime, utc_now


class VersionChange(StrEnum):
    """Why a version was recorded."""

    ADDED = "added"  # first seen in the folder
    CHANGED = "changed"  # the file changed (text or front matter)
    RETIRED = "retired"  # status set to retired, or the file was removed from the folder
    RESTORED = "restored"  # back in the folder, or back from retired


class FeedbackKind(StrEnum):
    SHOWN = "shown"  # offered as an answer or a related article
    HELPFUL = "helpful"  # "did this help?" → yes
    NOT_HELPFUL = "not_helpful"  # "did this help?" → no, or "I still need help"
    TICKET = "ticket"  # a ticket was opened after the article was shown
    UNANSWERED = "unanswered"  # no article fitted the question (article_id is NULL)


class ArticleVersion(Base):
    """One version of one article, as the editor's file stood when `kb sync` saw it.

    Rows are only ever inserted: the history of an article is its versions in order.
    """

    __tablename__ = "article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(300))
    owner: Mapped[str | None] = mapped_column(String(200))
    review_by: Mapped[str | None] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(1000))
    content: Mapped[str] = mapped_column(Text)  # the whole file, front matter included
    content_hash: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)


class ArticleFeedback(Base):
    """One thing that happened to an article in a conversation (shown, helped, ticket …)."""

    __tablename__ = "article_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL for a question no article answered (the gap report reads those).
    article_id: Mapped[str | None] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    conversation_key: Mapped[str] = mapped_column(String(200))
    # The employee's question (already redacted by the assistant).
    question: Mapped[str] = mapped_column(Text, default="")
    ticket_number: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)
