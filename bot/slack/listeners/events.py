"""Messages to tier0: direct messages and @mentions in help channels.

Each listener only decides whether the event is for tier0 and queues the work; bolt
has acknowledged the request already.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.slack.desk import SlackDesk

# 🎫 is :ticket:; :admission_tickets: is the other ticket emoji people reach for.
TICKET_REACTIONS = {"ticket", "admission_tickets"}
# Edits, deletions, joins and bot posts are not questions from a person.
_IGNORED_SUBTYPES = {"message_changed", "message_deleted", "bot_message", "channel_join"}


def _from_a_person(event: dict[str, Any]) -> bool:
    return not event.get("bot_id") and event.get("subtype") not in _IGNORED_SUBTYPES


def register(app: App, desk: SlackDesk) -> None:
    def message(
        body: dict[str, Any], event: dict[str, Any], client: WebClient, context: BoltContext
    ) -> None:
        """A DM is a question (or a ticket-thread reply); in a channel, only replies in a
        ticket's thread concern tier0 (@mentions come as app_mention)."""
        event_id = body.get("event_id")
        if not _from_a_person(event):
            desk.skip_event(event_id)
        elif event.get("channel_type") == "im":
            desk.handle_event(context, event_id, lambda: desk.on_direct_message(client, event))
        elif event.get("thread_ts") and event.get("thread_ts") != event.get("ts"):
            desk.handle_event(context, event_id, lambda: desk.on_channel_reply(client, event))
        else:
            desk.skip_event(event_id)

    def mention(
        body: dict[str, Any], event: dict[str, Any], client: WebClient, context: BoltContext
    ) -> None:
        event_id = body.get("event_id")
        if not _from_a_person(event):
            desk.skip_event(event_id)
            return
        desk.handle_event(context, event_id, lambda: desk.answer_message(client, event))

    def home_opened(
        body: dict[str, Any], event: dict[str, Any], client: WebClient, context: BoltContext
    ) -> None:
        event_id = body.get("event_id")
        if event.get("tab") != "home":
            desk.skip_event(event_id)
            return
        desk.handle_event(context, event_id, lambda: desk.publish_home(client, event["user"]))

    def reaction(
        body: dict[str, Any], event: dict[str, Any], client: WebClient, context: BoltContext
    ) -> None:
        event_id = body.get("event_id")
        item = event.get("item") or {}
        if event.get("reaction") not in TICKET_REACTIONS or item.get("type") != "message":
            desk.skip_event(event_id)
            return
        desk.handle_event(
            context,
            event_id,
            lambda: desk.ticket_from_message(
                client, channel=item["channel"], ts=item["ts"], reported_by=event["user"]
            ),
        )

    app.event("message")(message)
    app.event("app_mention")(mention)
    app.event("app_home_opened")(home_opened)
    app.event("reaction_added")(reaction)
