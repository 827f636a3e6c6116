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
        self._counters = [
            _counter(spec, vocabulary) for spec, vocabulary in zip(specs, vocabularies, strict=True)
        ]

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
        # Worked on the sparse arrays directly: scipy's general-purpose products and
        # sklearn's `normalize` cost milliseconds of checks on a one-message parse.
        blocks = []
        for counter, idf in zip(self._counters, self._idfs, strict=True):
            counts = sp.csr_matrix(counter.transform(texts), dtype=np.float32)
            # sublinear tf, as TfidfVectorizer's, times each n-gram's idf
            data = (1.0 + np.log(counts.data)) * idf[counts.indices]
            rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
            norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=counts.shape[0]))
            data = (data / norms[rows]).astype(np.float32)
            blocks.append(sp.csr_matrix((data, counts.indices, counts.indptr), shape=counts.shape))
        return sp.csr_matrix(sp.hstack(blocks, format="csr"), dtype=np.float32)

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
