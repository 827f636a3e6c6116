"""Knowledge articles: Markdown files with YAML front matter, the folder is the source of truth."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REQUIRED_FIELDS = ("id", "title")
_FRONT_MATTER = re.compile(r"\A---\s*\n(?P<meta>.*?)\n---\s*(?:\n|\Z)(?P<body>.*)\Z", re.DOTALL)
_ARTICLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class ArticleError(ValueError):
    """An article that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    body: str
    path: Path
    tags: tuple[str, ...] = ()
    owner: str | None = None
    updated: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.id}\n{self.title}\n{self.body}".encode()).hexdigest()[:16]


def parse_article(text: str, path: Path) -> Article:
    # Editors on Windows may save a byte-order mark before the `---`.
    match = _FRONT_MATTER.match(text.removeprefix("\ufeff").replace("\r\n", "\n"))
    if match is None:
        raise ArticleError(f"{path}: no YAML front matter (the file must start with a `---` block)")
    try:
        meta = yaml.safe_load(match.group("meta")) or {}
    except yaml.YAMLError as error:
        raise ArticleError(f"{path}: front matter is not valid YAML: {error}") from error
    if not isinstance(meta, dict):
        raise ArticleError(f"{path}: front matter must be a mapping of fields")
    missing = [name for name in REQUIRED_FIELDS if not str(meta.get(name) or "").strip()]
    if missing:
        raise ArticleError(f"{path}: front matter is missing {', '.join(missing)}")
    article_id = str(meta["id"]).strip()
    if not _ARTICLE_ID.match(article_id):
        raise ArticleError(f"{path}: id {article_id!r} may use only letters, digits, '.', '_', '-'")
    body = match.group("body").strip()
    if not body:
        raise ArticleError(f"{path}: the article has no body")
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [part.strip() for part in tags.split(",")]
    updated = meta.get("updated")
    if isinstance(updated, dt.date):
        updated = updated.isoformat()
    return Article(
        id=article_id,
        title=str(meta["title"]).strip(),
        body=body,
        path=path,
        tags=tuple(str(tag) for tag in tags if str(tag).strip()),
        owner=str(meta["owner"]) if meta.get("owner") else None,
        updated=str(updated) if updated else None,
        meta=meta,
    )


def load_articles(directory: Path) -> list[Article]:
    """Every article in the folder; any bad file stops the load with an error naming it."""
    if not directory.is_dir():
        raise ArticleError(f"{directory}: knowledge base folder not found")
    articles: list[Article] = []
    seen: dict[str, Path] = {}
    for path in sorted(directory.glob("**/*.md")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ArticleError(f"{path}: cannot be read as UTF-8 text: {error}") from error
        article = parse_article(text, path)
        if article.id in seen:
            raise ArticleError(f"{path}: duplicate id {article.id!r} (also in {seen[article.id]})")
        seen[article.id] = path
        articles.append(article)
    if not articles:
        raise ArticleError(f"{directory}: no articles (*.md) found")
    return articles
