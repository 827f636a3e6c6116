"""The /helpdesk slash command."""

from __future__ import annotations

from logging import Logger
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.slack.catalog import SlackCatalog
from bot.slack.desk import SORRY, SlackDesk

HELPDESK_COMMAND = "/helpdesk"
CATALOG_WORD = "catalog"  # `/helpdesk catalog` opens the service catalog


def register(app: App, desk: SlackDesk) -> None:
    def helpdesk(
        ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond, logger: Logger
    ) -> None:
        text = (command.get("text") or "").strip()
        if not text:
            ack()
            # The trigger id is valid for 3 seconds: the form opens now, not on the pool.
            desk.open_new_request(client, command["trigger_id"])
            return
        if text.lower() == CATALOG_WORD:
            ack()
            SlackCatalog(desk).open_catalog(client, command["trigger_id"])
            return
        ack(response_type="ephemeral", text="On it…")

        def work() -> None:
            try:
                desk.helpdesk_command(client, command, respond)
            except Exception:
                logger.exception("failed to handle /helpdesk")
                respond(text=SORRY, response_type="ephemeral")

        desk.later(work)

    app.command(HELPDESK_COMMAND)(helpdesk)
