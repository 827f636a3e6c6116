"""BM25 over passages, kept as term frequencies so one article can be added or retired alone.

bm25s's own index folds each term's IDF into the stored scores, so changing one article
would mean re-indexing the whole corpus. Here a segment keeps raw term frequencies
(a sparse passage × term matrix); IDF and length normalisation are applied at query time
from statistics the caller passes in, which stay exact across segments and retirements.
Tokenising (lower case, bm25s's English stop words, Snowball stemming) is shared by
passages and questions, so "printing" finds "printer" and "the" finds nothing.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import numpy.typing as npt
import Stemmer
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_EN_PLUS
from scipy import sparse

K1 = 1.2
B = 0.75
_WORD = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN)
# Words search reads but that tell a person nothing about a topic ("my", "can", "how").
_FUNCTION_WORDS = frozenset(STOPWORDS_EN_PLUS)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


# Texts up to this long (questions, titles, single words) are tokenized once and then
# looked up: one question is tokenized by the search, the titles' re-rank, the coverage
# check and the synonym expansion, and the same titles come back question after question.
_REMEMBERED_TEXT_CHARS = 200


def tokenize(text: str) -> list[str]:
    if len(text) <= _REMEMBERED_TEXT_CHARS:
        return list(_remembered_tokens(text))
    return _tokens(text)


@lru_cache(maxsize=8192)
def _remembered_tokens(text: str) -> tuple[str, ...]:
    return tuple(_tokens(text))


def _tokens(text: str) -> list[str]:
    words = [word for word in _WORD.findall(text.lower()) if word not in _STOPWORDS]
    return list(_stemmer().stemWords(words))


def content_words_and_terms(text: str) -> list[tuple[str, str]]:
    """Each word of the text that says what it is about, as written (lower case) and as
    the term search reads: ("printing", "print"). Function words ("my", "can", "how")
    are left out, though search reads some of them. For telling people which of their
    words matter."""
    words = [word for word in _WORD.findall(text.lower()) if word not in _FUNCTION_WORDS]
    return list(zip(words, _stemmer().stemWords(words), strict=True))


@dataclass(frozen=True)
class CorpusStats:
    """What BM25 needs about the live corpus as a whole: size, mean length, term counts."""

    passages: int
    total_length: int
    document_frequency: dict[str, int]

    @property
    def mean_length(self) -> float:
        return self.total_length / self.passages if self.passages else 1.0

    def idf(self, term: str) -> float:
        df = self.document_frequency.get(term, 0)
        return math.log(1.0 + (self.passages - df + 0.5) / (df + 0.5))

    @property
    def unseen_idf(self) -> float:
        """The IDF of a word no passage holds: the most any word can weigh."""
        return math.log(1.0 + (self.passages + 0.5) / 0.5)


class LexicalSegment:
    """Term frequencies of a fixed list of passages (rows), searchable by BM25."""

    def __init__(
        self,
        vocabulary: dict[str, int],
        frequencies: sparse.csc_matrix,
        lengths: npt.NDArray[np.int32],
    ) -> None:
        self.vocabulary = vocabulary
        self.frequencies = frequencies
        self.lengths = lengths
        self._norm_cache: tuple[float, npt.NDArray[np.float64]] | None = None

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> LexicalSegment:
        return cls.from_tokens(tokenize(text) for text in texts)

    @classmethod
    def from_tokens(cls, token_lists: Iterable[Sequence[str]]) -> LexicalSegment:
        vocabulary: dict[str, int] = {}
        rows: list[int] = []
        columns: list[int] = []
        counts: list[int] = []
        lengths: list[int] = []
        for row, tokens in enumerate(token_lists):
            lengths.append(len(tokens))
            for term, count in Counter(tokens).items():
                rows.append(row)
                columns.append(vocabulary.setdefault(term, len(vocabulary)))
                counts.append(count)
        shape = (len(lengths), max(len(vocabulary), 1))
        matrix = sparse.csc_matrix(
            (np.asarray(counts, dtype=np.float32), (rows, columns)), shape=shape
        )
        return cls(vocabulary, matrix, np.asarray(lengths, dtype=np.int32))

    @property
    def size(self) -> int:
        return int(self.lengths.shape[0])

    def document_frequency(self) -> dict[str, int]:
        return dict(self._document_frequency)

    @cached_property
    def _document_frequency(self) -> dict[str, int]:
        per_term = np.diff(self.frequencies.indptr)
        return {term: int(per_term[column]) for term, column in self.vocabulary.items()}

    @cached_property
    def _terms(self) -> list[str]:
        names = [""] * self.frequencies.shape[1]
        for term, column in self.vocabulary.items():
            names[column] = term
        return names

    def term_counts(self, rows: Iterable[int]) -> Counter[str]:
        """How many of these passages contain each term (to take them out of the stats)."""
        counts: Counter[str] = Counter()
        chosen = np.fromiter(rows, dtype=np.int64)
        if not chosen.size:
            return counts
        # One pass over the term columns' row numbers, at C speed: a row-wise copy of the
        # matrix would cost half a second at 500k passages on the first update after a load.
        marked = np.zeros(self.size, dtype=np.bool_)
        marked[chosen] = True
        matrix = self.frequencies
        positions = np.flatnonzero(marked[matrix.indices])
        columns = np.searchsorted(matrix.indptr, positions, side="right") - 1
        per_term = np.bincount(columns, minlength=matrix.shape[1])
        for column in np.flatnonzero(per_term):
            counts[self._terms[column]] = int(per_term[column])
        return counts

    def holding(self, terms: Sequence[str], rows: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which of these passages (`rows`) hold each term: one row of booleans
        per term. A binary search in each term's column, so a common word costs no more
        than a rare one."""
        held = np.zeros((len(terms), rows.size), dtype=np.bool_)
        if not rows.size:
            return held
        indptr, indices = self.frequencies.indptr, self.frequencies.indices
        for number, term in enumerate(terms):
            column = self.vocabulary.get(term)
            if column is None:
                continue
            # A column's rows ascend: from_tokens adds the passages in row order, and a
            # loaded segment keeps the arrays it saved.
            holders = indices[indptr[column] : indptr[column + 1]]
            if not holders.size:
                continue
            at = np.minimum(np.searchsorted(holders, rows), holders.size - 1)
            held[number] = holders[at] == rows
        return held

    def _length_norm(self, mean_length: float) -> npt.NDArray[np.float64]:
        """K1 × (1 − B + B × length / mean length) of every passage, kept while the
        corpus's mean length stays (it moves only when an article changes)."""
        cached = self._norm_cache
        if cached is not None and cached[0] == mean_length:
            return cached[1]
        norm = np.asarray(K1 * (1.0 - B + B * self.lengths / mean_length), dtype=np.float64)
        self._norm_cache = (mean_length, norm)
        return norm

    def scores(
        self, query_terms: Sequence[str], stats: CorpusStats, top: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """(rows, BM25 scores) of the passages sharing a term with the query; with `top`,
        only that many of the best (in no particular order)."""
        length_norm = self._length_norm(stats.mean_length)
        if self.frequencies.data.dtype != np.float32:  # the workspace's arithmetic assumes it
            return self._scores_allocating(query_terms, stats, top)
        # Every array below is this thread's, reused from search to search: a common term
        # of a 500k-passage segment made ~20 MB of temporaries per search, which glibc
        # handed back as fresh pages each time (~15 ms of page faults at 100k articles).
        # The arithmetic is the expression of `_scores_allocating`, step by step with the
        # same dtypes, so the scores are the same to the bit.
        work = _workspace(self.size)
        total = work.total[: self.size]  # all zero between searches
        try:
            return self._scores_into(work, total, query_terms, stats, length_norm, top)
        except BaseException:
            total.fill(0.0)  # an interrupted search must not leave its sums behind
            raise

    def _scores_into(
        self,
        work: _Workspace,
        total: npt.NDArray[np.float32],
        query_terms: Sequence[str],
        stats: CorpusStats,
        length_norm: npt.NDArray[np.float64],
        top: int | None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        indptr, indices, data = (
            self.frequencies.indptr,
            self.frequencies.indices,
            self.frequencies.data,
        )
        touched = False
        for term, repeats in Counter(query_terms).items():
            column = self.vocabulary.get(term)
            if column is None:
                continue
            start, end = indptr[column], indptr[column + 1]
            if start == end:
                continue
            count = int(end - start)
            # As intp in place: take and put would convert the stored int32 rows to a
            # fresh array otherwise.
            rows = work.rows[:count]
            np.copyto(rows, indices[start:end], casting="safe")
            tf = data[start:end]
            weight = stats.idf(term) * repeats
            denominator, share, held = work.wide[:count], work.narrow[:count], work.held[:count]
            np.take(length_norm, rows, out=denominator, mode="clip")
            np.add(tf, denominator, out=denominator)  # tf + norm, in float64
            np.multiply(tf, weight, out=share)  # weight × tf, in float32
            np.multiply(share, K1 + 1.0, out=share)
            np.divide(share, denominator, out=denominator)
            np.copyto(share, denominator, casting="same_kind")  # rounded to float32
            # A term's rows are distinct, so gather, add and scatter is `total[rows] += share`.
            np.take(total, rows, out=held, mode="clip")
            np.add(held, share, out=held)
            np.put(total, rows, held, mode="clip")
            touched = True
        if not touched:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        mask = work.mask[: self.size]
        np.not_equal(total, 0.0, out=mask)
        # The scored rows in row order. (np.compress into a kept array took 20x longer
        # than nonzero: half a millisecond at 50k passages.)
        hit = np.flatnonzero(mask)
        found = hit.size
        values = np.take(total, hit, out=work.narrow[:found], mode="clip")
        if top is not None and found > top:
            ranked = np.negative(values, out=work.held[:found])
            best = np.argpartition(ranked, top - 1)[:top]
            rows_found, scores_found = hit[best], values[best]
        else:
            rows_found, scores_found = hit, values.copy()
        # Every non-zero score back to zero: when a common word scored most rows,
        # clearing the whole buffer is a memset, far cheaper than scattering zeros.
        if found > self.size // 8:
            total.fill(0.0)
        else:
            np.put(total, hit, 0.0, mode="clip")
        return rows_found, scores_found

    def _scores_allocating(
        self, query_terms: Sequence[str], stats: CorpusStats, top: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """`scores` with fresh arrays, for term counts not stored as float32."""
        total: npt.NDArray[np.float32] | None = None
        length_norm = self._length_norm(stats.mean_length)
        indptr, indices, data = (
            self.frequencies.indptr,
            self.frequencies.indices,
            self.frequencies.data,
        )
        for term, repeats in Counter(query_terms).items():
            column = self.vocabulary.get(term)
            if column is None:
                continue
            start, end = indptr[column], indptr[column + 1]
            if start == end:
                continue
            rows = indices[start:end]
            tf = data[start:end]
            norm = length_norm[rows]
            weight = stats.idf(term) * repeats
            if total is None:
                total = np.zeros(self.size, dtype=np.float32)
            total[rows] += (weight * tf * (K1 + 1.0) / (tf + norm)).astype(np.float32)
        if total is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        hit = np.flatnonzero(total)
        if top is not None and hit.size > top:
            hit = hit[np.argpartition(-total[hit], top - 1)[:top]]
        return hit.astype(np.int64), total[hit]


class _Workspace:
    """One thread's BM25 scratch arrays for segments of up to `capacity` passages."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.total = np.zeros(capacity, dtype=np.float32)
        self.wide = np.empty(capacity, dtype=np.float64)
        self.narrow = np.empty(capacity, dtype=np.float32)
        self.held = np.empty(capacity, dtype=np.float32)
        self.mask = np.empty(capacity, dtype=np.bool_)
        self.rows = np.empty(capacity, dtype=np.intp)


_workspaces = threading.local()


def _workspace(size: int) -> _Workspace:
    """This thread's workspace, grown to hold a segment of `size` passages."""
    work: _Workspace | None = getattr(_workspaces, "work", None)
    if work is None or work.capacity < size:
        work = _Workspace(max(size, 1))
        _workspaces.work = work
    return work


def expand_query(text: str, normalized: str) -> str:
    """The question as typed plus the canonical spellings its synonyms map to.

    Replacing "2fa" by "mfa" would lose an article that says "2FA"; adding "mfa"
    keeps both, and BM25 matches whichever the article uses.
    """
    typed = set(tokenize(text))
    extra = [term for term in normalized.split() if not set(tokenize(term)) <= typed]
    return f"{text} {' '.join(extra)}" if extra else text
