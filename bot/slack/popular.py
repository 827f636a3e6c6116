"""The articles employees were answered with most over the last weeks (App Home)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tickets.models import Conversation, utc_now

POPULAR_WINDOW = timedelta(days=30)
CONVERSATIONS_READ = 5000


def popular_articles(
    session_factory: sessionmaker[Session], titles: dict[str, str], limit: int = 5
) -> list[tuple[str, str]]:
    """(article id, title) of the articles most often given as the answer, most first.

    An article that left the knowledge base since is skipped.
    """
    since = utc_now() - POPULAR_WINDOW
    with session_factory() as session:
        states = session.scalars(
            select(Conversation.state)
            .where(Conversation.updated_at >= since)
            .order_by(Conversation.updated_at.desc())
            .limit(CONVERSATIONS_READ)
        ).all()
    answered: Counter[str] = Counter()
    for state in states:
        tried = state.get("articles_tried") or []
        if tried and isinstance(tried[0], dict) and tried[0].get("id") in titles:
            answered[str(tried[0]["id"])] += 1
    return [(article_id, titles[article_id]) for article_id, _ in answered.most_common(limit)]
