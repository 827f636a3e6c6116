"""Article failure routing: an article that did not settle a question is its owner's news.

When a ticket follows an answer ("Still need help", "Talk to a person", or the
assistant opening one), each article the employee was shown has its owner told in a
direct message: the question, and the ticket it became. The owner comes from the
article's front matter (`owner`: a Slack user id, or an email looked up with
`users.lookupByEmail` when the outbox delivers the DM, so an outage delays it rather than
losing it). The failure itself is counted by the assistant in the article
feedback log (`tier0 kb stats`, column "failures").
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from slack_sdk import WebClient

from bot.slack.markup import clip, escape_mrkdwn, quote
from bot.slack.sends import SlackSends
from knowledge.articles import Article, article_link, load_articles
from tickets.service import TicketView

logger = logging.getLogger(__name__)

# Articles change rarely; their owners are read again at most this often.
OWNERS_CACHE_SECONDS = 60.0


class KnowledgeFolder:
    """The articles' front matter (owners, links) as the folder has it, read again at most
    every OWNERS_CACHE_SECONDS; a folder that cannot be read is logged and counts as empty."""

    def __init__(self, kb_dir: Path, base_url: str | None = None) -> None:
        self._kb_dir = kb_dir
        self._base_url = base_url
        self._lock = threading.Lock()
        self._articles: dict[str, Article] = {}
        self._read_at = float("-inf")

    def article(self, article_id: str) -> Article | None:
        with self._lock:
            if time.monotonic() - self._read_at > OWNERS_CACHE_SECONDS:
                try:
                    articles = load_articles(self._kb_dir)
                except Exception:
                    logger.exception("cannot read the articles in %s", self._kb_dir)
                    articles = []
                self._articles = {a.id: a for a in articles}
                self._read_at = time.monotonic()
            return self._articles.get(article_id)

    def links(self, article_ids: list[str]) -> dict[str, str]:
        """Article id → where to read it, for those of `article_ids` that have a link."""
        found: dict[str, str] = {}
        for article_id in article_ids:
            article = self.article(article_id)
            link = article_link(article, self._kb_dir, self._base_url) if article else None
            if link:
                found[article_id] = link
        return found


class ArticleOwners:
    def __init__(self, folder: KnowledgeFolder, sends: SlackSends) -> None:
        self._folder = folder
        self._sends = sends

    def tell_owners(self, client: WebClient, ticket: TicketView) -> list[str]:
        """DM each owner of the articles tried before `ticket`, once, naming their
        articles; the owners (Slack ids or emails) owed a DM."""
        titles_by_user: dict[str, list[str]] = {}
        for article in ticket.articles_tried:
            owner, title = self._owner_of(str(article["id"]))
            if owner:
                # A Slack id, or an email the outbox's sender looks up when it delivers
                # (so a Slack outage now delays the DM rather than losing it).
                titles_by_user.setdefault(owner, []).append(title or str(article["title"]))
        for user, titles in titles_by_user.items():
            self._sends.post(
                user,
                failure_notice(titles, ticket),
                key=f"article-failed:{user}:{ticket.number}",
                ticket_number=ticket.number,
            )
        return list(titles_by_user)

    def _owner_of(self, article_id: str) -> tuple[str | None, str | None]:
        article = self._folder.article(article_id)
        return (article.owner, article.title) if article is not None else (None, None)


def failure_notice(titles: list[str], ticket: TicketView) -> str:
    named = ", ".join(f"*{escape_mrkdwn(clip(title, 200))}*" for title in titles[:10])
    which = "Your article" if len(titles) == 1 else "Your articles"
    return (
        f"📉 {which} {named} did not settle a question; it became ticket *{ticket.number}*."
        f"\n{quote(ticket.title, 1500)}"
    )
