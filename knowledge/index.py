"""The search index of article passages: dense (faiss) and BM25, fused; kept in TIER0_HOME.

An index is a *base* segment (every passage at the last full build) plus a small *delta*
segment (passages of articles added or edited since) and the base rows that were
retired or replaced. Readers search one immutable snapshot of those; a writer builds the
next snapshot aside and swaps it in with a single assignment, so a search never sees a
half-applied change. On disk a build folder holds the delta and the manifest, a segment
folder the base; `CURRENT` is switched to a new build by an atomic rename.

Up to EXACT_SEARCH_LIMIT passages the dense search is exact (a flat inner-product
scan); beyond it a product-quantization prefilter (a scan of 4-bit codes, then the best
candidates scored exactly) is used, its candidate count chosen for recall@5 ≥ 0.95
against exact search on stand-in questions near the passages themselves. (Segments saved
with the binary prefilter used before still load and search with it.)
"""

from __future__ import annotations

import fcntl
import json
import math
import re
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
from scipy import sparse

from knowledge.answerability import AnswerCalibration, load_calibration
from knowledge.articles import Article, is_internal_fingerprint
from knowledge.chunking import Chunk, chunk_article
from knowledge.lexical import K1, CorpusStats, LexicalSegment, content_words_and_terms, tokenize
from knowledge.passages import ArticleRows, PassageTable, mapped_array
from nlu.embedding import Embedder, Vectors

# 4: passages of at most 400 characters (were 700); 5: each passage keeps what joined it
# to the one before (Chunk.joined_by). An index built before is rebuilt.
INDEX_FORMAT_VERSION = 5
PASSAGE_CHARS = 600
EXACT_SEARCH_LIMIT = 200_000
# The approximate index's product quantization: one 4-bit code per this many dimensions
# (32 codes, 16 bytes, for 384), its centres learnt from this many of the vectors.
# Chosen on the 1M bench's clustered vectors: 8 codes of 48 dimensions needed 800+
# candidates for recall@5 0.9, 24 codes 400 for 0.985, 32 codes 100 for 0.99.
PRODUCT_GROUP_DIMENSIONS = 12
PRODUCT_TRAINING_SAMPLE = 20_000
# The delta is merged into a fresh base once it outgrows this share of the base, so
# searches keep scanning one big segment and one small one.
COMPACT_SHARE = 0.05
COMPACT_MIN_PASSAGES = 2_000
# How much the dense cosine weighs against the BM25 share of the question's terms in
# the weighted fusion; chosen on the dev sets (bench/eval_kb.py prints the sweep).
DENSE_WEIGHT = 0.5
RRF_K = 60
STALE_BUILD_SECONDS = 600.0
# How long a reader keeps following CURRENT while writers replace builds under it.
LOAD_PATIENCE_SECONDS = 10.0
# The dense codes saved beside a segment's vectors (memory-mapped at load).
QUANTIZED_CODES_FILE = "dense_float16.faiss"
BINARY_CODES_FILE = "dense_binary.faiss"
PRODUCT_CODES_FILE = "dense_pq4.faiss"

ProgressCallback = Callable[[int, int], None]


class Fusion(StrEnum):
    WEIGHTED = "weighted"
    RRF = "rrf"


class RetrievalMode(StrEnum):
    DENSE = "dense"
    LEXICAL = "bm25"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class SearchHit:
    article_id: str
    title: str
    passage: str
    heading: str
    score: float
    path: str
    dense_score: float = 0.0  # cosine of the question and the passage
    lexical_score: float = 0.0  # BM25 as a share of what the question's terms could score
    # How rare the rarest of the question's words the article never uses is: its IDF over
    # that of a word no passage holds (1.0: a word the knowledge base never uses, such as
    # "annual leave" or "direct deposit" in an IT one; 0.0: the article uses them all).
    # Filled in by KnowledgeIndex.with_coverage for the hits a decision is taken on.
    uncovered_rarity: float = 0.0
    title_similarity: float = 0.0  # cosine of the question and the title (the re-rank's)


# -- passages shown -----------------------------------------------------------------------


# Between sentences, or at a line break; not after "4." opening a numbered list item, which
# would part the item from its number (and a list shown from there is no list).
_UNIT_BREAK = re.compile(r"(?<=[.!?])(?<!^\d\.)(?<!^\d\d\.)[ \t]+|\n+", re.MULTILINE)


def _units(text: str) -> list[str]:
    """Sentences and lines, in order, with their trailing whitespace (they join back)."""
    units: list[str] = []
    position = 0
    for match in _UNIT_BREAK.finditer(text):
        units.append(text[position : match.end()])
        position = match.end()
    if position < len(text):
        units.append(text[position:])
    return [unit for unit in units if unit]


def best_passage(text: str, query_terms: Sequence[str] = (), limit: int = PASSAGE_CHARS) -> str:
    """The sentences of a passage that speak to the question, at most `limit` characters.

    The window of consecutive sentences holding most of the question's terms wins,
    preferably one opening on such a sentence (else the earliest), so a long section
    shows the lines that answer.
    """
    if len(text) <= limit:
        return text
    units = _units(text)
    wanted = set(query_terms)
    weights = [len(wanted.intersection(tokenize(unit))) for unit in units]
    best_start, best_end = 0, 0
    best_rank: tuple[int, bool] = (-1, False)
    for start in range(len(units)):
        length, weight, end = 0, 0, start
        while end < len(units) and length + len(units[end]) <= limit:
            length += len(units[end])
            weight += weights[end]
            end += 1
        if end == start:  # one sentence longer than the limit: cut it at a word
            end = start + 1
        # Most of the question's words first; then a window that opens on one of them.
        rank = (weight, weights[start] > 0)
        if rank > best_rank:
            best_start, best_end, best_rank = start, end, rank
    shown = "".join(units[best_start:best_end]).strip()
    if len(shown) > limit:
        cut = shown[:limit]
        shown = cut[: cut.rfind(" ")] if cut.rfind(" ") > limit // 2 else cut
    # Shown from the start of a line (a list item, a paragraph), the "…" goes on a line of
    # its own, so that Markdown still reads the block (a list item after text is no item).
    prefix = "" if best_start == 0 else "…\n" if units[best_start - 1].endswith("\n") else "… "
    suffix = " …" if best_end < len(units) or len(shown) < len("".join(units[best_start:])) else ""
    return f"{prefix}{shown.rstrip()}{suffix}"


def _shown_text(segment: Segment, row: int) -> str:
    """The passage found and what follows it in the same section, up to what a reply
    shows (PASSAGE_CHARS). Passages are cut small so that each vector speaks for one
    thing; the reply still reads on, so a list of steps cut in two shows its next steps."""
    found = segment.chunks[row]
    text = found.text
    following = row + 1
    while len(text) < PASSAGE_CHARS and following < segment.size:
        after = segment.chunks[following]
        if after.article_id != found.article_id or after.heading != found.heading:
            break
        # A section's first passage has no joiner: a heading of the same name began it.
        joiner = after.joined_by or "\n\n"
        text = f"{text}{joiner}{after.text}"
        following += 1
    return text


# -- segments -----------------------------------------------------------------------------


def exact_neighbours(vectors: Vectors, queries: Vectors, k: int) -> npt.NDArray[np.int64]:
    """Rows of the k nearest vectors of each query by inner product, in blocks (no copy)."""
    best_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    best_rows = np.zeros((len(queries), k), dtype=np.int64)
    for start in range(0, len(vectors), 100_000):
        block = queries @ vectors[start : start + 100_000].T
        scores = np.concatenate([best_scores, block], axis=1)
        positions = np.arange(start, start + block.shape[1], dtype=np.int64)
        rows = np.concatenate([best_rows, np.broadcast_to(positions, block.shape)], axis=1)
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_scores = np.take_along_axis(scores, top, axis=1)
        best_rows = np.take_along_axis(rows, top, axis=1)
    return best_rows


# A question sits at about this cosine from the passage that answers it (MiniLM on the
# dev sets: 0.5-0.8), further from its passage than a near-copy would be; the approximate
# index is tuned on stand-in questions that far from stored passages.
QUESTION_COSINE = 0.7


