"""A small deterministic embedder for tests about mechanics, not meaning.

Each word is hashed into one of `dimension` buckets and the counts are scaled to unit
length, so texts sharing words are close. It records every text it embeds, so a test
can tell what was (re-)embedded.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from nlu.embedding import Vectors

_WORD = re.compile(r"[a-z0-9]+")


class HashingEmbedder:
    def __init__(self, dimension: int = 256) -> None:
        self.dimension = dimension
        self.embedded: list[str] = []  # every text, in the order it was embedded

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.embedded.extend(texts)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                vectors[row, zlib.crc32(word.encode()) % self.dimension] += 1.0
            norm = np.linalg.norm(vectors[row])
            if norm:
                vectors[row] /= norm
            else:  # a text with no words still gets a unit vector
                vectors[row, 0] = 1.0
        return vectors
