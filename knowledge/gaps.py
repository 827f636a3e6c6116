"""The gap report: recent questions self-service did not settle, grouped by meaning.

A question counts when no article fitted it, when the employee said the answer did not
help, or when it ended in a ticket (tickets opened outside a conversation, e.g. by an
agent, count too when they are general questions rather than hardware or access
requests). Questions are embedded, clustered by cosine distance (average-linkage
agglomerative clustering cut at a fixed distance) and ranked by how many there are:
the editors' to-do list, each topic with sample questions and the nearest article.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.feedback import ArticleFeedbackLog
from knowledge.index import SearchHit
from knowledge.records import FeedbackKind
from nlu.embedding import Embedder
from tickets.models import Ticket

# Average-linkage cosine distance at which two groups of questions stop being merged.
# Measured with bench/gap_clusters.py (all-MiniLM-L6-v2, 17 questions on 5 topics):
# rewordings of one topic lie 0.22–0.74 apart (mean 0.47), different topics 0.56–0.98
# (means 0.78–0.98). At 0.6 every topic is one group; only the two close VPN topics
# (drops vs install) share one. At 0.55 and below, topics start to split in pieces.
CLUSTER_DISTANCE = 0.6
# Agglomerative clustering is quadratic in memory; the report reads the newest questions.
MAX_QUESTIONS = 5000
SAMPLES_PER_GAP = 5
# Words of a topic's questions that its nearest article never uses, shown at most.
MISSING_WORDS_SHOWN = 8

GAP_KINDS = (FeedbackKind.UNANSWERED, FeedbackKind.NOT_HELPFUL, FeedbackKind.TICKET)

# A question in, the articles the assistant finds for it out (best first).
NearestArticles = Callable[[str], Sequence[SearchHit]]
# An article id and questions in, the questions' words the article never uses out.
WordsLacking = Callable[[str, Sequence[str]], list[str]]


@dataclass(frozen=True)
class GapQuestion:
    text: str
    reason: str  # unanswered / not_helpful / ticket
    asked_at: datetime


@dataclass
class Gap:
    questions: list[GapQuestion]
    nearest: SearchHit | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    # The samples' words the nearest article never uses, the most asked first: often
    # why it was not found or did not help ("android" asked, "smartphones" written).
    missing_words: list[str] = field(default_factory=list)

    @property
    def volume(self) -> int:
        return len(self.questions)

    @property
    def samples(self) -> list[str]:
        """The most frequent wordings first, then the newest."""
        counts = Counter(question.text for question in self.questions)
        newest = sorted(self.questions, key=lambda q: q.asked_at, reverse=True)
        ordered = sorted(dict.fromkeys(q.text for q in newest), key=lambda t: -counts[t])
        return ordered[:SAMPLES_PER_GAP]

    @property
    def last_asked(self) -> datetime:
        return max(question.asked_at for question in self.questions)

    def as_json(self) -> dict[str, Any]:
        return {
            "volume": self.volume,
            "reasons": self.reasons,
            "samples": self.samples,
            "last_asked": self.last_asked.isoformat(),
            "nearest_article": None
            if self.nearest is None
            else {
                "id": self.nearest.article_id,
                "title": self.nearest.title,
                "score": self.nearest.score,
                "missing_words": self.missing_words,
            },
        }


def unsettled_questions(
    session_factory: sessionmaker[Session], since: datetime
) -> list[GapQuestion]:
    """Each question once per conversation (an unhelpful answer that became a ticket is
    one question, not two), newest last."""
    seen: dict[tuple[str, str], GapQuestion] = {}
    covered_tickets: set[str] = set()
    for event in ArticleFeedbackLog(session_factory).events_since(since, GAP_KINDS):
        if event.ticket_number:
            covered_tickets.add(event.ticket_number)
        text = event.question.strip()
        if not text:
            continue
        key = (event.conversation_key, _normalized(text))
        if key not in seen:
            seen[key] = GapQuestion(text, event.kind, event.created_at)
    with session_factory.begin() as session:
        tickets = session.scalars(
            select(Ticket)
            .where(Ticket.created_at >= since, Ticket.category == "general")
            .order_by(Ticket.created_at)
        ).all()
        for ticket in tickets:
            if ticket.number is None or ticket.number in covered_tickets:
                continue
            seen[(f"ticket:{ticket.number}", _normalized(ticket.title))] = GapQuestion(
                ticket.title, FeedbackKind.TICKET.value, ticket.created_at
            )
    questions = sorted(seen.values(), key=lambda q: q.asked_at)
    return questions[-MAX_QUESTIONS:]


def cluster_gaps(
    questions: Sequence[GapQuestion],
    embedder: Embedder,
    nearest_articles: NearestArticles | None = None,
    distance: float = CLUSTER_DISTANCE,
    words_lacking: WordsLacking | None = None,
) -> list[Gap]:
    """Group questions by meaning; the biggest group (then the most recent) first. With
    `words_lacking`, each topic also names the words its nearest article never uses."""
    if not questions:
        return []
    vectors = embedder.embed([question.text for question in questions])
    if len(questions) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        labels = AgglomerativeClustering(
            n_clusters=None,
            distance_threshold=distance,
            metric="cosine",
            linkage="average",
        ).fit_predict(vectors)
    gaps: list[Gap] = []
    for label in sorted(set(int(value) for value in labels)):
        members = [index for index, value in enumerate(labels) if int(value) == label]
        gap = Gap(
            questions=[questions[index] for index in members],
            reasons=dict(Counter(questions[index].reason for index in members)),
        )
        if nearest_articles is not None:
            # What the bot shows for the topic's most asked wording: the article that
            # came closest, and the one an edit should fix or a new article beat.
            hits = nearest_articles(gap.samples[0])
            gap.nearest = hits[0] if hits else None
            if gap.nearest is not None and words_lacking is not None:
                lacking = words_lacking(gap.nearest.article_id, gap.samples)
                gap.missing_words = lacking[:MISSING_WORDS_SHOWN]
        gaps.append(gap)
    return sorted(gaps, key=lambda gap: (-gap.volume, -gap.last_asked.timestamp()))


def _normalized(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()
