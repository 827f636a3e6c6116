"""`tier0 run`: Slack in Socket Mode when both tokens are set, the console chat otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.conftest import TEST_BOT_TOKEN
from tests.fake_slack import FakeSlackApi


@pytest.fixture
def slack_api() -> Iterator[FakeSlackApi]:
    api = FakeSlackApi(TEST_BOT_TOKEN).start()
    yield api
    api.stop()


def test_with_slack_tokens_run_connects_in_socket_mode(
    home: Path, slack_api: FakeSlackApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[dict[str, Any]] = []

    class RecordingSocketModeHandler:
        def __init__(self, app: Any, app_token: str) -> None:
            self.app, self.app_token = app, app_token

        def start(self) -> None:
            started.append({"app_token": self.app_token, "app": self.app})

    monkeypatch.setattr(
        "slack_bolt.adapter.socket_mode.SocketModeHandler", RecordingSocketModeHandler
    )
    env = {
        "TIER0_HOME": str(home),
        "SLACK_BOT_TOKEN": TEST_BOT_TOKEN,
        "SLACK_APP_TOKEN": "xapp-test",
        "TIER0_SLACK_API_URL": slack_api.base_url,
    }
    result = CliRunner().invoke(app, ["run"], env=env)
    assert result.exit_code == 0, result.output
    assert [call["app_token"] for call in started] == ["xapp-test"]
    assert [call.method for call in slack_api.calls] == ["auth.test"]  # the bot token checked


def test_without_slack_tokens_run_opens_the_console_chat(home: Path) -> None:
    env = {"TIER0_HOME": str(home), "SLACK_BOT_TOKEN": "", "SLACK_APP_TOKEN": ""}
    result = CliRunner().invoke(app, ["run"], env=env, input="how do i add a printer\nquit\n")
    assert result.exit_code == 0, result.output
    assert "console chat" in result.output
    assert "printer-setup" in result.output and "Did this help?" in result.output


def test_a_bot_token_slack_rejects_stops_serve_with_a_clear_error(
    home: Path, slack_api: FakeSlackApi
) -> None:
    env = {
        "TIER0_HOME": str(home),
        "SLACK_BOT_TOKEN": "xoxb-revoked",
        "SLACK_SIGNING_SECRET": "secret",
        "TIER0_SLACK_API_URL": slack_api.base_url,
    }
    result = CliRunner().invoke(app, ["serve", "--http", "--port", "0"], env=env)
    assert result.exit_code == 2
    assert "cannot check SLACK_BOT_TOKEN" in result.output and "invalid_auth" in result.output


def test_http_mode_without_a_signing_secret_refuses_to_start(home: Path) -> None:
    env = {"TIER0_HOME": str(home), "SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": ""}
    result = CliRunner().invoke(app, ["serve", "--http"], env=env)
    assert result.exit_code == 2
    assert "SLACK_SIGNING_SECRET is not set" in result.output
