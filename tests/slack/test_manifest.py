"""The app manifest asks for what tier0 listens to and calls, and for nothing more."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.slack.drafts import SAVE_DRAFT_SHORTCUT
from bot.slack.listeners.commands import HELPDESK_COMMAND
from bot.slack.listeners.shortcuts import CREATE_TICKET_SHORTCUT

MANIFEST = Path(__file__).resolve().parents[2] / "slack" / "manifest.yml"
SLACK_CODE = Path(__file__).resolve().parents[2] / "bot" / "slack"

# Each Web API method tier0 calls, and the scope Slack wants for it.
SCOPE_OF_METHOD = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "conversations_open": "im:write",
    "conversations_replies": "channels:history",
    "conversations_members": "channels:read",
}


def load() -> dict[str, object]:
    manifest: dict[str, object] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return manifest


def test_manifest_subscribes_to_exactly_the_events_tier0_listens_to() -> None:
    manifest = load()
    settings = manifest["settings"]
    assert isinstance(settings, dict)
    assert sorted(settings["event_subscriptions"]["bot_events"]) == [
        "app_home_opened",
        "app_mention",
        "message.channels",
        "message.im",
        "reaction_added",
    ]
    assert settings["interactivity"]["is_enabled"] is True  # buttons, forms, shortcuts
    assert settings["socket_mode_enabled"] is True


def test_manifest_declares_the_command_and_the_shortcut() -> None:
    features = load()["features"]
    assert isinstance(features, dict)
    assert [c["command"] for c in features["slash_commands"]] == [HELPDESK_COMMAND]
    assert [(s["type"], s["callback_id"]) for s in features["shortcuts"]] == [
        ("message", CREATE_TICKET_SHORTCUT),
        ("message", SAVE_DRAFT_SHORTCUT),
    ]
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True


def test_manifest_asks_for_the_scopes_of_the_methods_called_and_no_others() -> None:
    source = "\n".join(path.read_text() for path in SLACK_CODE.rglob("*.py"))
    called = {method for method in SCOPE_OF_METHOD if f".{method}(" in source}
    assert called == set(SCOPE_OF_METHOD), "a Web API method is called without a scope listed"
    needed = {SCOPE_OF_METHOD[method] for method in called}
    # What events and features need, beyond the methods.
    needed |= {"app_mentions:read", "im:history", "reactions:read", "commands"}
    oauth = load()["oauth_config"]
    assert isinstance(oauth, dict)
    assert sorted(oauth["scopes"]["bot"]) == sorted(needed)
