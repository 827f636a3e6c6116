"""Every Slack listener, grouped by kind as in Slack's bolt starter template."""

from __future__ import annotations

from slack_bolt import App

from bot.slack import catalog, drafts
from bot.slack.desk import SlackDesk
from bot.slack.listeners import actions, commands, events, shortcuts, views


def register_listeners(app: App, desk: SlackDesk) -> None:
    events.register(app, desk)
    actions.register(app, desk)
    commands.register(app, desk)
    shortcuts.register(app, desk)
    views.register(app, desk)
    catalog.register(app, desk)
    drafts.register(app, desk)
