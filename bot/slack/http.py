"""HTTP mode: Slack's Events API, interactivity and slash commands at one path, over WSGI.

A threaded stdlib WSGI server is enough for one replica; behind a load balancer the
same `wsgi_app` runs under any WSGI server (gunicorn, uwsgi).

Event deliveries take the short way (`bot.slack.intake`: verify, store, ack) and never
enter bolt here; interactions and commands go through bolt, which verifies them itself.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.slack.intake import EventIntake

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

EVENTS_PATH = "/slack/events"
# Slack's payloads are a few kB; anything far larger is not Slack.
MAX_BODY_BYTES = 1_000_000
_STATUS_LINES = {200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized"}


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: a burst of Slack deliveries would be
    # refused at the socket (connection reset) before a thread could accept them.
    request_queue_size = 1024


class _QuietHandler(WSGIRequestHandler):
    # Buffer the response and send it in one segment when the handler finishes. Unbuffered
    # (the stdlib's default), the status line, each header and the body are sent one by
    # one, and with Nagle's algorithm and the client's delayed ACK the later segments can
    # wait tens of milliseconds: a slow ack for no work at all.
    wbufsize = -1

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def wsgi_app(app: App, intake: EventIntake | None = None) -> Any:
    """The WSGI application; without `intake` every request goes through bolt."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        if intake is None or path != EVENTS_PATH or environ.get("REQUEST_METHOD") != "POST":
            return slack(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > MAX_BODY_BYTES:
            start_response("413 Payload Too Large", [("Content-Type", "text/plain")])
            return [b"request body too large"]
        body = environ["wsgi.input"].read(length) if length else b""
        result = intake.take(body, _headers(environ))
        if result.status is None:
            # Not an event delivery: bolt reads the body we already took off the socket.
            environ["wsgi.input"] = io.BytesIO(body)
            return slack(environ, start_response)
        said = result.reason.encode()
        start_response(
            _STATUS_LINES.get(result.status, f"{result.status} Error"),
            [("Content-Type", "text/plain;charset=utf-8"), ("Content-Length", str(len(said)))],
        )
        return [said]

    return application


def _headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The request headers the intake reads, by lower-case name."""
    return {
        key[5:].lower().replace("_", "-"): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_X_SLACK_")
    }


def make_http_server(
    app: App, host: str = "0.0.0.0", port: int = 3000, *, intake: EventIntake | None = None
) -> WSGIServer:
    """A server ready for `serve_forever()`; port 0 picks a free port (tests)."""
    return make_server(
        host,
        port,
        wsgi_app(app, intake),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
