"""A local HTTP server that plays Slack's Web API, so the real slack_sdk client is exercised.

It records every call (method and arguments) and answers the way Slack does, enough
for tier0: `auth.test`, `chat.*`, `conversations.open|history|replies|members` (over the
messages posted to it or seeded with `seed_message`), `users.lookupByEmail`, `views.*`,
and a slash command's `response_url` (recorded as the method `response_url`). It can also
play an outage: answer 500, or 429 with a Retry-After, until told to recover.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
        self._lock = threading.Lock()
        self._ts = count(1)
        # Messages posted, per channel id, oldest first (what conversations.history reads).
        self.messages: dict[str, list[dict[str, Any]]] = {}
        # Members of each channel (conversations.members).
        self.members: dict[str, list[str]] = {}
        # Workspace users by email (users.lookupByEmail).
        self.users_by_email: dict[str, str] = {}
        # While set: (HTTP status, error code, Retry-After seconds) every call answers with.
        self._outage: tuple[int, str, int | None] | None = None
        self.refused_calls = 0
        self._last_ts = 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                args = {key: values[0] for key, values in parse_qs(url.query).items()}
                self._answer(url.path.strip("/").split("/")[-1], args)

            def do_POST(self) -> None:
                method = self.path.strip("/").split("/")[-1]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                if "json" in (self.headers.get("Content-Type") or ""):
                    args = json.loads(raw or "{}")
                else:
                    args = {key: values[0] for key, values in parse_qs(raw).items()}
                for key in ("blocks", "attachments", "metadata", "view"):
                    if isinstance(args.get(key), str):
                        args[key] = json.loads(args[key])
                self._answer(method, args)

            def _answer(self, method: str, args: dict[str, Any]) -> None:
                # A slash command's response_url needs no token, as at Slack.
                authorized = method == "response_url" or (
                    self.headers.get("Authorization") == f"Bearer {fake.token}"
                )
                status, headers = 200, {}
                outage = fake._outage
                if outage is not None and authorized:
                    status, error, retry_after = outage
                    response: dict[str, Any] = {"ok": False, "error": error}
                    if retry_after is not None:
                        headers["Retry-After"] = str(retry_after)
                    with fake._lock:
                        fake.refused_calls += 1
                elif authorized:
                    response = fake.respond(method, args)
                    with fake._lock:
                        fake.calls.append(SlackCall(method, args, response))
                else:
                    response = {"ok": False, "error": "invalid_auth"}
                body = json.dumps(response).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
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
        if isinstance(channel, str) and channel.startswith(("U", "W")):
            # As Slack does: a message "to a user" goes to the DM with them.
            channel = "D" + channel[1:]
        if method == "conversations.open":
            user = str(args.get("users", "")).split(",")[0]
            return {"ok": True, "channel": {"id": "D" + user[1:]}}
        if method == "chat.postMessage":
            ts = self._message_ts()
            message = {"ts": ts, **args}
            with self._lock:
                self.messages.setdefault(str(channel), []).append(message)
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method in ("conversations.history", "conversations.replies"):
            return self._history(method, str(channel), args)
        if method == "chat.update":
            return {"ok": True, "channel": channel, "ts": args.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"1700000{next(self._ts):03d}.000200"}
        if method == "users.lookupByEmail":
            user = self.users_by_email.get(str(args.get("email", "")).lower())
            if user is None:
                return {"ok": False, "error": "users_not_found"}
            return {"ok": True, "user": {"id": user, "profile": {"email": args.get("email")}}}
        if method == "conversations.members":
            return {"ok": True, "members": self.members.get(str(channel), [])}
        if method in ("views.open", "views.publish", "views.update"):
            view = args.get("view")
            view = json.loads(view) if isinstance(view, str) else view
            return {"ok": True, "view": {"id": f"V{next(self._ts):05d}", **(view or {})}}
        return {"ok": True}

    def seed_message(self, channel: str, message: dict[str, Any]) -> None:
        """A message someone else wrote earlier, for tier0 to read back."""
        with self._lock:
            self.messages.setdefault(channel, []).append(message)

    def _message_ts(self) -> str:
        """A ts like Slack's: the posting time, unique within the channel."""
        with self._lock:
            self._last_ts = max(time.time(), self._last_ts + 0.000001)
            return f"{self._last_ts:.6f}"

    def _history(self, method: str, channel: str, args: dict[str, Any]) -> dict[str, Any]:
        if channel not in self.messages and not channel.startswith(("C", "D", "G")):
            return {"ok": False, "error": "channel_not_found"}
        oldest = float(args.get("oldest") or 0)
        with self._lock:
            found = [m for m in self.messages.get(channel, []) if float(m["ts"]) >= oldest]
        if method == "conversations.replies":
            # As at Slack: the thread's parent first, then its replies, oldest first.
            parent = [m for m in found if m["ts"] == args.get("ts")]
            replies = [m for m in found if m.get("thread_ts") == args.get("ts") and m not in parent]
            found = parent + replies
        else:  # conversations.history: newest first
            found = list(reversed(found))
        with_metadata = str(args.get("include_all_metadata")).lower() in ("1", "true")
        shown = [
            {key: value for key, value in m.items() if with_metadata or key != "metadata"}
            for m in found
        ]
        return {"ok": True, "channel": channel, "messages": shown, "has_more": False}

    # -- playing an outage -------------------------------------------------------------

    def fail_with(self, status: int, error: str, *, retry_after: int | None = None) -> None:
        """Answer every call with HTTP ``status`` and ``error`` until ``recover()``."""
        self._outage = (status, error, retry_after)

    def recover(self) -> None:
        self._outage = None

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

    def wait_for_matching(
        self,
        method: str,
        where: Callable[[SlackCall], bool],
        count: int = 1,
        timeout: float = 15.0,
    ) -> list[SlackCall]:
        """The `method` calls `where` holds for, once there are `count` of them: the calls
        a story waits on, whatever else (outbox deliveries) reached Slack meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            calls = [call for call in self.calls_to(method) if where(call)]
            if len(calls) >= count:
                return calls
            time.sleep(0.02)
        raise AssertionError(
            f"expected {count} matching {method} call(s), got {self.calls_to(method)}"
        )

    def posted_text(self) -> str:
        """Everything tier0 sent to Slack, as one string, for checks on escaping and leaks."""
        with self._lock:
            return json.dumps([call.args for call in self.calls])
