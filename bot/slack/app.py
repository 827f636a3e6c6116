"""The bolt app: the same app serves Socket Mode and the HTTP Events API."""

from __future__ import annotations

from slack_bolt import App
from slack_sdk import WebClient

from bot.runtime import Tier0
from bot.slack.desk import SlackDesk
from bot.slack.listeners import register_listeners


def create_slack_app(tier0: Tier0, *, process_before_response: bool = False) -> App:
    settings = tier0.settings
    base_url = (
        settings.slack_api_url
        if settings.slack_api_url.endswith("/")
        else settings.slack_api_url + "/"
    )
    client = WebClient(token=settings.slack_bot_token, base_url=base_url)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret,
        process_before_response=process_before_response,
        # Socket Mode needs no signing secret; bolt still wants one to build the app.
        request_verification_enabled=bool(settings.slack_signing_secret),
    )
    register_listeners(app, SlackDesk(tier0))
    return app
