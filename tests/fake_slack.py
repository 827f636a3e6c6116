"""A local HTTP server that plays Slack's Web API, so the real slack_sdk client is exercised.

It records every call (method and arguments) and answers the way Slack does, enough
for tier0: `auth.test`, `chat.*`, `conversations.open|replies|members`, `views.*`, and a
slash command's `response_url` (recorded as the method `response_url`).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any
from urllib.parse import parse_qs

BOT_USER_ID = "UTIER0BOT"
CHANNEL_IDS = {"it-triage": "CTRIAGE", "#it-triage": "CTRIAGE"}


@dataclass(frozen=True)
class SlackCall:
    method: str
    args: dict[str, Any]
    response: dict[str, Any]


class FakeSlackApi:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[SlackCall] = []
        # Messages tier0 may read back (conversations.replies), by (channel, ts).
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        # Members of each channel (conversations.members).
        self.members: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._ts = count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                method = self.path.strip("/").split("/")[-1]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    args = json.loads(raw or "{}")
                else:
                    args = {key: values[0] for key, values in parse_qs(raw).items()}
                for key in ("blocks", "attachments", "view"):
                    if isinstance(args.get(key), str):
                        args[key] = json.loads(args[key])
                # A slash command's response_url needs no token, as at Slack.
                authorized = method == "response_url" or (
                    self.headers.get("Authorization") == f"Bearer {fake.token}"
                )
                response = (
                    fake.respond(method, args)
                    if authorized
                    else {
                        "ok": False,
                        "error": "invalid_auth",
                    }
                )
                if authorized:
                    with fake._lock:
                        fake.calls.append(SlackCall(method, args, response))
                body = json.dumps(response).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def start(self) -> FakeSlackApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def respond(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "team": "Northwind Labs",
                "team_id": "TNORTHWIND",
                "user": "tier0",
                "user_id": BOT_USER_ID,
                "bot_id": "BTIER0",
            }
        channel = CHANNEL_IDS.get(str(args.get("channel")), args.get("channel"))
        if method == "chat.postMessage":
            ts = f"1700000{next(self._ts):03d}.000100"
            return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts, **args}}
        if method == "chat.update":
            return {"ok": True, "channel": channel, "ts": args.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000{next(self._ts):03d}.000200"}
        if method == "conversations.open":
            user = str(args.get("users", "")).split(",")[0]
            return {"ok": True, "channel": {"id": "D" + user.removeprefix("U")}}
        if method == "conversations.replies":
            found = self.messages.get((str(channel), str(args.get("ts"))))
            if found is None:
                return {"ok": False, "error": "thread_not_found"}
            return {"ok": True, "messages": [found], "has_more": False}
        if method == "conversations.members":
            return {"ok": True, "members": self.members.get(str(channel), [])}
        if method in ("views.open", "views.publish", "views.update"):
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else view
            return {"ok": True, "view": {"id": f"V{next(self._ts):05d}", **(view or {})}}
        return {"ok": True}

    # -- what tests look at --------------------------------------------------------------

    def calls_to(self, method: str) -> list[SlackCall]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 15.0) -> list[SlackCall]:
        """Bolt acks first and works after; wait until the expected calls have arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = self.calls_to(method)
            if len(calls) >= count:
                return calls
            time.sleep(0.02)
        raise AssertionError(f"expected {count} {method} call(s), got {self.calls_to(method)}")

    def posted_text(self) -> str:
        """Everything tier0 sent to Slack, as one string, for checks on escaping and leaks."""
        with self._lock:
            return json.dumps([call.args for call in self.calls])
