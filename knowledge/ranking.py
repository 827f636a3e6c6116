"""A second look at the best few articles: does the question name, or mean, what the title says?

The fused score reads passages, and in a knowledge base of overlapping articles
("How to report a security incident", "You must report incidents within one hour",
"Security incident contacts") several passages speak to the same question. An
article's title says what the article is *for*, so two cheap signals of the title are
added to the fused score of the top few:

- the share of the question's words that the title holds (a field weighting that needs
  no second index), and
- the cosine of the question and the title's own embedding ("how quickly must I report
  an incident" means "within one hour" without sharing its words). Titles are embedded
  once each and kept (TitleMeanings, persisted beside the index by the runtime), so the
  re-rank costs ten dot products per question, not ten embeddings.

The weights were chosen on the dev question sets (bench/eval_kb.py) and checked on the
held-out questions.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from knowledge.index import SearchHit
from knowledge.lexical import tokenize

if TYPE_CHECKING:  # the embedder's module loads the model runtime: not needed to rank
    from nlu.embedding import Embedder

logger = logging.getLogger(__name__)

TITLE_WEIGHT = 0.1
TITLE_MEANING_WEIGHT = 0.15
# Candidates re-ranked: enough that an article fusion put fourth or fifth can rise.
RERANK_DEPTH = 10


class TitleMeanings:
    """The embeddings of article titles, each title embedded once and then looked up.

    With a `path` the vectors are read from it at start and written back by `save`, so
    a restart embeds nothing; a title not yet known (an article synced by another
    process) is embedded on the first question that finds it. Safe to share between
    threads: lookups read a dict, additions happen under a lock.
    """

    def __init__(self, embedder: Embedder, path: Path | None = None, model: str = "") -> None:
        self.embedder = embedder
        self.path = path
        self.model = model
        self._vectors: dict[str, npt.NDArray[np.float32]] = {}
        self._lock = threading.Lock()
        if path is not None:
            self._load(path)

    def __len__(self) -> int:
        return len(self._vectors)

    def vectors(self, titles: Sequence[str]) -> npt.NDArray[np.float32]:
        """One unit vector per title, in order; unknown titles are embedded in one batch."""
        missing = list(dict.fromkeys(title for title in titles if title not in self._vectors))
        if missing:
            self._add(missing)
        known = self._vectors
        if not titles:
            return np.empty((0, 0), dtype=np.float32)
        return np.stack([known[title] for title in titles])

    def keep_only(self, titles: Iterable[str]) -> int:
        """Know exactly these titles (a sync's articles): embed the new, drop the retired.
        Returns how many were embedded."""
        wanted = list(dict.fromkeys(titles))
        missing = [title for title in wanted if title not in self._vectors]
        if missing:
            self._add(missing)
        with self._lock:
            self._vectors = {title: self._vectors[title] for title in wanted}
        return len(missing)

    def save(self) -> None:
        """Write the vectors to `path` atomically (readers see the old file or the new)."""
        if self.path is None:
            return
        with self._lock:
            titles = list(self._vectors)
            vectors = (
                np.stack([self._vectors[title] for title in titles])
                if titles
                else np.empty((0, 0), dtype=np.float32)
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, scratch = tempfile.mkstemp(dir=self.path.parent, suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as file:
                np.savez(
                    file, titles=np.array(titles, dtype=str), vectors=vectors, model=self.model
                )
            os.replace(scratch, self.path)
        except BaseException:
            Path(scratch).unlink(missing_ok=True)
            raise

    def _add(self, titles: list[str]) -> None:
        embedded = np.asarray(self.embedder.embed(titles), dtype=np.float32)
        with self._lock:
            merged = dict(self._vectors)
            merged.update(zip(titles, embedded, strict=True))
            self._vectors = merged  # swapped whole: a reader never sees it half-updated

    def _load(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as stored:
                if str(stored["model"]) != self.model:
                    return  # another model's vectors: embed afresh
                titles = [str(title) for title in stored["titles"]]
                vectors = np.asarray(stored["vectors"], dtype=np.float32)
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError) as error:
            logger.warning("ignoring unreadable title vectors %s: %s", path, error)
            return
        self._vectors = dict(zip(titles, vectors, strict=True)) if titles else {}


def rerank(
    hits: Sequence[SearchHit],
    query_text: str,
    query_vector: npt.NDArray[np.float32] | None = None,
    titles: TitleMeanings | None = None,
    *,
    word_weight: float = TITLE_WEIGHT,
    meaning_weight: float = TITLE_MEANING_WEIGHT,
) -> list[SearchHit]:
    """The hits re-scored by fused score + word_weight × the share of the question's
    terms found in the title + meaning_weight × the cosine of question and title (when
    the title meanings and the question's vector are given), best first; each hit keeps
    that cosine as its title_similarity."""
    if not hits:
        return []
    terms = set(tokenize(query_text))
    bonus = np.zeros(len(hits))
    if terms and word_weight:
        bonus += [word_weight * len(terms & set(tokenize(hit.title))) / len(terms) for hit in hits]
    similarity: npt.NDArray[np.floating[Any]] = np.zeros(len(hits))
    if titles is not None and query_vector is not None:
        vectors = titles.vectors([hit.title for hit in hits])
        query = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        # Kept on the hit even when it does not move the order: the decision weighs it.
        similarity = vectors @ query
        bonus += meaning_weight * similarity
    if not bonus.any() and not similarity.any():
        return list(hits)
    rescored = [
        replace(
            hit,
            score=round(hit.score + float(extra), 4),
            title_similarity=round(float(cosine), 4),
        )
        for hit, extra, cosine in zip(hits, bonus, similarity, strict=True)
    ]
    return sorted(rescored, key=lambda hit: (-hit.score, hit.article_id))


def rerank_by_title(
    hits: Sequence[SearchHit], query_text: str, weight: float = TITLE_WEIGHT
) -> list[SearchHit]:
    """The hits re-scored by the title's words alone (no title meanings at hand)."""
    return rerank(hits, query_text, word_weight=weight, meaning_weight=0.0)
