"""Button clicks: did the answer help, open a ticket, claim a ticket."""

from __future__ import annotations

from collections.abc import Callable
from logging import Logger
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.blocks import (
    ASSIGN_ACTION,
    CLAIM_ACTION,
    CSAT_ACTION,
    CSAT_COMMENT_ACTION,
    ESCALATE_ACTION,
    INTERNAL_NOTE_ACTION,
    NEED_HELP_ACTION,
    OPEN_TICKET_ACTION,
    PRIORITY_ACTION,
    RESOLVE_ACTION,
    SOLVED_ACTION,
    TALK_TO_PERSON_ACTION,
)
from bot.slack.desk import SORRY, SlackDesk
from bot.slack.views import NEW_REQUEST_ACTION

Handler = Callable[[WebClient, dict[str, Any]], None]


def acknowledged(desk: SlackDesk, handler: Handler) -> Callable[..., None]:
    """Ack the click at once; do the work on the desk's pool and apologise if it fails."""

    def listener(ack: Ack, body: dict[str, Any], client: WebClient, logger: Logger) -> None:
        ack()

        def work() -> None:
            try:
                handler(client, body)
            except Exception:
                action = (body.get("actions") or [{}])[0].get("action_id", body.get("type"))
                logger.exception("failed to handle %s", action)
                channel = (body.get("channel") or {}).get("id")
                user = (body.get("user") or {}).get("id")
                if channel and user:
                    client.chat_postEphemeral(channel=channel, user=user, text=SORRY)

        desk.later(work)

    return listener


def register(app: App, desk: SlackDesk) -> None:
    app.action(SOLVED_ACTION)(acknowledged(desk, desk.mark_solved))
    app.action(NEED_HELP_ACTION)(acknowledged(desk, desk.escalate_from_button))
    app.action(OPEN_TICKET_ACTION)(acknowledged(desk, desk.escalate_from_button))
    app.action(TALK_TO_PERSON_ACTION)(acknowledged(desk, desk.talk_to_a_person))
    app.action(CLAIM_ACTION)(acknowledged(desk, desk.claim))

    for score in range(1, 6):
        app.action(f"{CSAT_ACTION}_{score}")(acknowledged(desk, desk.rate))

    def csat_comment_button(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        desk.open_csat_comment_form(client, body)  # the trigger expires in 3 s

    app.action(CSAT_COMMENT_ACTION)(csat_comment_button)

    def resolve_button(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        desk.open_resolve_form(client, body)  # the trigger expires in 3 s

    app.action(RESOLVE_ACTION)(resolve_button)

    def internal_note_button(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        desk.open_internal_note_form(client, body)

    app.action(INTERNAL_NOTE_ACTION)(internal_note_button)

    def new_request_button(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        desk.open_new_request(client, body["trigger_id"])  # the trigger expires in 3 s

    app.action(NEW_REQUEST_ACTION)(new_request_button)
    register_triage_controls(app, desk)


def register_triage_controls(app: App, desk: SlackDesk) -> None:
    """The triage post's Assign… and Priority… selects and its Escalate to L2 button."""
    app.action(ASSIGN_ACTION)(acknowledged(desk, desk.assign_from_select))
    app.action(PRIORITY_ACTION)(acknowledged(desk, desk.change_priority_from_select))

    def escalate_button(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        desk.open_escalate_form(client, body)  # the trigger expires in 3 s

    app.action(ESCALATE_ACTION)(escalate_button)
