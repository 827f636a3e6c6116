"""Splitting articles into passages by heading, each carrying its article title and heading path."""

from __future__ import annotations

import re
from dataclasses import dataclass

from knowledge.articles import Article

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
# all-MiniLM-L6-v2 reads at most 256 word pieces (and was trained on 128): about
# 1,000 characters of English prose, less for commands and URLs. Shorter passages do
# better still: one vector speaks for fewer things, so a "Contacts" passage is not
# drowned by what its section says around it. Measured on the dev questions of both
# knowledge bases (bench/eval_kb.py, right decision over 10 shuffles): 700 characters
# 90.8 %, 500 90.9 %, 450 90.4 %, 400 92.3 %, 350 91.2 %, 300 91.0 %; held out, every
# size from 300 to 500 did better than 700 (93.3-95.2 % against 91.3 %; 400: 94.2 %).
# docs/search-quality.md, "Session 9: shorter passages".
MAX_CHUNK_CHARS = 400
# A sentence ends at . ! ? : ; and a space, but "4. " opening a numbered list item is
# not one.
_SENTENCE_END = re.compile(r"(?<=[.!?:;])(?<!^\d\.)(?<!^\d\d\.)\s+")


@dataclass(frozen=True)
class Chunk:
    article_id: str
    article_title: str
    heading: str  # "Steps › On an iPhone"; empty for the article's opening text
    text: str
    # What stood between this passage and the one before it in the article, so a reply
    # that reads on across the cut keeps the layout: "\n\n" between paragraphs, "\n"
    # between lines, " " inside a line; empty for the first passage of a section.
    joined_by: str = ""

    @property
    def context(self) -> str:
        return " — ".join(part for part in (self.article_title, self.heading) if part)

    @property
    def embedding_text(self) -> str:
        """What the dense index embeds: the title and headings give a passage its context."""
        return f"{self.context}\n{self.text}"


def _split_words(text: str, limit: int) -> list[str]:
    """A run of text without sentence breaks (a long URL list, a log line) cut at spaces."""
    pieces: list[str] = []
    current = ""
    for word in text.split(" "):
        while len(word) > limit:  # one "word" longer than a passage: cut it hard
            if current:
                pieces.append(current)
                current = ""
            pieces.append(word[:limit])
            word = word[limit:]
        if current and len(current) + 1 + len(word) > limit:
            pieces.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        pieces.append(current)
    return pieces


def _split_paragraph(paragraph: str, limit: int) -> list[tuple[str, str]]:
    """One paragraph longer than a passage, cut between its lines, so that the items of a
    list stay whole and on lines of their own; a line longer than a passage is cut
    between sentences (or words, failing that). Each piece comes with what stood
    before it at its cut ("\n" or " "; empty for the first)."""
    parts: list[tuple[str, str]] = []  # (what joins it to the part before, the part)
    for line in paragraph.split("\n"):
        if len(line) <= limit:
            parts.append(("\n", line))
            continue
        sentences = [
            piece
            for sentence in _SENTENCE_END.split(line)
            for piece in (_split_words(sentence, limit) if len(sentence) > limit else [sentence])
        ]
        parts.extend(("\n" if n == 0 else " ", piece) for n, piece in enumerate(sentences))
    return _packed(parts, limit)


def _packed(parts: list[tuple[str, str]], limit: int) -> list[tuple[str, str]]:
    """Parts, each with what joins it to the one before, packed in order into pieces of
    at most `limit` characters; each piece keeps the joiner its first part was cut at."""
    pieces: list[tuple[str, str]] = []
    cut_at, current = "", ""
    for joiner, part in parts:
        if current and len(current) + len(joiner) + len(part) > limit:
            pieces.append((cut_at, current))
            cut_at, current = joiner, part
        elif current:
            current = f"{current}{joiner}{part}"
        else:
            current = part
    if current:
        pieces.append((cut_at, current))
    return pieces


def split_passage_with_joins(text: str, limit: int = MAX_CHUNK_CHARS) -> list[tuple[str, str]]:
    """Paragraphs packed into passages of at most `limit` characters, in order, each with
    what stood before it in the text ("\n\n", "\n" or " "; empty for the first)."""
    if len(text) <= limit:
        return [("", text)]
    paragraphs: list[tuple[str, str]] = []
    for paragraph in text.split("\n\n"):
        paragraph = paragraph.strip("\n")
        if not paragraph.strip():
            continue
        pieces = _split_paragraph(paragraph, limit) if len(paragraph) > limit else [("", paragraph)]
        paragraphs.append(("\n\n", pieces[0][1]))
        paragraphs.extend(pieces[1:])
    return [
        ("" if number == 0 else joiner, piece)
        for number, (joiner, piece) in enumerate(_packed(paragraphs, limit))
    ]


def split_passage(text: str, limit: int = MAX_CHUNK_CHARS) -> list[str]:
    """Paragraphs packed into passages of at most `limit` characters, in order."""
    return [piece for _, piece in split_passage_with_joins(text, limit)]


def chunk_article(article: Article, max_chars: int = MAX_CHUNK_CHARS) -> list[Chunk]:
    chunks: list[Chunk] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []

    def flush() -> None:
        text = "\n".join(lines).strip()
        lines.clear()
        if not text:
            return
        heading = " › ".join(title for level, title in path if level > 1)
        for joiner, piece in split_passage_with_joins(text, max_chars):
            chunks.append(Chunk(article.id, article.title, heading, piece, joiner))

    fence: str | None = None  # the ``` or ~~~ run that opened the code block we are in
    for line in article.body.splitlines():
        opening = _FENCE.match(line)
        if opening is not None:
            marker = opening.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            lines.append(line)
            continue
        match = None if fence is not None else _HEADING.match(line)
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
