"""Changing the knowledge base folder on an editor's behalf: new articles, edits, retiring.

The folder stays the source of truth, so every change is a change to a file, written
whole (to a temporary file renamed into place) so a sync or a reader never sees half
an article.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

from knowledge.articles import ArticleError
from knowledge.html_import import ImportedFile

_FRONT_MATTER_END = re.compile(r"\A(---\s*\n.*?\n)(---\s*(?:\n|\Z))", re.DOTALL)


def new_article_text(article_id: str, title: str, owner: str | None, today: dt.date) -> str:
    """A draft for `kb add` to open in the editor: every field, and what to write where."""
    review_by = today + dt.timedelta(days=180)
    return (
        "---\n"
        f"id: {article_id}\n"
        f"title: {json.dumps(title, ensure_ascii=False)}\n"
        "tags: []\n"
        f"owner: {owner or ''}  # your Slack user id (U…) or email\n"
        "audience: everyone\n"
        "status: draft  # draft, published or retired; only published articles answer\n"
        f"updated: {today.isoformat()}\n"
        f"review_by: {review_by.isoformat()}\n"
        "# Golden questions this article must answer first (checked by `tier0 kb check`):\n"
        "# questions:\n"
        "#   - how do I …\n"
        "---\n\n"
        f"# {title}\n\n"
        "What the problem is, in one or two sentences.\n\n"
        "## Steps\n1. …\n\n"
        "## If it still does not work\nPost in #it-help.\n"
    )


def set_front_matter_field(text: str, name: str, value: str, path: Path) -> str:
    """The same file with one front matter field set, everything else left as written
    (comments, order, quoting), so the change reads as one line in a diff."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    match = _FRONT_MATTER_END.match(text)
    if match is None:
        raise ArticleError(f"{path}: no YAML front matter (the file must start with a `---` block)")
    head, closing = match.group(1), match.group(2)
    line = f"{name}: {value}\n"
    field_line = re.compile(rf"^{re.escape(name)}\s*:.*\n", re.MULTILINE)
    head = field_line.sub(lambda _: line, head, count=1) if field_line.search(head) else head + line
    return head + closing + text[match.end() :]


def write_file_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def replace_folder(target: Path, files: Sequence[ImportedFile]) -> None:
    """Make `target` hold exactly these files; the old folder goes only once the new one
    is complete."""
    staging = target.with_name(target.name + ".importing")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for item in files:
        destination = staging / item.relative_path
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(item.text, encoding="utf-8")
    previous = target.with_name(target.name + ".previous")
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        target.replace(previous)
    staging.replace(target)
    shutil.rmtree(previous, ignore_errors=True)
