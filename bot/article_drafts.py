"""Article drafts from resolved tickets, and what editors do with them: publish, edit, discard.

The knowledge folder stays the source of truth, as with `tier0 kb add`: a draft is a
Markdown file with `status: draft`. Every change writes the file whole, records a
version in the store under the editor's name, and, when the article answers questions
(or did), updates the search index article by article so a running bot answers from
it on its next search. Only editors (and admins) may change articles.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bot.config import BUNDLED_KB_DIR, Settings
from knowledge.articles import SLACK_USER_ID, Article, ArticleError, load_articles, parse_article
from knowledge.editing import new_article_text, set_front_matter_field, write_file_atomically
from knowledge.versions import ArticleVersions, VersionError
from nlu.embedding import Embedder
from tickets.directory import Directory
from tickets.models import TicketStatus
from tickets.service import TicketView

# An id names the problem and the ticket it came from: "printer-prints-blank-t-1042".
_SLUG_WORDS = 8
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_FRONT_MATTER = re.compile(r"\A---\s*\n.*?\n---\s*(?:\n|\Z)", re.DOTALL)
RESOLVED = {TicketStatus.RESOLVED, TicketStatus.CLOSED}
# One change to the folder at a time in this process (two editors clicking at once);
# the store and the index guard against other processes themselves.
_FOLDER_LOCK = threading.Lock()


class DraftError(ValueError):
    """Why an editor's request cannot be done; the message is for them."""


def article_id_for(ticket: TicketView) -> str:
    words = [w for w in _NOT_SLUG.split(ticket.title.lower()) if w][:_SLUG_WORDS]
    slug = "-".join(words)[:80].strip("-") or "article"
    return f"{slug}-{ticket.number.lower()}"


def draft_text(ticket: TicketView, article_id: str, editor: str, today: dt.date) -> str:
    """The article file: kb add's front matter, the problem and its resolution as body."""
    owner = editor if SLACK_USER_ID.match(editor) else None
    head = new_article_text(article_id, ticket.title, owner, today).split("\n---\n", 1)[0]
    problem = ticket.description.strip() or ticket.title
    body = (
        f"# {ticket.title}\n\n## Problem\n{problem}\n\n"
        f"## Solution\n{(ticket.resolution or '').strip()}\n"
    )
    text = f"{head}\n---\n\n{body}"
    path = Path(f"{article_id}.md")
    text = set_front_matter_field(text, "tags", json.dumps([ticket.category]), path)
    return set_front_matter_field(text, "from_ticket", ticket.number, path)


def with_body(source: str, body: str) -> str:
    match = _FRONT_MATTER.match(source)
    if match is None:
        raise DraftError("the article has no front matter to keep")
    return f"{match.group(0).rstrip()}\n\n{body.strip()}\n"


class ArticleDrafts:
    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        embedder: Callable[[], Embedder],
        *,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        self._settings = settings
        self._sessions = session_factory
        self._embedder = embedder
        self._today = today
        self.versions = ArticleVersions(session_factory)

    def check_editor(self, editor: str) -> None:
        """PermissionDenied unless `editor` may change articles."""
        Directory(self._sessions).check_can_edit_articles(editor)

    # -- reading ------------------------------------------------------------------------

    def folder(self) -> Path:
        folder = self._settings.resolved_kb_dir
        if folder.resolve() == BUNDLED_KB_DIR.resolve():
            raise DraftError(
                "The knowledge base is tier0's bundled sample, which is read-only. "
                "Ask an admin to import your own (`tier0 kb import DIR`) or set TIER0_KB_DIR."
            )
        return folder

    def article(self, article_id: str) -> Article:
        for article in self._articles():
            if article.id == article_id:
                return article
        raise DraftError(f"There is no article `{article_id}` any more.")

    def _articles(self) -> list[Article]:
        try:
            return load_articles(self.folder())
        except ArticleError as error:
            raise DraftError(f"The knowledge folder has a broken article: {error}") from error

    # -- changing -----------------------------------------------------------------------

    def draft_from_ticket(self, ticket: TicketView, *, editor: str) -> Article:
        """A draft article from a resolved ticket's problem and resolution."""
        self.check_editor(editor)
        if ticket.status not in RESOLVED or not (ticket.resolution or "").strip():
            raise DraftError(
                f"{ticket.number} is not resolved yet: an article needs the resolution. "
                "Save it as a draft once an agent has resolved it."
            )
        article_id = article_id_for(ticket)
        with _FOLDER_LOCK:
            folder = self.folder()
            existing = {a.id: a for a in self._articles()}
            if article_id in existing:
                raise DraftError(
                    f"{ticket.number} is drafted already as `{article_id}` "
                    f"({existing[article_id].status})."
                )
            path = folder / f"{article_id}.md"
            text = draft_text(ticket, article_id, editor, self._today())
            article = self._checked(text, path)
            write_file_atomically(path, article.source)
            self._record(editor, reindex=False)
        return article

    def publish(self, article_id: str, *, editor: str) -> Article:
        self.check_editor(editor)
        with _FOLDER_LOCK:
            article = self.article(article_id)
            if article.status == "published":
                raise DraftError(f"`{article_id}` is published already.")
            text = set_front_matter_field(article.source, "status", "published", article.path)
            text = set_front_matter_field(text, "updated", self._today().isoformat(), article.path)
            published = self._checked(text, article.path)
            write_file_atomically(article.path, published.source)
            self._record(editor, reindex=True)
        return published

    def edit(self, article_id: str, *, editor: str, title: str, body: str) -> Article:
        self.check_editor(editor)
        if not title.strip() or not body.strip():
            raise DraftError("An article needs a title and a body.")
        with _FOLDER_LOCK:
            article = self.article(article_id)
            text = set_front_matter_field(
                article.source, "title", json.dumps(title.strip(), ensure_ascii=False), article.path
            )
            text = set_front_matter_field(text, "updated", self._today().isoformat(), article.path)
            edited = self._checked(with_body(text, body), article.path)
            write_file_atomically(article.path, edited.source)
            self._record(editor, reindex=edited.searchable)
        return edited

    def discard(self, article_id: str, *, editor: str) -> Article:
        """Drop a draft: its file goes; the store keeps its versions (as retired)."""
        self.check_editor(editor)
        with _FOLDER_LOCK:
            article = self.article(article_id)
            if article.status != "draft":
                raise DraftError(
                    f"`{article_id}` is {article.status}, not a draft: retire it with "
                    f"`tier0 kb retire {article_id}`."
                )
            article.path.unlink()
            self._record(editor, reindex=False)
        return article

    def _checked(self, text: str, path: Path) -> Article:
        try:
            return parse_article(text, path)
        except ArticleError as error:
            raise DraftError(str(error)) from error

    def _record(self, editor: str, *, reindex: bool) -> None:
        """A version for what changed, by this editor; then the index, if it answers."""
        try:
            self.versions.sync(self._articles(), editor)
        except VersionError as error:
            raise DraftError(str(error)) from error
        if reindex:
            from bot.runtime import sync_knowledge

            sync_knowledge(self._settings, self._embedder())
