"""A second look at the best few articles: does the question name what the title names?

The fused score reads passages, and in a knowledge base of overlapping articles
("How to report a security incident", "You must report incidents within one hour",
"Security incident contacts") several passages speak to the same question. An
article's title says what the article is *for*, so the share of the question's words
that its title holds is added to the fused score of the top few, a cheap field
weighting that needs no second index. The weight was chosen on the dev question sets
(bench/eval_kb.py) and checked on held-out questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from knowledge.index import SearchHit
from knowledge.lexical import tokenize

TITLE_WEIGHT = 0.1
# Candidates re-ranked: enough that an article fusion put fourth or fifth can rise.
RERANK_DEPTH = 10


def rerank_by_title(
    hits: Sequence[SearchHit], query_text: str, weight: float = TITLE_WEIGHT
) -> list[SearchHit]:
    """The hits re-scored by fused score + weight × the share of the question's terms
    found in the article's title, best first."""
    terms = set(tokenize(query_text))
    if not terms or weight == 0.0:
        return list(hits)
    rescored = [
        replace(
            hit,
            score=round(hit.score + weight * len(terms & set(tokenize(hit.title))) / len(terms), 4),
        )
        for hit in hits
    ]
    return sorted(rescored, key=lambda hit: (-hit.score, hit.article_id))
