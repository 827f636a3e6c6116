"""The passages of an index segment, stored column-wise in one UTF-8 blob.

A segment of 500k passages loaded from JSON took a minute (every passage parsed and
built up front). Here the five fields of every passage are concatenated into one blob
with an array of offsets, and a passage is decoded only when a search shows it: loading
is mapping a few files. Which rows belong to an article is a small integer array, so
replacing one article finds its rows without decoding any passage.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from knowledge.chunking import Chunk

_FIELDS = 5  # article_id, article_title, heading, text, joined_by


class PassageTable(Sequence[Chunk]):
    """A fixed list of passages, read from a blob and decoded row by row."""

    def __init__(
        self,
        blob: bytes | mmap.mmap,
        offsets: npt.NDArray[np.int64],
        article_numbers: npt.NDArray[np.int32],
        article_ids: list[str],
    ) -> None:
        if offsets.shape[0] != _FIELDS * article_numbers.shape[0] + 1:
            raise ValueError("passage offsets do not match the passages")
        if offsets.shape[0] > 1 and int(offsets[-1]) != len(blob):
            raise ValueError("passage offsets run past the stored text")
        self._blob = blob
        self._offsets = offsets
        self.article_numbers = article_numbers
        self.article_ids = article_ids

    @classmethod
    def from_chunks(cls, chunks: Iterable[Chunk]) -> PassageTable:
        pieces: list[bytes] = []
        numbers: list[int] = []
        number_of: dict[str, int] = {}
        for chunk in chunks:
            numbers.append(number_of.setdefault(chunk.article_id, len(number_of)))
            for value in (
                chunk.article_id,
                chunk.article_title,
                chunk.heading,
                chunk.text,
                chunk.joined_by,
            ):
                pieces.append(value.encode("utf-8"))
        offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
        np.cumsum([len(piece) for piece in pieces], out=offsets[1:])
        return cls(
            b"".join(pieces),
            offsets,
            np.asarray(numbers, dtype=np.int32),
            list(number_of),
        )

    def __len__(self) -> int:
        return int(self.article_numbers.shape[0])

    @overload
    def __getitem__(self, row: int) -> Chunk: ...

    @overload
    def __getitem__(self, row: slice) -> list[Chunk]: ...

    def __getitem__(self, row: int | slice) -> Chunk | list[Chunk]:
        if isinstance(row, slice):
            return [self[number] for number in range(*row.indices(len(self)))]
        if row < 0:
            row += len(self)
        if not 0 <= row < len(self):
            raise IndexError(row)
        blob = self._blob
        first = _FIELDS * row
        at = self._offsets[first : first + _FIELDS + 1].tolist()  # one read of the row
        fields = [blob[at[field] : at[field + 1]].decode("utf-8") for field in range(_FIELDS)]
        return Chunk(*fields)

    def __iter__(self) -> Iterator[Chunk]:
        for row in range(len(self)):
            yield self[row]

    @cached_property
    def _number_of(self) -> dict[str, int]:
        return {article_id: number for number, article_id in enumerate(self.article_ids)}

    def article_id_of(self, row: int) -> str:
        return self.article_ids[int(self.article_numbers[row])]

    @cached_property
    def _article_rows(self) -> ArticleRows:
        return ArticleRows(np.asarray(self.article_numbers), self._number_of)

    def rows_of(self, article_id: str) -> list[int]:
        return self._article_rows.rows_of(article_id)

    # persistence
    def save(self, folder: Path) -> None:
        (folder / "passages.bin").write_bytes(self._blob)  # an mmap is bytes-like
        np.save(folder / "passage_offsets.npy", np.asarray(self._offsets, dtype=np.int64))
        np.save(folder / "passage_articles.npy", self.article_numbers)
        (folder / "passage_article_ids.json").write_text(
            json.dumps(self.article_ids), encoding="utf-8"
        )

    @classmethod
    def load(cls, folder: Path) -> PassageTable:
        article_ids = json.loads((folder / "passage_article_ids.json").read_text("utf-8"))
        if not isinstance(article_ids, list):
            raise ValueError(f"{folder}: the passages' article ids are not a list")
        # Mapped read-only rather than read (see Segment.load): a segment's files are
        # never rewritten, and a swept one stays readable through its mapping.
        numbers = mapped_array(folder / "passage_articles.npy")
        if numbers.size and (int(numbers.min()) < 0 or int(numbers.max()) >= len(article_ids)):
            raise ValueError(f"{folder}: a passage names an article that is not listed")
        return cls(
            _mapped(folder / "passages.bin"),
            mapped_array(folder / "passage_offsets.npy"),
            numbers.astype(np.int32, copy=False),
            [str(article_id) for article_id in article_ids],
        )


class ArticleRows:
    """Which rows hold each article's passages, grouped once (a stable sort of the rows'
    article numbers: ~15 ms CPU at 500k passages) so that finding one article's rows
    neither scans every passage nor keeps a list per article (100k lists of a 100k-article
    base cost more in garbage collection than the grouping itself)."""

    def __init__(self, article_numbers: npt.NDArray[np.integer], number_of: Mapping[str, int]):
        self._order = np.argsort(article_numbers, kind="stable").astype(np.int64)
        self._starts = np.searchsorted(
            article_numbers[self._order], np.arange(len(number_of) + 1)
        ).astype(np.int64)
        self._number_of = number_of

    @classmethod
    def of(cls, chunks: Sequence[Chunk]) -> ArticleRows:
        number_of: dict[str, int] = {}
        numbers = np.fromiter(
            (number_of.setdefault(chunk.article_id, len(number_of)) for chunk in chunks),
            dtype=np.int64,
            count=len(chunks),
        )
        return cls(numbers, number_of)

    def rows_of(self, article_id: str) -> list[int]:
        number = self._number_of.get(article_id)
        if number is None:
            return []
        rows: list[int] = self._order[self._starts[number] : self._starts[number + 1]].tolist()
        return rows


def mapped_array(path: Path) -> npt.NDArray[Any]:
    """An .npy file mapped read-only, as a plain array (indexing an np.memmap goes
    through its subclass's hooks on every access, and its results are memmaps too)."""
    array: npt.NDArray[Any] = np.load(path, mmap_mode="r").view(np.ndarray)
    return array


def _mapped(path: Path) -> bytes | mmap.mmap:
    """A file's bytes, mapped read-only (an empty file cannot be mapped)."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return b""
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
