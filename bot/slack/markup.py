"""Making user-written text safe inside Slack's mrkdwn."""

from __future__ import annotations

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
