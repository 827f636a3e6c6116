"""Lexical features of a message: TF-IDF weighted word and character n-grams.

They complement the sentence embedding where meaning hangs on one exact word ("card"
versus "cash", "top up" versus "transfer") or on a misspelling the embedding has never
seen. Persisted as plain vocabularies and IDF arrays, so a model loads without pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer


@dataclass(frozen=True)
class NgramSpec:
    analyzer: str  # "word" or "char_wb"
    low: int
    high: int

    @property
    def name(self) -> str:
        return f"{self.analyzer}_{self.low}_{self.high}"


DEFAULT_NGRAMS = (NgramSpec("word", 1, 2), NgramSpec("char_wb", 2, 5))
_TOKEN_PATTERN = r"(?u)\b\w+\b"  # single-letter words count too ("a", "i", "2")


def _counter(spec: NgramSpec, vocabulary: dict[str, int] | None = None) -> CountVectorizer:
    return CountVectorizer(
        analyzer=spec.analyzer,
        ngram_range=(spec.low, spec.high),
        lowercase=True,
        token_pattern=_TOKEN_PATTERN if spec.analyzer == "word" else None,
        vocabulary=vocabulary,
        dtype=np.float32,
    )


class LexicalFeatures:
    """Sublinear TF-IDF over word and char n-grams, each block L2-normalised."""

    def __init__(
        self,
        specs: Sequence[NgramSpec],
        vocabularies: Sequence[dict[str, int]],
        idfs: Sequence[npt.NDArray[np.float32]],
    ) -> None:
        self.specs = tuple(specs)
        self._vocabularies = [dict(v) for v in vocabularies]
        self._idfs = [np.asarray(idf, dtype=np.float32) for idf in idfs]
        # sklearn's own analyzers (lower-casing, token pattern, n-grams), so the n-grams
        # are exactly those TfidfVectorizer learnt; the counting is done here (`transform`).
        self._analyzers = [
            _counter(spec, vocabulary).build_analyzer()
            for spec, vocabulary in zip(specs, vocabularies, strict=True)
        ]
        self._offsets = np.cumsum([0] + [len(v) for v in self._vocabularies])

    @property
    def dimension(self) -> int:
        return sum(len(v) for v in self._vocabularies)

    @classmethod
    def fit(
        cls, texts: Sequence[str], specs: Sequence[NgramSpec] = DEFAULT_NGRAMS, min_df: int = 1
    ) -> LexicalFeatures:
        vocabularies, idfs = [], []
        for spec in specs:
            tfidf = TfidfVectorizer(
                analyzer=spec.analyzer,
                ngram_range=(spec.low, spec.high),
                lowercase=True,
                token_pattern=_TOKEN_PATTERN if spec.analyzer == "word" else None,
                sublinear_tf=True,
                min_df=min_df,
                dtype=np.float32,
            )
            tfidf.fit(texts)
            vocabularies.append({str(k): int(v) for k, v in tfidf.vocabulary_.items()})
            idfs.append(np.asarray(tfidf.idf_, dtype=np.float32))
        return cls(specs, vocabularies, idfs)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """One row per text: each block's sublinear TF-IDF, L2-normalised, side by side.

        Counted with plain dicts and written straight into one CSR matrix: on a one-message
        parse, CountVectorizer.transform, scipy's hstack and sklearn's `normalize` spent
        about a millisecond on checks and copies around a few dozen n-grams."""
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        for text in texts:
            for analyzer, vocabulary, idf, offset in zip(
                self._analyzers, self._vocabularies, self._idfs, self._offsets, strict=False
            ):
                counts: dict[int, int] = {}
                for gram in analyzer(text):
                    column = vocabulary.get(gram)
                    if column is not None:
                        counts[column] = counts.get(column, 0) + 1
                if not counts:
                    continue
                columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
                tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
                # sublinear tf, as TfidfVectorizer's, times each n-gram's idf
                weights = (1.0 + np.log(tf)) * idf[columns]
                weights /= np.sqrt(np.dot(weights, weights))
                indices.extend((columns + offset).tolist())
                data.extend(weights.tolist())
            indptr.append(len(indices))
        return sp.csr_matrix(
            (
                np.asarray(data, dtype=np.float32),
                np.asarray(indices, dtype=np.int32),
                np.asarray(indptr, dtype=np.int64),
            ),
            shape=(len(texts), self.dimension),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "specs": [[s.analyzer, s.low, s.high] for s in self.specs],
            "vocabularies": self._vocabularies,
        }

    def idf_arrays(self) -> dict[str, npt.NDArray[np.float32]]:
        return {f"idf_{i}": idf for i, idf in enumerate(self._idfs)}

    @classmethod
    def from_saved(
        cls, meta: dict[str, Any], arrays: dict[str, npt.NDArray[np.float32]]
    ) -> LexicalFeatures:
        specs = [NgramSpec(str(a), int(lo), int(hi)) for a, lo, hi in meta["specs"]]
        idfs = [arrays[f"idf_{i}"] for i in range(len(specs))]
        return cls(specs, meta["vocabularies"], idfs)
