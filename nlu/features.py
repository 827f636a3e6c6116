"""Lexical features of a message: TF-IDF weighted word and character n-grams.

They complement the sentence embedding where meaning hangs on one exact word ("card"
versus "cash", "top up" versus "transfer") or on a misspelling the embedding has never
seen. Persisted as plain vocabularies and IDF arrays, so a model loads without pickle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp


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


_WORD = re.compile(_TOKEN_PATTERN)
# Words whose character n-gram columns a model remembers (a few MB at most).
_WORDS_REMEMBERED = 50_000


def _word_ngrams(low: int, high: int) -> Callable[[str], list[str]]:
    """scikit-learn's "word" analyzer (lower case, `_TOKEN_PATTERN`), n-grams low..high."""

    def analyze(text: str) -> list[str]:
        words = _WORD.findall(text.lower())
        grams = list(words) if low == 1 else []
        for n in range(max(low, 2), min(high, len(words)) + 1):
            grams.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
        return grams

    return analyze


def _char_wb_word_grams(word: str, low: int, high: int) -> list[str]:
    """One word's character n-grams, as scikit-learn's "char_wb" makes them: inside the
    word padded with a space either side."""
    grams = []
    padded = f" {word} "
    for n in range(low, high + 1):
        offset = 0
        grams.append(padded[offset : offset + n])
        while offset + n < len(padded):
            offset += 1
            grams.append(padded[offset : offset + n])
        if offset == 0:  # the word is shorter than n: one n-gram is all of it
            break
    return grams


def _char_wb_words(text: str) -> list[str]:
    """The words "char_wb" reads n-grams from (lower case, split on runs of white space:
    scikit-learn first squeezes the runs to one space, which `split()` makes needless)."""
    return text.lower().split()


def _word_analyzer(spec: NgramSpec) -> Callable[[str], list[str]] | None:
    """A "word" spec's analyzer; None for "char_wb", whose n-grams are read word by word
    (`_char_wb_word_grams`) so that each word's columns can be remembered."""
    if spec.analyzer == "word":
        return _word_ngrams(spec.low, spec.high)
    if spec.analyzer == "char_wb":
        return None
    raise ValueError(f"unknown n-gram analyzer {spec.analyzer!r}")


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
        self._word_analyzers = [_word_analyzer(spec) for spec in self.specs]
        self._offsets = np.cumsum([0] + [len(v) for v in self._vocabularies])
        # Character n-grams never cross a word, so each word's known columns are looked up
        # once: a help desk's messages reuse a few thousand words, and a long message has
        # about a thousand n-grams to look up.
        self._columns_of_word: list[dict[str, list[int]]] = [{} for _ in self.specs]

    @property
    def dimension(self) -> int:
        return sum(len(v) for v in self._vocabularies)

    @classmethod
    def fit(
        cls, texts: Sequence[str], specs: Sequence[NgramSpec] = DEFAULT_NGRAMS, min_df: int = 1
    ) -> LexicalFeatures:
        from sklearn.feature_extraction.text import TfidfVectorizer  # only to fit

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

        Looked up in plain dicts, counted by numpy and written straight into one CSR matrix:
        on a one-message parse, CountVectorizer.transform, scipy's hstack and sklearn's
        `normalize` spent about a millisecond on checks and copies around a few dozen
        n-grams."""
        indptr = [0]
        indices: list[int] = []
        data: list[float] = []
        for text in texts:
            for spec_index, (idf, offset) in enumerate(
                zip(self._idfs, self._offsets, strict=False)
            ):
                found = self._known_columns(spec_index, text)
                if not found:
                    continue
                # Sorted columns (as CSR rows keep them) with each one's count.
                columns, counts = np.unique(np.asarray(found, dtype=np.int64), return_counts=True)
                tf = counts.astype(np.float32)
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

    def _known_columns(self, spec_index: int, text: str) -> list[int]:
        """The vocabulary columns of the text's n-grams of one spec, repeats included."""
        vocabulary = self._vocabularies[spec_index]
        spec = self.specs[spec_index]
        analyzer = self._word_analyzers[spec_index]
        if analyzer is not None:
            return [
                column for gram in analyzer(text) if (column := vocabulary.get(gram)) is not None
            ]
        known = self._columns_of_word[spec_index]
        found: list[int] = []
        for word in _char_wb_words(text):
            columns = known.get(word)
            if columns is None:
                grams = _char_wb_word_grams(word, spec.low, spec.high)
                columns = [c for gram in grams if (c := vocabulary.get(gram)) is not None]
                if len(known) < _WORDS_REMEMBERED:
                    known[word] = columns
            found.extend(columns)
        return found

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
