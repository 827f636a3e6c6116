"""Slack end to end: tier0's real bolt app served over HTTP, Slack's Web API played locally."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import count
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.runtime import Tier0
from bot.slack.app import SlackService, build_slack_service
from bot.slack.http import EVENTS_PATH, make_http_server
from tests.conftest import TEST_BOT_TOKEN, TEST_SIGNING_SECRET
from tests.fake_slack import FakeSlackApi, SlackCall

EMPLOYEE = "UEMPLOYEE1"
AGENT = "UAGENT1"
OTHER_AGENT = "UAGENT2"
DM_CHANNEL = "DEMPLOYEE1"


def sign(
    body: str, secret: str = TEST_SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class SlackDesk:
    """The app under test as Slack sees it: a URL to send signed requests to."""

    url: str
    tier0: Tier0
    api: FakeSlackApi
    _event_ids: Any
    service: SlackService

    def post(self, body: str, content_type: str, headers: dict[str, str]) -> tuple[int, str]:
        request = urllib.request.Request(
            self.url,
            data=body.encode(),
            headers={"Content-Type": content_type, **headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def send_event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        headers: dict[str, str] | None = None,
        secret: str = TEST_SIGNING_SECRET,
    ) -> tuple[int, str]:
        body = json.dumps(
            {
                "token": "legacy-unused",
                "team_id": "TNORTHWIND",
                "api_app_id": "ATIER0",
                "type": "event_callback",
                "event_id": event_id or f"Ev{next(self._event_ids):06d}",
                "event_time": int(time.time()),
                "event": event,
            }
        )
        return self.post(body, "application/json", {**sign(body, secret), **(headers or {})})

    def direct_message(self, text: str, ts: str, **kwargs: Any) -> tuple[int, str]:
        event = {
            "type": "message",
            "channel_type": "im",
            "channel": DM_CHANNEL,
            "user": EMPLOYEE,
            "text": text,
            "ts": ts,
            "event_ts": ts,
        }
        return self.send_event(event, **kwargs)

    def send_form(self, payload: dict[str, Any]) -> tuple[int, str]:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded", sign(body))

    def command(
        self, text: str, *, user: str = EMPLOYEE, channel: str = "CGENERAL"
    ) -> tuple[int, str]:
        """`/helpdesk text` typed by `user` in `channel`."""
        body = urlencode(
            {
                "token": "legacy-unused",
                "team_id": "TNORTHWIND",
                "channel_id": channel,
                "user_id": user,
                "command": "/helpdesk",
                "text": text,
                "api_app_id": "ATIER0",
                "response_url": self.api.base_url + "response_url",
                "trigger_id": f"trigger-{next(self._event_ids)}",
            }
        )
        return self.post(body, "application/x-www-form-urlencoded", sign(body))

    def submit_view(
        self, view: dict[str, Any], values: dict[str, Any], *, user: str = EMPLOYEE
    ) -> tuple[int, str]:
        """Submit a modal tier0 opened, with `values` by block id: a string for a text
        input, ("select", value) for a static select, ("user", id) for a users select."""
        state: dict[str, Any] = {}
        for block_id, value in values.items():
            if isinstance(value, tuple) and value[0] == "select":
                state[block_id] = {
                    "value": {"type": "static_select", "selected_option": {"value": value[1]}}
                }
            elif isinstance(value, tuple) and value[0] == "user":
                state[block_id] = {"value": {"type": "users_select", "selected_user": value[1]}}
            else:
                state[block_id] = {"value": {"type": "plain_text_input", "value": value}}
        payload = {
            "type": "view_submission",
            "team": {"id": "TNORTHWIND"},
            "user": {"id": user},
            "api_app_id": "ATIER0",
            "trigger_id": "trigger-view",
            "view": {
                **view,
                "id": view.get("id") or f"V{next(self._event_ids):05d}",
                "state": {"values": state},
            },
        }
        return self.send_form(payload)

    def shortcut(
        self, callback_id: str, user: str, channel: str, message: dict[str, Any]
    ) -> tuple[int, str]:
        return self.send_form(
            {
                "type": "message_action",
                "callback_id": callback_id,
                "team": {"id": "TNORTHWIND"},
                "user": {"id": user},
                "channel": {"id": channel},
                "message": message,
                "message_ts": message["ts"],
                "trigger_id": "trigger-shortcut",
                "response_url": self.api.base_url + "response_url",
            }
        )

    def click(
        self,
        user: str,
        message: dict[str, Any],
        channel: str,
        action: dict[str, Any],
        *,
        action_ts: str | None = None,
    ) -> tuple[int, str]:
        """A click on a button (or a pick in a select, given its "selected_*" keys);
        the same `action_ts` again is Slack delivering the same interaction again."""
        payload = {
            "type": "block_actions",
            "team": {"id": "TNORTHWIND"},
            "user": {"id": user},
            "api_app_id": "ATIER0",
            "trigger_id": "trigger-1",
            "channel": {"id": channel},
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel},
            "message": message,
            "actions": [
                {
                    "type": "button",
                    "block_id": action.get("block_id", "b"),
                    "action_id": action["action_id"],
                    "value": action.get("value"),
                    "action_ts": action_ts or str(time.time()),
                    **{k: v for k, v in action.items() if k.startswith("selected_")},
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded", sign(body))


@pytest.fixture
def slack_api() -> Iterator[FakeSlackApi]:
    api = FakeSlackApi(TEST_BOT_TOKEN).start()
    # The agents: without TIER0_AGENTS, whoever is in the triage channel.
    api.members["CTRIAGE"] = [AGENT, OTHER_AGENT, *(f"UAGENT{n:02d}" for n in range(8))]
    yield api
    api.stop()


@pytest.fixture
def slack(make_tier0: Callable[..., Tier0], slack_api: FakeSlackApi) -> Iterator[SlackDesk]:
    yield from serve_slack(make_tier0(TIER0_SLACK_API_URL=slack_api.base_url), slack_api)


@pytest.fixture
def slack_on_each_store(
    make_tier0: Callable[..., Tier0], slack_api: FakeSlackApi, store_url: str
) -> Iterator[SlackDesk]:
    """The same app on SQLite and on PostgreSQL."""
    tier0 = make_tier0(TIER0_SLACK_API_URL=slack_api.base_url, TIER0_DATABASE_URL=store_url)
    yield from serve_slack(tier0, slack_api)


def serve_slack(tier0: Tier0, slack_api: FakeSlackApi) -> Iterator[SlackDesk]:
    # The production default: bolt acks at once and the listener works in a thread.
    service = build_slack_service(tier0)
    server = make_http_server(service.app, host="127.0.0.1", port=0, intake=service.intake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}{EVENTS_PATH}"
    yield SlackDesk(url, tier0, slack_api, count(1), service)
    server.shutdown()
    server.server_close()
    service.stop()


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Work runs after the ack: wait until `check` holds (the store caught up)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the expected state never came about")
        time.sleep(0.02)


def posted_in(
    desk: SlackDesk,
    channel: str,
    *,
    showing: str | None = None,
    saying: str | None = None,
    count: int = 1,
) -> list[SlackCall]:
    """Messages tier0 posted in `channel` (whose blocks show `showing`, e.g. a button's
    action id, and whose text says `saying`, if given), once there are `count`: the
    outbox's delivery thread may post other news in between, so a story waits for its
    own message, not the first one."""

    def wanted(call: SlackCall) -> bool:
        if call.args.get("channel") != channel:
            return False
        if saying is not None and saying not in str(call.args.get("text") or ""):
            return False
        return showing is None or showing in json.dumps(call.args.get("blocks") or [])

    return desk.api.wait_for_matching("chat.postMessage", wanted, count=count)


def updates_of(desk: SlackDesk, ts: str, count: int = 1) -> list[SlackCall]:
    """Edits of the message `ts`, once there are `count`, in the order Slack got them."""
    return desk.api.wait_for_matching(
        "chat.update", lambda call: call.args.get("ts") == ts, count=count
    )


def settled(desk: SlackDesk) -> None:
    """Everything tier0 owes Slack is delivered (before asserting what was not sent)."""
    eventually(lambda: desk.service.sends.pending() == 0)


def button(message_args: dict[str, Any], action_id: str) -> dict[str, Any]:
    """The button with this action id in a message tier0 posted."""
    for block in message_args.get("blocks", []):
        if block.get("type") == "actions":
            for element in block["elements"]:
                if element.get("action_id") == action_id:
                    return {**element, "block_id": block.get("block_id")}
    raise AssertionError(f"no {action_id} button in {message_args}")


def as_shown(call: SlackCall) -> dict[str, Any]:
    """A message tier0 posted, as Slack includes it in a block_actions payload."""
    shown = {"type": "message", "ts": call.response["ts"], "text": call.args.get("text", "")}
    for key in ("blocks", "thread_ts"):
        if key in call.args:
            shown[key] = call.args[key]
    return shown
