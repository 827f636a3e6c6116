"""Splitting articles into passages by heading, each carrying its article title and heading path."""

from __future__ import annotations

import re
from dataclasses import dataclass

from knowledge.articles import Article

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
MAX_CHUNK_CHARS = 1500


@dataclass(frozen=True)
class Chunk:
    article_id: str
    article_title: str
    heading: str  # "Steps › On an iPhone"; empty for the article's opening text
    text: str

    @property
    def embedding_text(self) -> str:
        """What the dense index embeds: the title and headings give a passage its context."""
        context = " — ".join(part for part in (self.article_title, self.heading) if part)
        return f"{context}\n{self.text}"


def _split_long(text: str) -> list[str]:
    if len(text) <= MAX_CHUNK_CHARS:
        return [text]
    pieces: list[str] = []
    current = ""
    for paragraph in text.split("\n\n"):
        if current and len(current) + len(paragraph) > MAX_CHUNK_CHARS:
            pieces.append(current.strip())
            current = ""
        current += paragraph + "\n\n"
    if current.strip():
        pieces.append(current.strip())
    return pieces


def chunk_article(article: Article) -> list[Chunk]:
    chunks: list[Chunk] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []

    def flush() -> None:
        text = "\n".join(lines).strip()
        lines.clear()
        if not text:
            return
        heading = " › ".join(title for level, title in path if level > 1)
        for piece in _split_long(text):
            chunks.append(Chunk(article.id, article.title, heading, piece))

    in_code = False
    for line in article.body.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        flush()
        level = len(match.group(1))
        path = [(lvl, title) for lvl, title in path if lvl < level] + [(level, match.group(2))]
    flush()
    if not chunks:  # an article that is only headings still needs to be findable
        chunks.append(Chunk(article.id, article.title, "", article.title))
    return chunks
