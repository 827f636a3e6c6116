"""Making user-written text safe inside Slack's mrkdwn."""

from __future__ import annotations

import re

MAX_SECTION_CHARS = 2900  # Slack rejects a section text over 3000 characters


def escape_mrkdwn(text: str) -> str:
    """Escape the three control characters Slack reads as markup.

    Escaping `<` and `>` is what neutralises `<!channel>`, `<!here>`, `<@U123>` and
    `<https://evil|innocent>`: they reach Slack as literal text, never as pings or links.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def quote(text: str, limit: int = MAX_SECTION_CHARS) -> str:
    """User text as a mrkdwn block quote, escaped and cut to fit a section."""
    escaped = clip(escape_mrkdwn(text.strip()), limit - 200)
    return "\n".join(f">{line}" for line in escaped.splitlines() or [""])


def titled_link(title: str, url: str | None) -> str:
    """`title` as a Slack link to `url` (`<url|title>`), or as plain text without one.

    `url` must already be a checked http(s) address (knowledge.articles.link_problem);
    one that is not is shown as text rather than trusted: a `>` or `|` in it would end
    the link early and let the rest be read as markup.
    """
    text = escape_mrkdwn(title)
    if not url or any(char in url for char in "<>| \n"):
        return text
    return f"<{url.replace('&', '&amp;')}|{text}>"


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


def article_mrkdwn(markdown: str) -> str:
    """Article Markdown as Slack mrkdwn: `**bold**` -> `*bold*`, `[text](url)` -> a link.

    Articles are written by editors, so their links are kept; everything else is escaped.
    """
    links: list[str] = []

    def keep_link(match: re.Match[str]) -> str:
        links.append(f"<{match.group(2)}|{escape_mrkdwn(match.group(1))}>")
        return f"\x00{len(links) - 1}\x00"

    text = escape_mrkdwn(_LINK.sub(keep_link, markdown))
    text = _BOLD.sub(r"*\1*", text)
    return re.sub("\x00(\\d+)\x00", lambda m: links[int(m.group(1))], text)


_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]+")


def user_mention(user: str | None) -> str:
    """A Slack user id renders as a mention; any other name (console users) as plain text."""
    if not user:
        return "—"
    return f"<@{user}>" if _SLACK_USER_ID.fullmatch(user) else escape_mrkdwn(user)
