"""Modal submissions: the new request form, the agents' forms, a rating's comment."""

from __future__ import annotations

from logging import Logger
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.desk import SORRY, SlackDesk
from bot.slack.views import (
    CSAT_COMMENT_VIEW,
    ESCALATE_VIEW,
    INTERNAL_NOTE_VIEW,
    NEW_REQUEST_VIEW,
    RESOLVE_VIEW,
    submitted_values,
)


def register(app: App, desk: SlackDesk) -> None:
    def new_request(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, logger: Logger
    ) -> None:
        errors = desk.request_errors(view)
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()
        user = body["user"]["id"]

        def work() -> None:
            try:
                desk.submit_new_request(client, body)
            except Exception:
                logger.exception("failed to open a ticket from the request form")
                desk.sends.post(user, SORRY)  # to the user: their DM with tier0

        desk.later(work)

    app.view(NEW_REQUEST_VIEW)(new_request)

    def resolution(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        if not submitted_values(view).get("resolution", "").strip():
            ack(
                response_action="errors", errors={"resolution": "Tell the requester what fixed it."}
            )
            return
        ack()

        desk.later_logged(lambda: desk.resolve_from_form(client, body), "resolve from the form")

    app.view(RESOLVE_VIEW)(resolution)

    def internal_note(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
    ) -> None:
        if not submitted_values(view).get("note", "").strip():
            ack(response_action="errors", errors={"note": "Write the note."})
            return
        ack()

        desk.later_logged(lambda: desk.add_internal_note(client, body), "add an internal note")

    app.view(INTERNAL_NOTE_VIEW)(internal_note)

    def csat_comment(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
    ) -> None:
        if not submitted_values(view).get("comment", "").strip():
            ack(response_action="errors", errors={"comment": "Write your comment, or cancel."})
            return
        ack()

        desk.later_logged(lambda: desk.comment_on_rating(client, body), "keep a rating's comment")

    app.view(CSAT_COMMENT_VIEW)(csat_comment)
    register_escalation(app, desk)


def register_escalation(app: App, desk: SlackDesk) -> None:
    def escalation(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        if not submitted_values(view).get("reason", "").strip():
            ack(response_action="errors", errors={"reason": "Say why it needs the next tier."})
            return
        ack()

        desk.later_logged(lambda: desk.escalate_from_form(client, body), "escalate from the form")

    app.view(ESCALATE_VIEW)(escalation)
