"""Message shortcuts: "Create ticket" on any message."""

from __future__ import annotations

from collections.abc import Callable
from logging import Logger
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.desk import SORRY, SlackDesk

CREATE_TICKET_SHORTCUT = "create_ticket"


def register(app: App, desk: SlackDesk) -> None:
    def create_ticket(
        ack: Ack, shortcut: dict[str, Any], client: WebClient, logger: Logger
    ) -> None:
        ack()
        channel = shortcut["channel"]["id"]
        user = shortcut["user"]["id"]
        message = shortcut["message"]

        def work() -> None:
            try:
                desk.ticket_from_message(
                    client,
                    channel=channel,
                    ts=message["ts"],
                    reported_by=user,
                    message=message,
                )
            except Exception:
                logger.exception("failed to open a ticket from a message shortcut")
                client.chat_postEphemeral(channel=channel, user=user, text=SORRY)

        desk.later(work)

    shortcut: Callable[..., Any] = app.shortcut(CREATE_TICKET_SHORTCUT)
    shortcut(create_ticket)
