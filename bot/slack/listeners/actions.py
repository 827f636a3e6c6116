"""Button clicks: did the answer help, open a ticket, claim a ticket."""

from __future__ import annotations

from collections.abc import Callable
from logging import Logger
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.blocks import CLAIM_ACTION, NEED_HELP_ACTION, OPEN_TICKET_ACTION, SOLVED_ACTION
from bot.slack.desk import SORRY, SlackDesk

Handler = Callable[[WebClient, dict[str, Any]], None]


def _acknowledged(handler: Handler) -> Callable[..., None]:
    def listener(ack: Ack, body: dict[str, Any], client: WebClient, logger: Logger) -> None:
        ack()
        try:
            handler(client, body)
        except Exception:
            logger.exception("failed to handle %s", body.get("actions", [{}])[0].get("action_id"))
            channel, user = body.get("channel", {}).get("id"), body.get("user", {}).get("id")
            if channel and user:
                client.chat_postEphemeral(channel=channel, user=user, text=SORRY)

    return listener


def register(app: App, desk: SlackDesk) -> None:
    app.action(SOLVED_ACTION)(_acknowledged(desk.mark_solved))
    app.action(NEED_HELP_ACTION)(_acknowledged(desk.escalate_from_button))
    app.action(OPEN_TICKET_ACTION)(_acknowledged(desk.escalate_from_button))
    app.action(CLAIM_ACTION)(_acknowledged(desk.claim))
