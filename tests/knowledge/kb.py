"""Writing small knowledge-base folders for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path


def article_text(
    article_id: str, title: str, body: str, *, extra: str = "", tags: str = "[]"
) -> str:
    front = f"---\nid: {article_id}\ntitle: {title}\ntags: {tags}\n{extra}---\n"
    return front + textwrap.dedent(body).strip() + "\n"


def write_article(folder: Path, name: str, article_id: str, title: str, body: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(article_text(article_id, title, body), encoding="utf-8")
    return path
