"""What employees did with the articles they were shown: the per-article feedback counts.

The assistant records an event when it shows articles, when the employee says whether
the answer helped, when a ticket is opened after articles were shown, and when no
article fitted a question at all. `kb stats` counts them per article; `kb gaps` reads the
questions behind the unhelpful and unanswered ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, true
from sqlalchemy.orm import Session, sessionmaker

from knowledge.records import ArticleFeedback, FeedbackKind
from tickets.models import utc_now

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArticleStats:
    article_id: str
    shown: int = 0
    helpful: int = 0
    not_helpful: int = 0
    tickets: int = 0
    # Conversations where the article did not settle the question: "Still need help",
    # or a ticket opened after it (counted once when both happened).
    failures: int = 0

    @property
    def helpful_rate(self) -> float | None:
        """Share of "did this help?" answers that were yes; None before any answer."""
        answered = self.helpful + self.not_helpful
        return None if answered == 0 else self.helpful / answered


@dataclass(frozen=True)
class FeedbackEvent:
    article_id: str | None
    kind: str
    conversation_key: str
    question: str
    ticket_number: str | None
    created_at: datetime


class ArticleFeedbackLog:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._session_factory = session_factory
        self._clock = clock

    def record(
        self,
        kind: FeedbackKind,
        article_ids: Iterable[str | None],
        *,
        conversation_key: str,
        question: str = "",
        ticket_number: str | None = None,
    ) -> None:
        """One event per article (None: a question no article answered)."""
        now = self._clock()
        with self._session_factory.begin() as session:
            for article_id in dict.fromkeys(article_ids):
                if ticket_number is not None and _ticket_already_counted(
                    session, article_id, ticket_number
                ):
                    continue  # a retried escalation returns the same ticket: count it once
                session.add(
                    ArticleFeedback(
                        article_id=article_id,
                        kind=kind.value,
                        conversation_key=conversation_key,
                        question=question,
                        ticket_number=ticket_number,
                        created_at=now,
                    )
                )

    def record_quietly(
        self,
        kind: FeedbackKind,
        article_ids: Iterable[str | None],
        *,
        conversation_key: str,
        question: str = "",
        ticket_number: str | None = None,
    ) -> None:
        """`record`, for a front end in the middle of a conversation: a store that fails
        is logged, never raised, since editors' statistics must not cost the person
        asking their answer or their ticket."""
        try:
            self.record(
                kind,
                article_ids,
                conversation_key=conversation_key,
                question=question,
                ticket_number=ticket_number,
            )
        except Exception:
            logger.exception("could not record %s feedback for %s", kind, conversation_key)

    def stats(self, since: datetime | None = None) -> dict[str, ArticleStats]:
        """Counts per article id, for every article that has any (since `since`, when
        given: how an article does after an edit)."""
        counts: dict[str, dict[str, int]] = {}
        recent = ArticleFeedback.created_at >= since if since is not None else true()
        with self._session_factory.begin() as session:
            rows = session.execute(
                select(ArticleFeedback.article_id, ArticleFeedback.kind, func.count())
                .where(ArticleFeedback.article_id.is_not(None), recent)
                .group_by(ArticleFeedback.article_id, ArticleFeedback.kind)
            ).all()
            failed = session.execute(
                select(
                    ArticleFeedback.article_id,
                    func.count(func.distinct(ArticleFeedback.conversation_key)),
                )
                .where(
                    ArticleFeedback.article_id.is_not(None),
                    ArticleFeedback.kind.in_(
                        [FeedbackKind.NOT_HELPFUL.value, FeedbackKind.TICKET.value]
                    ),
                    recent,
                )
                .group_by(ArticleFeedback.article_id)
            ).all()
        for article_id, kind, count in rows:
            counts.setdefault(str(article_id), {})[str(kind)] = int(count)
        failures = {str(article_id): int(count) for article_id, count in failed}
        return {
            article_id: ArticleStats(
                article_id=article_id,
                shown=kinds.get(FeedbackKind.SHOWN, 0),
                helpful=kinds.get(FeedbackKind.HELPFUL, 0),
                not_helpful=kinds.get(FeedbackKind.NOT_HELPFUL, 0),
                tickets=kinds.get(FeedbackKind.TICKET, 0),
                failures=failures.get(article_id, 0),
            )
            for article_id, kinds in counts.items()
        }

    def question_shown(self, conversation_key: str, article_id: str) -> str:
        """The question the article was last shown for in this conversation ("" if none)."""
        with self._session_factory.begin() as session:
            question = session.scalar(
                select(ArticleFeedback.question)
                .where(
                    ArticleFeedback.conversation_key == conversation_key,
                    ArticleFeedback.article_id == article_id,
                    ArticleFeedback.kind == FeedbackKind.SHOWN.value,
                )
                .order_by(ArticleFeedback.created_at.desc(), ArticleFeedback.id.desc())
                .limit(1)
            )
        return str(question or "")

    def events_since(self, since: datetime, kinds: Iterable[FeedbackKind]) -> list[FeedbackEvent]:
        with self._session_factory.begin() as session:
            rows = session.scalars(
                select(ArticleFeedback)
                .where(
                    ArticleFeedback.created_at >= since,
                    ArticleFeedback.kind.in_([kind.value for kind in kinds]),
                )
                .order_by(ArticleFeedback.created_at, ArticleFeedback.id)
            ).all()
            return [
                FeedbackEvent(
                    article_id=row.article_id,
                    kind=row.kind,
                    conversation_key=row.conversation_key,
                    question=row.question,
                    ticket_number=row.ticket_number,
                    created_at=row.created_at,
                )
                for row in rows
            ]


def _ticket_already_counted(session: Session, article_id: str | None, ticket_number: str) -> bool:
    condition = (
        ArticleFeedback.article_id.is_(None)
        if article_id is None
        else ArticleFeedback.article_id == article_id
    )
    found = session.scalar(
        select(ArticleFeedback.id)
        .where(
            condition,
            ArticleFeedback.kind == FeedbackKind.TICKET.value,
            ArticleFeedback.ticket_number == ticket_number,
        )
        .limit(1)
    )
    return found is not None