def stand_in_questions(vectors: Vectors, count: int, seed: int = 7) -> Vectors:
    """Stored passages moved in a random direction to QUESTION_COSINE of where they were."""
    rng = np.random.default_rng(seed)
    rows = rng.choice(vectors.shape[0], size=min(count, vectors.shape[0]), replace=False)
    sample = vectors[rows]
    noise = rng.normal(size=sample.shape).astype(np.float32)
    noise -= (noise * sample).sum(axis=1, keepdims=True) * sample  # orthogonal to the passage
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    sideways = math.sqrt(1.0 - QUESTION_COSINE**2)
    queries: Vectors = (QUESTION_COSINE * sample + sideways * noise).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return queries


class BinaryPrefilter:
    """Approximate dense search: Hamming distance over one bit per dimension, then exact.

    Segments saved before the product-quantization prefilter replaced it load with it.

    Each vector is kept as the signs of its dimensions around the corpus mean (48 bytes
    for 384 dimensions); a question's nearest codes are found by a Hamming scan, and
    those `candidates` are scored exactly against the float vectors (the segment's own,
    not a copy). The scan reads 8x less memory than an exact one, builds in a second for
    a million passages, and the exact re-rank puts the scores back as they are.
    """

    def __init__(self, vectors: Vectors, candidates: int = 100) -> None:
        self.vectors = vectors
        self.mean = vectors.mean(axis=0).astype(np.float32)
        self.codes = faiss.IndexBinaryFlat(vectors.shape[1] + (-vectors.shape[1]) % 8)
        for start in range(0, len(vectors), 100_000):
            self.codes.add(self._encode(vectors[start : start + 100_000]))
        self.candidates = candidates

    @classmethod
    def from_saved(cls, vectors: Vectors, folder: Path, stored: dict[str, Any]) -> BinaryPrefilter:
        """The prefilter saved with `save`, its codes memory-mapped (encoding them again
        reads every vector: a third of a 100k-article load); an older save without codes
        is encoded again."""
        if "mean" not in stored or not (folder / BINARY_CODES_FILE).exists():
            return cls(vectors, int(stored["candidates"]))
        prefilter = cls.__new__(cls)
        prefilter.vectors = vectors
        prefilter.mean = np.asarray(stored["mean"], dtype=np.float32)
        codes = faiss.read_index_binary(str(folder / BINARY_CODES_FILE), faiss.IO_FLAG_MMAP_IFC)
        if (
            not isinstance(codes, faiss.IndexBinaryFlat)
            or codes.ntotal != len(vectors)
            or prefilter.mean.shape != (vectors.shape[1],)
        ):
            raise ValueError(f"{folder}: the binary codes do not match the vectors")
        prefilter.codes, prefilter.candidates = codes, int(stored["candidates"])
        return prefilter

    def save(self, folder: Path) -> dict[str, Any]:
        faiss.write_index_binary(self.codes, str(folder / BINARY_CODES_FILE))
        # float32 → JSON → float32 is exact: the mean, and so every code, comes back as is.
        return {"kind": "binary", "candidates": self.candidates, "mean": self.mean.tolist()}

    def _encode(self, vectors: Vectors) -> npt.NDArray[np.uint8]:
        return np.packbits(vectors > self.mean, axis=1)

    @property
    def ntotal(self) -> int:
        return int(self.vectors.shape[0])

    def search(
        self, queries: Vectors, k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """(scores, rows) of the k best vectors of each query, best first, as faiss does."""
        wanted = min(max(self.candidates, k), self.ntotal)
        _, found = self.codes.search(self._encode(queries), wanted)
        return _rescored(self.vectors, queries, found, k)


class ProductQuantizedPrefilter:
    """Approximate dense search: 4-bit product-quantization codes scanned, then exact.

    The vector's dimensions are cut into groups of PRODUCT_GROUP_DIMENSIONS, and each
    group is kept as the nearest of 16 centres learnt from a sample of the segment's own
    vectors: 16 bytes for 384 dimensions, a third of the binary prefilter's signs. The
    question itself stays in float: faiss's fast scan (IndexPQFastScan) adds up its
    products with the chosen centres from in-register tables, which scores far closer
    to the exact cosine than a Hamming distance between signs. Its best `candidates` are
    scored exactly against the float vectors (the segment's own, not a copy). At 1M
    passages of 384 dimensions the scan reads 16 MB per question where the signs' read
    48 MB; learning the centres and encoding take a few seconds of one core at each full
    build or compaction (HNSW would take minutes).
    """

    def __init__(self, vectors: Vectors, candidates: int = 100) -> None:
        self.vectors = vectors
        dimension = vectors.shape[1]
        groups = max(1, dimension // PRODUCT_GROUP_DIMENSIONS)
        while dimension % groups:
            groups -= 1
        self.codes = faiss.IndexPQFastScan(dimension, groups, 4, faiss.METRIC_INNER_PRODUCT)
        # A fixed sample (and faiss's fixed k-means seed): the same vectors give the same codes.
        sample = np.random.default_rng(0).choice(
            len(vectors), size=min(PRODUCT_TRAINING_SAMPLE, len(vectors)), replace=False
        )
        self.codes.train(np.ascontiguousarray(vectors[np.sort(sample)], dtype=np.float32))
        for start in range(0, len(vectors), 100_000):
            block = vectors[start : start + 100_000]
            self.codes.add(np.ascontiguousarray(block, dtype=np.float32))
        self.candidates = candidates

    @classmethod
    def from_saved(
        cls, vectors: Vectors, folder: Path, stored: dict[str, Any]
    ) -> ProductQuantizedPrefilter:
        """The prefilter saved with `save`: its centres and codes are read (16 bytes a
        passage), the vectors not encoded again."""
        prefilter = cls.__new__(cls)
        prefilter.vectors = vectors
        codes = faiss.read_index(str(folder / PRODUCT_CODES_FILE))
        if (
            not isinstance(codes, faiss.IndexPQFastScan)
            or codes.ntotal != len(vectors)
            or codes.d != vectors.shape[1]
        ):
            raise ValueError(f"{folder}: the product-quantization codes do not match the vectors")
        prefilter.codes, prefilter.candidates = codes, int(stored["candidates"])
        return prefilter

    def save(self, folder: Path) -> dict[str, Any]:
        faiss.write_index(self.codes, str(folder / PRODUCT_CODES_FILE))
        return {"kind": "pq4", "candidates": self.candidates}

    @property
    def ntotal(self) -> int:
        return int(self.vectors.shape[0])

    def search(
        self, queries: Vectors, k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """(scores, rows) of the k best vectors of each query, best first, as faiss does."""
        wanted = min(max(self.candidates, k), self.ntotal)
        _, found = self.codes.search(np.ascontiguousarray(queries, dtype=np.float32), wanted)
        return _rescored(self.vectors, queries, found, k)


def _rescored(
    vectors: Vectors, queries: Vectors, found: npt.NDArray[np.int64], k: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """The k best of each query's candidate rows by their exact scores, best first."""
    scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    rows = np.full((len(queries), k), -1, dtype=np.int64)
    for number, query in enumerate(queries):
        candidates = found[number][found[number] >= 0]
        exact = vectors[candidates] @ query
        best = np.argsort(-exact, kind="stable")[:k]
        scores[number, : len(best)] = exact[best]
        rows[number, : len(best)] = candidates[best]
    return scores, rows


Prefilter = BinaryPrefilter | ProductQuantizedPrefilter


def choose_candidates(index: Prefilter, target: float = 0.95) -> int:
    """The fewest prefilter candidates reaching `target` recall@5 against exact search."""
    queries = stand_in_questions(index.vectors, 300)
    truth = exact_neighbours(index.vectors, queries, 5)
    # Fewer would save nothing measurable: re-ranking 100 rows costs ~0.05 ms, the scan
    # ~1.5 ms; and at 50 the 1M bench's recall sat at the 0.95 target with no margin.
    candidates = 100
    while candidates < index.ntotal:
        index.candidates = candidates
        _, found = index.search(queries, 5)
        recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(found, truth, strict=True)])
        if recall >= target + 0.01:  # a margin: real questions are not the sample
            break
        candidates *= 2
    index.candidates = min(candidates, index.ntotal)
    return index.candidates


class ExactScan:
    """Exact dense search: every vector scored against the question (faiss's flat scan).

    Scans the segment's own vectors in place (`faiss.knn`), where an IndexFlatIP would
    hold a second copy of them; the scores and order are those of IndexFlatIP.
    """

    def __init__(self, vectors: Vectors) -> None:
        self.vectors = vectors

    @property
    def ntotal(self) -> int:
        return int(self.vectors.shape[0])

    def search(
        self, queries: Vectors, k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        scores, rows = faiss.knn(queries, self.vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
        return scores, rows


class QuantizedExactScan:
    """Exact dense search that reads half the memory: a float16 scan, then a proof.

    A flat scan of 50k passages reads 77 MB of float32 per question; most of its time is
    memory traffic. Here every vector is also kept in float16 (x̂), which faiss scans
    against the float32 question. That score is within `bound` of the true one, by
    Cauchy-Schwarz |q·x − q·x̂| ≤ ‖q‖·‖x − x̂‖, the largest such distance being measured
    when the codes are made. The float16 scan yields its `m` best; they are scored
    exactly (faiss's flat scan over those rows). A vector outside them scored at most the
    m-th float16 score, so at most that plus `bound` exactly: when that is below the k-th
    exact score, the k best are the exact k best. Otherwise the scan asks for more (at
    last it scans every float32 vector). The answer is the exact search's, never an
    approximation. (int8 codes scan faster, but faiss scores them only against an int8
    question, and the two roundings together left a bound too loose to prove anything.)
    """

    def __init__(self, vectors: Vectors) -> None:
        self.vectors = vectors
        self.codes = faiss.IndexScalarQuantizer(
            vectors.shape[1], faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
        # The largest ‖x − x̂‖, from float16's precision rather than measured (measuring
        # took most of a load): each component is off by at most 2^-10 of itself (11
        # significant bits; twice the rounding error, so truncation is covered too), plus
        # 2^-24 where float16 is subnormal; vectors beyond float16's range scan exactly.
        longest, largest = 0.0, 0.0
        for start in range(0, len(vectors), 100_000):
            block = vectors[start : start + 100_000]
            self.codes.add(block)
            if len(block):
                longest = max(longest, float(np.einsum("ij,ij->i", block, block).max()))
                largest = max(largest, float(np.abs(block).max()))
        self.error = 2.0**-10 * math.sqrt(longest) + 2.0**-24 * math.sqrt(vectors.shape[1])
        if largest >= 60_000.0:
            self.error = math.inf

    @classmethod
    def from_saved(cls, vectors: Vectors, folder: Path, error: float) -> QuantizedExactScan:
        """The scan over codes saved with `save`, memory-mapped: loading reads no vector
        (faiss maps the file read-only; files of a build are never rewritten in place)."""
        scan = cls.__new__(cls)
        scan.vectors = vectors
        codes = faiss.read_index(str(folder / QUANTIZED_CODES_FILE), faiss.IO_FLAG_MMAP_IFC)
        if not isinstance(codes, faiss.IndexScalarQuantizer) or codes.ntotal != len(vectors):
            raise ValueError(f"{folder}: the float16 codes do not match the vectors")
        scan.codes, scan.error = codes, error
        return scan

    def save(self, folder: Path) -> dict[str, Any]:
        faiss.write_index(self.codes, str(folder / QUANTIZED_CODES_FILE))
        return {"kind": "float16", "error": self.error}

    @property
    def ntotal(self) -> int:
        return int(self.vectors.shape[0])

    def search(
        self, queries: Vectors, k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        rows = np.full((len(queries), k), -1, dtype=np.int64)
        for number, query in enumerate(queries):
            found_scores, found_rows = self._search_one(query.reshape(1, -1), k)
            scores[number, : len(found_rows)] = found_scores
            rows[number, : len(found_rows)] = found_rows
        return scores, rows

    def _search_one(
        self, query: Vectors, k: int
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        total = self.ntotal
        # How far a float16 score can be from the exact one (plus float slack).
        bound = float(np.linalg.norm(query)) * self.error + 1e-5
        wanted = min(k + max(k // 2, 32), total)
        while wanted < total // 4:
            coarse, found = self.codes.search(query, wanted)
            # In row order, as the full scan meets them: of equal scores at the k-th
            # place, the same (earliest) rows are kept.
            found = np.sort(found[0][found[0] >= 0])
            exact_scores, order = faiss.knn(
                query, self.vectors[found], min(k, len(found)), metric=faiss.METRIC_INNER_PRODUCT
            )
            # The best any vector left out could score exactly.
            ceiling = float(coarse[0][-1]) + bound
            if len(found) < wanted or float(exact_scores[0][-1]) > ceiling:
                return exact_scores[0], found[order[0]]
            wanted *= 4
        exact_scores, exact_rows = faiss.knn(
            query, self.vectors, k, metric=faiss.METRIC_INNER_PRODUCT
        )
        return exact_scores[0], exact_rows[0]


DenseIndex = ExactScan | QuantizedExactScan | BinaryPrefilter | ProductQuantizedPrefilter
# From this many passages up the exact search scans float16 codes first (below it the
# float scan is short anyway, and the codes would be memory for nothing). At 50k passages
# (one thread, session 7) the float16 scan took 1.4 ms CPU, faiss's float32 scan 2.7 ms,
# its 8-bit scalar-quantizer scan 2.0 ms (decoding costs more than the bytes it saves).
QUANTIZED_SCAN_FROM = 20_000


def _dense_index(vectors: Vectors, approximate: bool | None) -> DenseIndex:
    count = vectors.shape[0]
    if approximate is None:
        approximate = count > EXACT_SEARCH_LIMIT
    if not approximate or count < 1_000:
        if count >= QUANTIZED_SCAN_FROM:
            return QuantizedExactScan(vectors)
        return ExactScan(vectors)
    prefilter = ProductQuantizedPrefilter(vectors)
    choose_candidates(prefilter)
    return prefilter


class Segment:
    """A fixed list of passages with their vectors, dense index and term frequencies.

    Once persisted it also knows the articles (fingerprint and file) it was saved with,
    so a build on top of it records only the articles that changed since.
    """

    def __init__(
        self,
        chunks: Sequence[Chunk],
        vectors: Vectors,
        lexical: LexicalSegment | None = None,
        dense: DenseIndex | None = None,
        *,
        approximate: bool | None = None,
        name: str | None = None,
    ) -> None:
        self.chunks = chunks
        self.vectors = vectors
        self.lexical = lexical or LexicalSegment.from_texts(c.embedding_text for c in chunks)
        self.dense = dense if dense is not None else _dense_index(vectors, approximate)
        self.name = name  # the folder it is persisted in, once it is
        self.articles: dict[str, tuple[str, str]] | None = None  # id → (fingerprint, path)
        self._article_rows: ArticleRows | None = None
        self._saved: tuple[dict[str, tuple[str, str]], dict[str, str], dict[str, str]] | None = None

    def rows_of(self, article_id: str) -> list[int]:
        """The rows of one article's passages (none when it has none here)."""
        if isinstance(self.chunks, PassageTable):
            return self.chunks.rows_of(article_id)
        if self._article_rows is None:
            self._article_rows = ArticleRows.of(self.chunks)
        return self._article_rows.rows_of(article_id)

    def saved_fingerprints_and_paths(self) -> tuple[dict[str, str], dict[str, str]]:
        """The articles it was saved with, as id → fingerprint and id → path (non-empty)."""
        assert self.articles is not None
        if self._saved is None or self._saved[0] is not self.articles:
            fingerprints = {key: value[0] for key, value in self.articles.items()}
            paths = {key: value[1] for key, value in self.articles.items() if value[1]}
            self._saved = (self.articles, fingerprints, paths)
        return self._saved[1], self._saved[2]

    def article_id(self, row: int) -> str:
        """The article of one passage, without decoding the passage."""
        if isinstance(self.chunks, PassageTable):
            return self.chunks.article_id_of(row)
        return self.chunks[row].article_id

    @property
    def size(self) -> int:
        return len(self.chunks)

    @property
    def approximate(self) -> bool:
        return isinstance(self.dense, BinaryPrefilter | ProductQuantizedPrefilter)

    def dense_search(
        self, query: Vectors, wanted: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        if not self.size:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        scores, rows = self.dense.search(query.reshape(1, -1), min(wanted, self.size))
        keep = rows[0] >= 0
        rows, scores = rows[0][keep].astype(np.int64), scores[0][keep]
        # Equal scores (passages with the same text) in row order, whichever scan found them.
        order = np.lexsort((rows, -scores))
        return rows[order], scores[order]

    # persistence
    def save(self, folder: Path, articles: dict[str, tuple[str, str]]) -> None:
        folder.mkdir(parents=True)
        np.save(folder / "vectors.npy", self.vectors)
        passages = (
            self.chunks
            if isinstance(self.chunks, PassageTable)
            else PassageTable.from_chunks(self.chunks)
        )
        passages.save(folder)
        (folder / "articles.json").write_text(json.dumps(articles), encoding="utf-8")
        matrix = self.lexical.frequencies
        # One .npy per array (not one .npz) so that loading can map them.
        for part, array in (
            ("data", matrix.data),
            ("indices", matrix.indices),
            ("indptr", matrix.indptr),
            ("shape", np.asarray(matrix.shape)),
            ("lengths", self.lexical.lengths),
        ):
            np.save(folder / f"lexical_{part}.npy", array)
        (folder / "vocabulary.json").write_text(
            json.dumps(self.lexical.vocabulary), encoding="utf-8"
        )
        if isinstance(self.dense, BinaryPrefilter | ProductQuantizedPrefilter | QuantizedExactScan):
            # Codes are saved and mapped at load: making them again reads every vector.
            (folder / "dense.json").write_text(json.dumps(self.dense.save(folder)), "utf-8")
        self.articles = articles

    @classmethod
    def load(cls, folder: Path) -> Segment:
        chunks = PassageTable.load(folder)
        # Mapped read-only, not read: a process that loads the index reads only the pages
        # its searches touch, and processes on one machine share them. A segment's files
        # are never rewritten (builds are written aside and renamed into place), and a
        # swept file stays readable through its mapping until the reader lets it go.
        vectors = mapped_array(folder / "vectors.npy")
        if vectors.dtype != np.float32 or vectors.ndim != 2:
            vectors = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
        if vectors.shape[0] != len(chunks):
            raise ValueError(f"{folder}: {vectors.shape[0]} vectors for {len(chunks)} passages")
        lexical = _load_lexical(folder)
        dense: DenseIndex | None = None
        dense_file = folder / "dense.json"
        if dense_file.exists():
            stored = json.loads(dense_file.read_text(encoding="utf-8"))
            if stored.get("kind") == "float16":
                dense = QuantizedExactScan.from_saved(vectors, folder, float(stored["error"]))
            elif stored.get("kind") == "pq4":
                dense = ProductQuantizedPrefilter.from_saved(vectors, folder, stored)
            else:
                dense = BinaryPrefilter.from_saved(vectors, folder, stored)
        segment = cls(chunks, vectors, lexical, dense, approximate=False, name=folder.name)
        articles = json.loads((folder / "articles.json").read_text("utf-8"))
        segment.articles = {
            str(article_id): (str(fingerprint), str(path))
            for article_id, (fingerprint, path) in articles.items()
        }
        return segment


def _load_lexical(folder: Path) -> LexicalSegment:
    """A segment's BM25 term frequencies, mapped read-only (scipy keeps the mapped arrays
    as they are); a segment saved before they were kept apart has them in one .npz."""
    if (folder / "lexical_data.npy").exists():
        stored: Mapping[str, npt.NDArray[Any]] = {
            part: mapped_array(folder / f"lexical_{part}.npy")
            for part in ("data", "indices", "indptr", "shape", "lengths")
        }
    else:
        stored = np.load(folder / "lexical.npz")
    matrix = sparse.csc_matrix(
        (stored["data"], stored["indices"], stored["indptr"]),
        shape=tuple(int(size) for size in stored["shape"]),
    )
    vocabulary = json.loads((folder / "vocabulary.json").read_text("utf-8"))
    return LexicalSegment(vocabulary, matrix, stored["lengths"])


def _empty_segment(dimension: int) -> Segment:
    return Segment([], np.zeros((0, dimension), dtype=np.float32))


# -- snapshots ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Snapshot:
    base: Segment
    delta: Segment
    retired_rows: frozenset[int]  # rows of the base no longer live
    fingerprints: dict[str, str]
    paths: dict[str, str]
    stats: CorpusStats
    dead_mask: npt.NDArray[np.bool_] = field(compare=False)

    @cached_property
    def internal(self) -> frozenset[str]:
        """The articles only the IT agents get as answers (audience: agents)."""
        return frozenset(
            article_id
            for article_id, fingerprint in self.fingerprints.items()
            if is_internal_fingerprint(fingerprint)
        )

    def live_chunks(self) -> list[Chunk]:
        kept = [c for row, c in enumerate(self.base.chunks) if row not in self.retired_rows]
        return kept + list(self.delta.chunks)

    def live_vectors(self) -> Vectors:
        alive = ~self.dead_mask
        return np.vstack([self.base.vectors[alive], self.delta.vectors]).astype(np.float32)


def _stats_for(base: Segment, delta: Segment, retired_rows: Iterable[int]) -> CorpusStats:
    retired = list(retired_rows)
    frequency = base.lexical.document_frequency()
    for term, count in base.lexical.term_counts(retired).items():
        frequency[term] -= count
    for term, count in delta.lexical.document_frequency().items():
        frequency[term] = frequency.get(term, 0) + count
    total = int(base.lexical.lengths.sum()) + int(delta.lexical.lengths.sum())
    if retired:
        total -= int(base.lexical.lengths[np.asarray(retired)].sum())
    return CorpusStats(
        passages=base.size - len(retired) + delta.size,
        total_length=total,
        document_frequency=frequency,
    )


def _uncovered_rarity(
    snapshot: _Snapshot, article_ids: Sequence[str], terms: Sequence[str]
) -> dict[str, float]:
    """For each article, the IDF of the rarest question word none of its live passages
    holds, over the IDF of a word no passage holds (0.0 when it holds them all).

    Whether the best article covers what is asked: "how many days of annual leave do i
    get" finds the offboarding article by "leave", but no IT article says "annual".
    """
    unique = sorted(set(terms))
    if not unique or not article_ids:
        return dict.fromkeys(article_ids, 0.0)
    held = _held_by_articles(snapshot, article_ids, unique)
    weights = np.array([snapshot.stats.idf(term) for term in unique])
    rarest = (weights[:, None] * ~held).max(axis=0) / snapshot.stats.unseen_idf
    return dict(zip(article_ids, rarest.tolist(), strict=True))


def _held_by_articles(
    snapshot: _Snapshot, article_ids: Sequence[str], terms: Sequence[str]
) -> npt.NDArray[np.bool_]:
    """terms × articles: does any live passage of the article hold the term. A few binary
    searches per term over the articles' rows."""
    held = np.zeros((len(terms), len(article_ids)), dtype=np.bool_)
    for number, segment in enumerate((snapshot.base, snapshot.delta)):
        if not segment.size:
            continue
        retired = snapshot.retired_rows if number == 0 else frozenset()
        per_article = [
            [row for row in segment.rows_of(article_id) if row not in retired]
            for article_id in article_ids
        ]
        present = [column for column, rows in enumerate(per_article) if rows]
        if not present:
            continue
        rows = np.fromiter((row for column in present for row in per_article[column]), np.int64)
        starts = np.cumsum([0] + [len(per_article[column]) for column in present[:-1]])
        holding = segment.lexical.holding(terms, rows)
        held[:, present] |= np.logical_or.reduceat(holding, starts, axis=1)
    return held


def _snapshot(
    base: Segment,
    delta: Segment,
    retired_rows: frozenset[int],
    fingerprints: dict[str, str],
    paths: dict[str, str],
) -> _Snapshot:
    mask = np.zeros(base.size, dtype=bool)
    if retired_rows:
        mask[np.fromiter(retired_rows, dtype=np.int64)] = True
    return _Snapshot(
        base, delta, retired_rows, fingerprints, paths, _stats_for(base, delta, retired_rows), mask
    )


# -- the index ----------------------------------------------------------------------------


@dataclass
class IndexChanges:
    """What one incremental update did to the index."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)  # same text, another file
    embedded_passages: int = 0
    rebuilt: bool = False  # no usable index (or another embedder): built from scratch

    @property
    def changed(self) -> bool:
        return self.rebuilt or bool(self.added or self.updated or self.retired or self.moved)

    def summary(self) -> str:
        if self.rebuilt:
            return "built anew"
        parts = [
            f"{len(ids)} {label}"
            for label, ids in (
                ("added", self.added),
                ("updated", self.updated),
                ("retired", self.retired),
                ("moved", self.moved),
            )
            if ids
        ]
        if not parts:
            return "already up to date"
        return f"{', '.join(parts)}; {self.embedded_passages} passages embedded"


@dataclass(frozen=True)
class _Pool:
    """One signal's best passages over both segments, best first: each one's segment
    (0 the base, 1 the delta), row and score."""

    segment: npt.NDArray[np.int64]
    row: npt.NDArray[np.int64]
    score: npt.NDArray[np.float64]

    @classmethod
    def merged(
        cls,
        snapshot: _Snapshot,
        found: Sequence[tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]],
        wanted: int,
        scale: float | None = None,
    ) -> _Pool:
        """The `wanted` best of each segment's (rows, scores), retired rows left out,
        each score divided by `scale` when given; of equal scores, the base's first and
        then each segment's own order (a stable sort, as the merge has always been)."""
        segments, rows, scores = [], [], []
        for number, (segment_rows, segment_scores) in enumerate(found):
            if number == 0 and snapshot.retired_rows and segment_rows.size:
                live = ~snapshot.dead_mask[segment_rows]
                segment_rows, segment_scores = segment_rows[live], segment_scores[live]
            segments.append(np.full(segment_rows.size, number, dtype=np.int64))
            rows.append(segment_rows.astype(np.int64, copy=False))
            scores.append(segment_scores.astype(np.float64))
        score = np.concatenate(scores)
        if scale is not None:
            score = score / scale if scale else np.zeros_like(score)
        best = np.argsort(-score, kind="stable")[:wanted]
        return cls(np.concatenate(segments)[best], np.concatenate(rows)[best], score[best])


@dataclass(frozen=True)
class _Candidates:
    """The passages either signal found: the dense ranking's in its order, then those
    found by words only in the lexical order. A rank is -1 where that signal did not
    find the passage (its score is then 0.0)."""

    segment: npt.NDArray[np.int64]
    row: npt.NDArray[np.int64]
    dense: npt.NDArray[np.float64]
    lexical: npt.NDArray[np.float64]
    dense_rank: npt.NDArray[np.int64]
    lexical_rank: npt.NDArray[np.int64]

    @classmethod
    def of(cls, dense: _Pool | None, lexical: _Pool | None) -> _Candidates:
        empty = _Pool(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64))
        dense, lexical = dense or empty, lexical or empty
        # A passage is (segment, row): one integer key per passage to match them up.
        dense_keys, lexical_keys = dense.row * 2 + dense.segment, lexical.row * 2 + lexical.segment
        order = np.argsort(dense_keys)
        at = np.searchsorted(dense_keys, lexical_keys, sorter=order)
        at = order[np.minimum(at, max(len(order) - 1, 0))] if len(order) else at
        shared = dense_keys[at] == lexical_keys if len(order) else np.zeros(len(at), np.bool_)
        new = ~shared
        count, added = len(dense_keys), int(np.count_nonzero(new))
        lexical_score = np.zeros(count + added, dtype=np.float64)
        lexical_rank = np.full(count + added, -1, dtype=np.int64)
        ranks = np.arange(len(lexical_keys), dtype=np.int64)
        lexical_score[at[shared]], lexical_rank[at[shared]] = lexical.score[shared], ranks[shared]
        lexical_score[count:], lexical_rank[count:] = lexical.score[new], ranks[new]
        return cls(
            segment=np.concatenate([dense.segment, lexical.segment[new]]),
            row=np.concatenate([dense.row, lexical.row[new]]),
            dense=np.concatenate([dense.score, np.zeros(added, dtype=np.float64)]),
            lexical=lexical_score,
            dense_rank=np.concatenate(
                [np.arange(count, dtype=np.int64), np.full(added, -1, dtype=np.int64)]
            ),
            lexical_rank=lexical_rank,
        )


class KnowledgeIndex:
    """Passages of the live articles, searchable by meaning and by words; safe to update
    while other threads search (one writer at a time, readers never wait)."""

    calibration: dict[str, Any] | None  # the answer-or-escalate model kept with the index

    def __init__(
        self,
        chunks: Sequence[Chunk],
        vectors: Vectors,
        article_fingerprints: dict[str, str],
        article_paths: dict[str, str],
        embedder_name: str,
        *,
        approximate: bool | None = None,
        fusion: Fusion = Fusion.WEIGHTED,
        dense_weight: float = DENSE_WEIGHT,
        calibration: dict[str, Any] | None = None,
    ) -> None:
        base = Segment(list(chunks), np.asarray(vectors, dtype=np.float32), approximate=approximate)
        self._init(
            base,
            _empty_segment(vectors.shape[1]),
            frozenset(),
            article_fingerprints,
            article_paths,
            embedder_name,
        )
        self.fusion = fusion
        self.dense_weight = dense_weight
        self.calibration = calibration

    def _init(
        self,
        base: Segment,
        delta: Segment,
        retired_rows: frozenset[int],
        fingerprints: dict[str, str],
        paths: dict[str, str],
        embedder_name: str,
    ) -> None:
        self.embedder_name = embedder_name
        self.dimension = int(base.vectors.shape[1])
        self.fusion = Fusion.WEIGHTED
        self.dense_weight = DENSE_WEIGHT
        # How a search with the question's text ranks; evaluations switch it.
        self.text_mode = RetrievalMode.HYBRID
        self.calibration = None
        # The embedder that built it, when known: lets add_or_update(article) embed.
        self.embedder: Embedder | None = None
        self._writer = threading.Lock()
        self._snapshot = _snapshot(base, delta, retired_rows, dict(fingerprints), dict(paths))
        # The folder and build it was saved to or loaded from: a search notices when
        # another process (`tier0 kb sync`) made a newer build CURRENT and swaps it in.
        self._index_dir: Path | None = None
        self._build_name: str | None = None
        self._pointer_seen: tuple[int, int, int] | None = None
        self._reloading = threading.Lock()

    # -- what is in it ------------------------------------------------------------------

    @property
    def chunks(self) -> list[Chunk]:
        return self._snapshot.live_chunks()

    @property
    def vectors(self) -> Vectors:
        return self._snapshot.live_vectors()

    @property
    def chunk_count(self) -> int:
        return self._snapshot.stats.passages

    @property
    def article_fingerprints(self) -> dict[str, str]:
        return dict(self._snapshot.fingerprints)

    @property
    def article_paths(self) -> dict[str, str]:
        return dict(self._snapshot.paths)

    @property
    def article_count(self) -> int:
        return len(self._snapshot.fingerprints)

    @property
    def approximate(self) -> bool:
        return self._snapshot.base.approximate

    def titles(self) -> dict[str, str]:
        return {chunk.article_id: chunk.article_title for chunk in self.chunks}

    @property
    def internal_articles(self) -> frozenset[str]:
        """The articles only the IT agents get (audience: agents)."""
        return self._snapshot.internal

    # -- searching ----------------------------------------------------------------------

    def search(
        self,
        query_vector: npt.NDArray[np.float32],
        limit: int = 3,
        *,
        query_text: str | None = None,
        mode: RetrievalMode | None = None,
        include_internal: bool = True,
    ) -> list[SearchHit]:
        """The best passage of each of the `limit` best-matching articles, best first.

        With the question's text the search is hybrid (dense and BM25 fused); with the
        vector only it is dense, as before. Without `include_internal`, articles only the
        IT agents may get (audience: agents) are passed over.
        """
        self.refresh()
        snapshot = self._snapshot  # one consistent view for the whole search
        if mode is None:
            mode = self.text_mode if query_text else RetrievalMode.DENSE
        if snapshot.stats.passages == 0 or limit <= 0:
            return []
        terms = tokenize(query_text) if query_text and mode is not RetrievalMode.DENSE else []
        wanted = max(limit * 10, 50)
        segments = (snapshot.base, snapshot.delta)
        query = np.asarray(query_vector, dtype=np.float32).reshape(-1)

        dense: _Pool | None = None
        lexical: _Pool | None = None
        if mode is not RetrievalMode.LEXICAL:
            dense = _Pool.merged(
                snapshot,
                [
                    segment.dense_search(query, wanted + len(snapshot.retired_rows))
                    for segment in segments
                ],
                wanted,
            )
        if terms:
            ceiling = sum(snapshot.stats.idf(term) for term in terms) * (K1 + 1.0)
            top = wanted + len(snapshot.retired_rows)
            lexical = _Pool.merged(
                snapshot,
                [segment.lexical.scores(terms, snapshot.stats, top=top) for segment in segments],
                wanted,
                scale=ceiling,
            )
        candidates = _Candidates.of(dense, lexical)
        if mode is RetrievalMode.HYBRID and lexical is not None:
            # A passage found by words only still gets its exact cosine: one BLAS dot
            # product each, as it has always been computed (a matrix-vector product adds
            # in another order, and its last bits differ).
            unscored = np.flatnonzero(candidates.dense_rank < 0)
            vectors = [segment.vectors for segment in segments]
            candidates.dense[unscored] = [
                float(vectors[number][row].dot(query))
                for number, row in zip(
                    candidates.segment[unscored].tolist(),
                    candidates.row[unscored].tolist(),
                    strict=True,
                )
            ]
        fused = self._fused(candidates, mode)
        scores = fused.tolist()
        ordered = sorted(
            self._best_per_article(
                candidates,
                scores,
                segments,
                limit,
                hidden=frozenset() if include_internal else snapshot.internal,
            ).items(),
            key=lambda item: (-scores[item[1]], item[0]),
        )
        hits = []
        for _, position in ordered[:limit]:
            # Only the passages shown are decoded.
            segment = segments[int(candidates.segment[position])]
            row = int(candidates.row[position])
            chunk = segment.chunks[row]
            hits.append(
                SearchHit(
                    article_id=chunk.article_id,
                    title=chunk.article_title,
                    passage=best_passage(_shown_text(segment, row), terms),
                    heading=chunk.heading,
                    score=round(scores[position], 4),
                    path=snapshot.paths.get(chunk.article_id, ""),
                    dense_score=round(float(candidates.dense[position]), 4),
                    lexical_score=round(float(candidates.lexical[position]), 4),
                )
            )
        return hits

    def with_coverage(self, hits: Sequence[SearchHit], query_text: str) -> list[SearchHit]:
        """The hits, each with its uncovered_rarity: how rare the rarest question word its
        article never uses is. Asked for the few hits the decision is taken on, after the
        re-rank, rather than inside every search: a few binary searches per word and
        article."""
        if not hits:
            return []
        rarity = _uncovered_rarity(
            self._snapshot, [hit.article_id for hit in hits], tokenize(query_text)
        )
        return [replace(hit, uncovered_rarity=round(rarity[hit.article_id], 4)) for hit in hits]

    def words_the_article_lacks(self, article_id: str, questions: Sequence[str]) -> list[str]:
        """The words of these questions that none of the article's live passages uses, as
        the questions spell them, those in the most questions first: the vocabulary an
        editor could add ("android phone" asked of an article that says "smartphones").
        Function words ("my", "can", "how") are left out; empty for an unknown article."""
        spelling: dict[str, str] = {}
        asked_in: Counter[str] = Counter()
        for question in questions:
            words = content_words_and_terms(question)
            for word, term in words:
                spelling.setdefault(term, word)
            asked_in.update({term for _, term in words})
        if not spelling:
            return []
        terms = list(spelling)
        snapshot = self._snapshot  # one snapshot throughout: a sync may swap in the next
        if article_id not in snapshot.fingerprints:  # the live articles, and only they
            return []
        held = _held_by_articles(snapshot, [article_id], terms)[:, 0]
        lacking = [term for term, has in zip(terms, held.tolist(), strict=True) if not has]
        lacking.sort(key=lambda term: -asked_in[term])  # stable: ties stay in asked order
        return [spelling[term] for term in lacking]

    @staticmethod
    def _best_per_article(
        candidates: _Candidates,
        scores: list[float],
        segments: Sequence[Segment],
        limit: int,
        hidden: frozenset[str] = frozenset(),
    ) -> dict[str, int]:
        """Article → its best candidate (the highest fused score and, of equal ones, the
        candidate met first: the dense ranking's, then those found by words only), for
        every article that can be among the `limit` best. Candidates are walked best
        first, so an article's first is its best; once `limit` articles are held, one
        scoring below the last of them cannot be shown (equal scores still can: those
        are ordered by article id). Articles in `hidden` are passed over."""
        best: dict[str, int] = {}
        cutoff = -math.inf
        for position in np.lexsort((np.arange(len(scores)), -np.asarray(scores))).tolist():
            if scores[position] < cutoff:
                break
            number, row = int(candidates.segment[position]), int(candidates.row[position])
            article_id = segments[number].article_id(row)
            if article_id not in best and article_id not in hidden:
                best[article_id] = position
                if len(best) == limit:
                    cutoff = scores[position]
        return best

    def _fused(self, candidates: _Candidates, mode: RetrievalMode) -> npt.NDArray[np.float64]:
        """Each candidate's score in this mode, element by element the arithmetic of one
        candidate at a time (float64 throughout), so the ranking is the same to the bit."""
        if mode is RetrievalMode.DENSE:
            return candidates.dense
        if mode is RetrievalMode.LEXICAL:
            return candidates.lexical
        if self.fusion is Fusion.RRF:
            shares = [
                np.where(rank >= 0, 1.0 / (RRF_K + rank + 1), 0.0)
                for rank in (candidates.dense_rank, candidates.lexical_rank)
            ]
            fused: npt.NDArray[np.float64] = shares[0] + shares[1]
            return fused
        weight = self.dense_weight
        fused = weight * candidates.dense + (1.0 - weight) * candidates.lexical
        return fused

    # -- following the persisted index --------------------------------------------------

    def refresh(self) -> bool:
        """Swap in the build another process made CURRENT since; True when one was.

        Costs one stat of the CURRENT pointer when nothing changed, so every search calls
        it. Loading reuses the base segment already in memory when the new build shares
        it (an incremental sync), and happens beside the searches: they keep the old
        snapshot until the new one is assigned whole. One thread loads; others go on.
        """
        index_dir = self._index_dir
        if index_dir is None:
            return False
        seen = _pointer_signature(index_dir)
        if seen is None or seen == self._pointer_seen:
            return False
        if not self._reloading.acquire(blocking=False):
            return False
        try:
            build = _current_build(index_dir)
            if build is None:
                return False
            if build.name == self._build_name:
                self._pointer_seen = seen
                return False
            try:
                newer = KnowledgeIndex._load_build(index_dir, build, known_base=self._snapshot.base)
            except (OSError, ValueError, KeyError, TypeError, RuntimeError):
                return False  # swept or damaged meanwhile: try again on the next search
            if newer is None:
                return False
            if newer.embedder_name != self.embedder_name:
                # Built with another model: this process's question vectors do not fit it.
                self._pointer_seen = seen
                return False
            with self._writer:
                self._snapshot = newer._snapshot
                self.fusion, self.dense_weight = newer.fusion, newer.dense_weight
                self.calibration = newer.calibration
                self._build_name, self._pointer_seen = build.name, seen
            return True
        finally:
            self._reloading.release()

    def keep_calibration_valid(self, shipped: dict[str, Any] | None) -> bool:
        """Keep the answer-or-escalate model stored with the index usable; True if changed.

        A model shipped with tier0 replaces the stored one (a newer tuning); without one,
        the stored model stays unless it was trained on other features, then it goes
        (the assistant falls back to its thresholds rather than misread it).
        """
        wanted = shipped if shipped is not None else self.calibration
        if wanted is not None:
            try:
                AnswerCalibration.from_dict(wanted)
            except (ValueError, KeyError, TypeError):
                wanted = None
        if wanted == self.calibration:
            return False
        self.calibration = wanted
        return True

    # -- incremental updates ------------------------------------------------------------

    def add_or_update(self, article: Article, embedder: Embedder | None = None) -> bool:
        """Index one added or edited article; False when it is already indexed as it is.

        Searches running meanwhile see the index before or after, never in between.
        `save(index_dir)` persists the change (only the small delta is written).
        """
        if self._snapshot.fingerprints.get(article.id) == article.fingerprint:
            if self._snapshot.paths.get(article.id) == str(article.path):
                return False
            with self._writer:  # a moved file keeps its passages and vectors
                current = self._snapshot
                self._snapshot = _Snapshot(
                    current.base,
                    current.delta,
                    current.retired_rows,
                    current.fingerprints,
                    current.paths | {article.id: str(article.path)},
                    current.stats,
                    current.dead_mask,
                )
            return True
        embedder = embedder or self.embedder
        if embedder is None:
            raise ValueError("add_or_update needs the embedder the index was built with")
        chunks = chunk_article(article)
        vectors = embedder.embed([chunk.embedding_text for chunk in chunks])
        with self._writer:
            self._replace_articles(
                {article.id: (chunks, vectors)},
                fingerprints={article.id: article.fingerprint},
                paths={article.id: str(article.path)},
            )
        return True

    def apply_changes(
        self,
        upserts: Sequence[Article],
        retirements: Iterable[str] = (),
        embedder: Embedder | None = None,
    ) -> IndexChanges:
        """Add or update several articles and retire others as one change: searches see
        all of it or none. Only the passages of articles whose text changed are embedded."""
        current = self._snapshot
        retiring = [a for a in dict.fromkeys(retirements) if a in current.fingerprints]
        moved: dict[str, str] = {}
        to_embed: list[Article] = []
        for article in upserts:
            if current.fingerprints.get(article.id) == article.fingerprint:
                if current.paths.get(article.id) != str(article.path):
                    moved[article.id] = str(article.path)
            else:
                to_embed.append(article)
        changes = IndexChanges(
            added=[a.id for a in to_embed if a.id not in current.fingerprints],
            updated=[a.id for a in to_embed if a.id in current.fingerprints],
            retired=retiring,
            moved=sorted(moved),
        )
        if not to_embed and not retiring and not moved:
            return changes
        embedder = embedder or self.embedder
        if to_embed and embedder is None:
            raise ValueError("apply_changes needs the embedder the index was built with")
        chunked = [(article, chunk_article(article)) for article in to_embed]
        texts = [chunk.embedding_text for _, chunks in chunked for chunk in chunks]
        vectors = (
            np.vstack([embedder.embed(texts[i : i + 512]) for i in range(0, len(texts), 512)])
            if texts and embedder is not None
            else np.zeros((0, self.dimension), dtype=np.float32)
        )
        changes.embedded_passages = len(texts)
        replacements: dict[str, tuple[list[Chunk], Vectors] | None] = {}
        position = 0
        for article, chunks in chunked:
            replacements[article.id] = (chunks, vectors[position : position + len(chunks)])
            position += len(chunks)
        for article_id in retiring:
            replacements[article_id] = None
        with self._writer:
            if moved and not replacements:
                snapshot = self._snapshot
                self._snapshot = _Snapshot(
                    snapshot.base,
                    snapshot.delta,
                    snapshot.retired_rows,
                    snapshot.fingerprints,
                    snapshot.paths | moved,
                    snapshot.stats,
                    snapshot.dead_mask,
                )
            else:
                self._replace_articles(
                    replacements,
                    fingerprints={a.id: a.fingerprint for a in to_embed},
                    paths={a.id: str(a.path) for a in to_embed} | moved,
                )
        return changes

    def retire(self, article_id: str) -> bool:
        """Take one article out of search; False when it was not in the index."""
        with self._writer:
            if article_id not in self._snapshot.fingerprints:
                return False
            self._replace_articles({article_id: None}, fingerprints={}, paths={})
        return True

    def _replace_articles(
        self,
        replacements: dict[str, tuple[list[Chunk], Vectors] | None],
        fingerprints: dict[str, str],
        paths: dict[str, str],
    ) -> None:
        current = self._snapshot
        retired = set(current.retired_rows)
        for article_id in replacements:
            retired.update(current.base.rows_of(article_id))
        kept_rows = [
            row
            for row, chunk in enumerate(current.delta.chunks)
            if chunk.article_id not in replacements
        ]
        delta_chunks = [current.delta.chunks[row] for row in kept_rows]
        delta_vectors = [current.delta.vectors[kept_rows]]
        for replacement in replacements.values():
            if replacement is not None:
                delta_chunks.extend(replacement[0])
                delta_vectors.append(np.asarray(replacement[1], dtype=np.float32))
        # Copied whole and then edited (C speed): a comprehension over 100k articles
        # cost a quarter of a second per edit.
        new_fingerprints = dict(current.fingerprints)
        new_paths = dict(current.paths)
        for article_id in replacements:
            new_fingerprints.pop(article_id, None)
            new_paths.pop(article_id, None)
        new_fingerprints.update(fingerprints)
        new_paths.update(paths)
        delta = Segment(delta_chunks, np.vstack(delta_vectors).astype(np.float32))
        base = current.base
        if delta.size > max(COMPACT_MIN_PASSAGES, COMPACT_SHARE * base.size):
            snapshot = _snapshot(base, delta, frozenset(retired), new_fingerprints, new_paths)
            base = Segment(snapshot.live_chunks(), snapshot.live_vectors(), approximate=None)
            delta, retired = _empty_segment(self.dimension), set()
        self._snapshot = _snapshot(base, delta, frozenset(retired), new_fingerprints, new_paths)

    # -- persistence --------------------------------------------------------------------

    def save(self, index_dir: Path) -> Path:
        """Write this index as a new build and make it CURRENT atomically; old builds go."""
        snapshot = self._snapshot
        index_dir.mkdir(parents=True, exist_ok=True)
        with _index_lock(index_dir):
            return self._save_locked(snapshot, index_dir)

    def _save_locked(self, snapshot: _Snapshot, index_dir: Path) -> Path:
        base = snapshot.base
        if (
            base.name is None
            or base.articles is None
            or not (index_dir / base.name / "articles.json").exists()
        ):
            name = f"segment-{uuid.uuid4().hex[:12]}"
            staging = index_dir / f"{name}.tmp"
            base.save(
                staging,
                {
                    article_id: (fingerprint, snapshot.paths.get(article_id, ""))
                    for article_id, fingerprint in snapshot.fingerprints.items()
                },
            )
            staging.replace(index_dir / name)
            base.name = name
        assert base.articles is not None
        # Only what changed since the base was written: one edit writes a small manifest.
        changed = _changed_articles(base, snapshot)
        gone = sorted(base.articles.keys() - snapshot.fingerprints.keys())
        build = index_dir / f"build-{uuid.uuid4().hex[:12]}"
        staging = build.with_name(build.name + ".tmp")
        staging.mkdir()
        np.save(staging / "delta_vectors.npy", snapshot.delta.vectors)
        manifest = {
            "format": INDEX_FORMAT_VERSION,
            "embedder": self.embedder_name,
            "base": base.name,
            "retired_rows": sorted(snapshot.retired_rows),
            "delta_chunks": [asdict(chunk) for chunk in snapshot.delta.chunks],
            "articles": changed,
            "gone": gone,
            "fusion": self.fusion.value,
            "dense_weight": self.dense_weight,
            "calibration": self.calibration,
        }
        (staging / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        staging.replace(build)
        pointer = index_dir / f"CURRENT.{uuid.uuid4().hex[:8]}.tmp"
        pointer.write_text(build.name, encoding="utf-8")
        previous = _current_build(index_dir)
        pointer.replace(index_dir / "CURRENT")
        self._index_dir, self._build_name = index_dir, build.name
        self._pointer_seen = _pointer_signature(index_dir)
        keep = {build.name, base.name} | ({previous.name} if previous is not None else set())
        sweep_index_dir(index_dir, keep=keep)
        return build

    @classmethod
    def load(cls, index_dir: Path) -> KnowledgeIndex | None:
        deadline = time.monotonic() + LOAD_PATIENCE_SECONDS
        while True:
            name = _current_build_name(index_dir)
            if name is None:
                return None
            build = index_dir / name
            try:
                return cls._load_build(index_dir, build)
            except (OSError, ValueError, KeyError, TypeError, RuntimeError):
                # Writers keep the build they replaced, not the one before: a slow reader
                # can see its build swept away before or while it reads it. That is not
                # damage while CURRENT has moved on, so read the newer build; an error on
                # the build that is still current is damage, and the caller rebuilds.
                if _current_build_name(index_dir) == name or time.monotonic() > deadline:
                    return None

    @classmethod
    def _load_build(
        cls, index_dir: Path, build: Path, known_base: Segment | None = None
    ) -> KnowledgeIndex | None:
        manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != INDEX_FORMAT_VERSION:
            return None
        base_name = str(manifest["base"])
        if known_base is not None and known_base.name == base_name:
            base = known_base  # segments are immutable once written: share it
        else:
            base = Segment.load(index_dir / base_name)
        if base.articles is None:
            raise ValueError(f"{base_name}: no article table")
        articles = dict(base.articles)
        for article_id in manifest["gone"]:
            articles.pop(str(article_id), None)
        for article_id, (fingerprint, path) in manifest["articles"].items():
            articles[str(article_id)] = (str(fingerprint), str(path))
        delta_chunks = [Chunk(**chunk) for chunk in manifest["delta_chunks"]]
        delta_vectors = np.asarray(np.load(build / "delta_vectors.npy"), dtype=np.float32)
        if delta_vectors.shape[0] != len(delta_chunks):
            raise ValueError("delta vectors do not match the delta passages")
        if not delta_chunks:
            delta_vectors = np.zeros((0, base.vectors.shape[1]), dtype=np.float32)
        index = cls.__new__(cls)
        index._init(
            base,
            Segment(delta_chunks, delta_vectors),
            frozenset(int(row) for row in manifest["retired_rows"]),
            {article_id: fingerprint for article_id, (fingerprint, _) in articles.items()},
            {article_id: path for article_id, (_, path) in articles.items() if path},
            str(manifest["embedder"]),
        )
        index.fusion = Fusion(manifest.get("fusion", Fusion.WEIGHTED.value))
        index.dense_weight = float(manifest.get("dense_weight", DENSE_WEIGHT))
        index.calibration = manifest.get("calibration")
        # The pointer is looked at again on the first search: it may have moved on already.
        index._index_dir, index._build_name = index_dir, build.name
        return index


def _changed_articles(base: Segment, snapshot: _Snapshot) -> dict[str, tuple[str, str]]:
    """(fingerprint, path) of the live articles that differ from those the base was saved
    with. The few candidates come from set differences of the two (C speed); each is then
    compared as a whole, so the answer is that of comparing every article."""
    assert base.articles is not None
    saved_fingerprints, saved_paths = base.saved_fingerprints_and_paths()
    maybe = {key for key, _ in snapshot.fingerprints.items() - saved_fingerprints.items()}
    maybe.update(key for key, _ in snapshot.paths.items() ^ saved_paths.items())
    changed = {}
    for article_id in maybe:
        fingerprint = snapshot.fingerprints.get(article_id)
        if fingerprint is None:
            continue  # gone, listed apart
        wanted = (fingerprint, snapshot.paths.get(article_id, ""))
        if base.articles.get(article_id) != wanted:
            changed[article_id] = wanted
    return changed


def _pointer_signature(index_dir: Path) -> tuple[int, int, int] | None:
    """What changes when CURRENT is replaced (a rename brings a new inode and time)."""
    try:
        status = (index_dir / "CURRENT").stat()
    except OSError:
        return None
    return (status.st_ino, status.st_mtime_ns, status.st_size)


def _current_build_name(index_dir: Path) -> str | None:
    try:
        name = (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return name or None


def _current_build(index_dir: Path) -> Path | None:
    name = _current_build_name(index_dir)
    build = index_dir / name if name else None
    return build if build is not None and build.is_dir() else None


def sweep_index_dir(
    index_dir: Path,
    keep: set[str],
    stale_after: float = STALE_BUILD_SECONDS,
) -> None:
    """Remove builds and segments that are neither kept nor in progress.

    `keep` names the current build and the one it replaced (a reader may still be
    loading that one) and their segments. Staging folders (`*.tmp`) of a crashed
    writer go once they are `stale_after` old; a younger one may still be in use.
    Callers hold the index folder's lock, so no other writer is between steps.
    """
    now = time.time()
    wanted_segments = set(keep)
    for name in keep:
        try:
            manifest = json.loads((index_dir / name / "manifest.json").read_text("utf-8"))
            wanted_segments.add(str(manifest.get("base")))
        except (OSError, ValueError):
            continue
    for path in index_dir.iterdir():
        name = path.name
        if name in wanted_segments or not name.startswith(("build-", "segment-", "CURRENT.")):
            continue
        if name.endswith(".tmp"):
            try:
                if now - path.stat().st_mtime <= stale_after:
                    continue
            except OSError:
                continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@contextmanager
def _index_lock(index_dir: Path) -> Iterator[None]:
    """One writer at a time per index folder, across processes (the bot and `tier0 kb`)."""
    with open(index_dir / ".lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_index(
    articles: Sequence[Article],
    embedder: Embedder,
    embedder_name: str,
    previous: KnowledgeIndex | None = None,
    *,
    progress: ProgressCallback | None = None,
    approximate: bool | None = None,
) -> KnowledgeIndex:
    """Chunk and embed the articles, reusing the vectors of articles that did not change."""
    reusable: dict[str, list[tuple[Chunk, npt.NDArray[np.float32]]]] = {}
    if previous is not None and previous.embedder_name == embedder_name:
        for chunk, vector in zip(previous.chunks, previous.vectors, strict=True):
            reusable.setdefault(chunk.article_id, []).append((chunk, vector))
    fingerprints = previous.article_fingerprints if previous is not None else {}

    chunks: list[Chunk] = []
    vectors: list[npt.NDArray[np.float32] | None] = []
    to_embed: list[int] = []
    for article in articles:
        kept = reusable.get(article.id)
        if kept and fingerprints.get(article.id) == article.fingerprint:
            for chunk, vector in kept:
                chunks.append(chunk)
                vectors.append(vector)
            continue
        for chunk in chunk_article(article):
            to_embed.append(len(chunks))
            chunks.append(chunk)
            vectors.append(None)

    batch = 512
    for start in range(0, len(to_embed), batch):
        positions = to_embed[start : start + batch]
        fresh = embedder.embed([chunks[i].embedding_text for i in positions])
        for row, position in enumerate(positions):
            vectors[position] = fresh[row]
        if progress is not None:
            progress(min(start + batch, len(to_embed)), len(to_embed))
    matrix = (
        np.vstack([v for v in vectors if v is not None]).astype(np.float32)
        if chunks
        else np.zeros((0, embedder.dimension), dtype=np.float32)
    )
    index = KnowledgeIndex(
        chunks=chunks,
        vectors=matrix,
        article_fingerprints={article.id: article.fingerprint for article in articles},
        article_paths={article.id: str(article.path) for article in articles},
        embedder_name=embedder_name,
        approximate=approximate,
    )
    if previous is not None:
        index.fusion, index.dense_weight = previous.fusion, previous.dense_weight
    index.calibration = previous.calibration if previous is not None else None
    index.keep_calibration_valid(_bundled_calibration())
    index.embedder = embedder
    return index


def _bundled_calibration() -> dict[str, Any] | None:
    calibration = load_calibration()
    return calibration.as_dict() if calibration is not None else None


def load_or_build_index(
    articles: Sequence[Article], index_dir: Path, embedder: Embedder, embedder_name: str
) -> tuple[KnowledgeIndex, bool]:
    """The persisted index brought in line with the articles (and True when anything changed)."""
    index, changes = sync_index(articles, index_dir, embedder, embedder_name)
    return index, changes.changed


def sync_index(
    articles: Sequence[Article], index_dir: Path, embedder: Embedder, embedder_name: str
) -> tuple[KnowledgeIndex, IndexChanges]:
    """Bring the persisted index in line with the (searchable) articles, article by article.

    Added and edited articles are embedded and indexed, vanished ones retired, through
    the incremental API: nothing else is re-embedded and the base segment is kept. Only
    without a usable index, or with another embedder, is everything built anew. The whole
    load-change-save runs under the index folder's lock, so two syncs cannot lose each
    other's changes, and the result becomes CURRENT in one atomic rename.
    """
    index_dir.mkdir(parents=True, exist_ok=True)
    calibration = _bundled_calibration()
    with _index_lock(index_dir):
        current = KnowledgeIndex.load(index_dir)
        if current is None or current.embedder_name != embedder_name:
            index = build_index(articles, embedder, embedder_name, previous=current)
            index._save_locked(index._snapshot, index_dir)
            return index, IndexChanges(added=[a.id for a in articles], rebuilt=True)
        current.embedder = embedder
        wanted = {article.id for article in articles}
        gone = [
            article_id for article_id in current.article_fingerprints if article_id not in wanted
        ]
        changes = current.apply_changes(articles, gone, embedder)
        recalibrated = current.keep_calibration_valid(calibration)
        if changes.changed or recalibrated:
            current._save_locked(current._snapshot, index_dir)
        return current, changes
