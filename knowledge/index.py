"""The dense index of article chunks: faiss inner product on unit vectors, kept in TIER0_HOME.

A build goes into a fresh folder and `CURRENT` is switched to it by an atomic rename,
so a reader never sees a half-built index. Unchanged articles keep their vectors;
only added or edited articles are embedded again.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from knowledge.articles import Article
from knowledge.chunking import Chunk, chunk_article
from nlu.embedding import Embedder, Vectors

INDEX_FORMAT_VERSION = 1
PASSAGE_CHARS = 600


@dataclass(frozen=True)
class SearchHit:
    article_id: str
    title: str
    passage: str
    heading: str
    score: float
    path: str


def _passage(text: str) -> str:
    if len(text) <= PASSAGE_CHARS:
        return text
    cut = text[:PASSAGE_CHARS]
    boundary = max(cut.rfind("\n"), cut.rfind(". "))
    return (cut[: boundary + 1] if boundary > PASSAGE_CHARS // 2 else cut).rstrip() + " …"


class KnowledgeIndex:
    def __init__(
        self,
        chunks: Sequence[Chunk],
        vectors: Vectors,
        article_fingerprints: dict[str, str],
        article_paths: dict[str, str],
        embedder_name: str,
    ) -> None:
        self.chunks = list(chunks)
        self.vectors = vectors
        self.article_fingerprints = article_fingerprints
        self.article_paths = article_paths
        self.embedder_name = embedder_name
        self._faiss = faiss.IndexFlatIP(vectors.shape[1])
        if len(self.chunks):
            self._faiss.add(vectors)

    @property
    def article_count(self) -> int:
        return len(self.article_fingerprints)

    def titles(self) -> dict[str, str]:
        return {chunk.article_id: chunk.article_title for chunk in self.chunks}

    def search(self, query_vector: npt.NDArray[np.float32], limit: int = 3) -> list[SearchHit]:
        """The best passage of each of the `limit` best-matching articles, best first."""
        if not self.chunks:
            return []
        wanted = min(len(self.chunks), max(limit * 8, 20))
        scores, positions = self._faiss.search(query_vector.reshape(1, -1), wanted)
        hits: list[SearchHit] = []
        seen: set[str] = set()
        for score, position in zip(scores[0], positions[0], strict=True):
            if position < 0:
                continue
            chunk = self.chunks[int(position)]
            if chunk.article_id in seen:
                continue  # one hit per article: the best passage speaks for it
            seen.add(chunk.article_id)
            hits.append(
                SearchHit(
                    article_id=chunk.article_id,
                    title=chunk.article_title,
                    passage=_passage(chunk.text),
                    heading=chunk.heading,
                    score=round(float(score), 4),
                    path=self.article_paths.get(chunk.article_id, ""),
                )
            )
            if len(hits) == limit:
                break
        return hits

    # -- persistence -----------------------------------------------------------------

    def save(self, index_dir: Path) -> Path:
        index_dir.mkdir(parents=True, exist_ok=True)
        build = index_dir / f"build-{uuid.uuid4().hex[:12]}"
        build.mkdir()
        np.save(build / "vectors.npy", self.vectors)
        manifest = {
            "format": INDEX_FORMAT_VERSION,
            "embedder": self.embedder_name,
            "articles": self.article_fingerprints,
            "paths": self.article_paths,
            "chunks": [asdict(chunk) for chunk in self.chunks],
        }
        (build / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        pointer = index_dir / f"CURRENT.{uuid.uuid4().hex[:8]}.tmp"
        pointer.write_text(build.name, encoding="utf-8")
        previous = _current_build(index_dir)
        pointer.replace(index_dir / "CURRENT")
        if previous is not None and previous != build:
            shutil.rmtree(previous, ignore_errors=True)
        return build

    @classmethod
    def load(cls, index_dir: Path) -> KnowledgeIndex | None:
        build = _current_build(index_dir)
        if build is None:
            return None
        try:
            manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
            vectors = np.load(build / "vectors.npy")
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict) or manifest.get("format") != INDEX_FORMAT_VERSION:
            return None
        try:
            return cls(
                chunks=[Chunk(**chunk) for chunk in manifest["chunks"]],
                vectors=np.asarray(vectors, dtype=np.float32),
                article_fingerprints=dict(manifest["articles"]),
                article_paths=dict(manifest.get("paths", {})),
                embedder_name=str(manifest["embedder"]),
            )
        except (KeyError, TypeError, ValueError):
            return None  # a damaged manifest: the caller rebuilds


def _current_build(index_dir: Path) -> Path | None:
    pointer = index_dir / "CURRENT"
    if not pointer.exists():
        return None
    build = index_dir / pointer.read_text(encoding="utf-8").strip()
    return build if build.is_dir() else None


def build_index(
    articles: Sequence[Article],
    embedder: Embedder,
    embedder_name: str,
    previous: KnowledgeIndex | None = None,
) -> KnowledgeIndex:
    """Chunk and embed the articles, reusing the vectors of articles that did not change."""
    reusable: dict[str, list[tuple[Chunk, npt.NDArray[np.float32]]]] = {}
    if previous is not None and previous.embedder_name == embedder_name:
        for chunk, vector in zip(previous.chunks, previous.vectors, strict=True):
            if previous.article_fingerprints.get(chunk.article_id) is not None:
                reusable.setdefault(chunk.article_id, []).append((chunk, vector))

    chunks: list[Chunk] = []
    vectors: list[npt.NDArray[np.float32] | None] = []
    to_embed: list[int] = []
    for article in articles:
        kept = reusable.get(article.id)
        unchanged = previous is not None and (
            previous.article_fingerprints.get(article.id) == article.fingerprint
        )
        if kept and unchanged:
            for chunk, vector in kept:
                chunks.append(chunk)
                vectors.append(vector)
            continue
        for chunk in chunk_article(article):
            to_embed.append(len(chunks))
            chunks.append(chunk)
            vectors.append(None)

    fresh = embedder.embed([chunks[i].embedding_text for i in to_embed])
    for row, position in enumerate(to_embed):
        vectors[position] = fresh[row]
    dimension = embedder.dimension
    matrix = (
        np.vstack([v for v in vectors if v is not None]).astype(np.float32)
        if chunks
        else np.zeros((0, dimension), dtype=np.float32)
    )
    return KnowledgeIndex(
        chunks=chunks,
        vectors=matrix,
        article_fingerprints={article.id: article.fingerprint for article in articles},
        article_paths={article.id: str(article.path) for article in articles},
        embedder_name=embedder_name,
    )


def load_or_build_index(
    articles: Sequence[Article], index_dir: Path, embedder: Embedder, embedder_name: str
) -> tuple[KnowledgeIndex, bool]:
    """The persisted index when it matches the articles; otherwise a rebuilt one (and True)."""
    current = KnowledgeIndex.load(index_dir)
    wanted = {article.id: article.fingerprint for article in articles}
    paths = {article.id: str(article.path) for article in articles}
    if (
        current is not None
        and current.embedder_name == embedder_name
        and current.article_fingerprints == wanted
        and current.article_paths == paths  # a moved file keeps its vectors, not its old path
    ):
        return current, False
    index = build_index(articles, embedder, embedder_name, previous=current)
    index.save(index_dir)
    return index, True
