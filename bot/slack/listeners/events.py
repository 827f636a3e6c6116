"""Messages to tier0: direct messages and @mentions in help channels."""

from __future__ import annotations

from logging import Logger
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient

from bot.slack.desk import SlackDesk

# Edits, deletions, joins and bot posts are not questions from a person.
_IGNORED_SUBTYPES = {"message_changed", "message_deleted", "bot_message", "channel_join"}


def register(app: App, desk: SlackDesk) -> None:
    def direct_message(
        body: dict[str, Any], event: dict[str, Any], client: WebClient, logger: Logger
    ) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id"):
            return
        if event.get("subtype") in _IGNORED_SUBTYPES:
            return
        try:
            desk.answer_message(client, event, body.get("event_id"))
        except Exception:
            logger.exception("failed to handle a direct message")

    def mention(
        body: dict[str, Any], event: dict[str, Any], client: WebClient, logger: Logger
    ) -> None:
        if event.get("bot_id"):
            return
        try:
            desk.answer_message(client, event, body.get("event_id"))
        except Exception:
            logger.exception("failed to handle a mention")

    app.event("message")(direct_message)
    app.event("app_mention")(mention)
