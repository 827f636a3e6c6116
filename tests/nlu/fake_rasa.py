"""A local HTTP server that answers `/model/parse` the way a Rasa server does.

Tests tell it what to answer per message (or to be slow, or broken) and read what it
was asked.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The end of a stand-in `rasa train nlu`: writes the model file its arguments ask for.
WRITE_REQUESTED_MODEL = """while [ $# -gt 0 ]; do
  case "$1" in --out) out="$2";; --fixed-model-name) name="$2";; esac
  shift
done
mkdir -p "$out" && echo model > "$out/$name.tar.gz"
"""


def rasa_parse(
    text: str,
    intent: str,
    confidence: float,
    *,
    others: dict[str, float] | None = None,
    entities: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An answer in the exact shape of Rasa 3.6's `/model/parse`."""
    ranking = [{"name": intent, "confidence": confidence}]
    ranking += [{"name": n, "confidence": c} for n, c in (others or {}).items()]
    return {
        "text": text,
        "intent": {"name": intent, "confidence": confidence},
        "entities": entities or [],
        "text_tokens": [[0, len(text)]],
        "intent_ranking": sorted(ranking, key=lambda r: -float(r["confidence"])),
        "response_selector": {"all_retrieval_intents": [], "default": {}},
    }


@dataclass
class FakeRasa:
    url: str
    answer: Callable[[str], tuple[int, bytes]]
    received: list[dict[str, Any]] = field(default_factory=list)
    delay_seconds: float = 0.0

    def answer_json(self, respond: Callable[[str], dict[str, Any]]) -> None:
        self.answer = lambda text: (200, json.dumps(respond(text)).encode())


@contextmanager
def fake_rasa_server() -> Iterator[FakeRasa]:
    fake = FakeRasa(
        url="", answer=lambda text: (200, json.dumps(rasa_parse(text, "greet", 0.9)).encode())
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            fake.received.append({"path": self.path, "body": body})
            if fake.delay_seconds:
                time.sleep(fake.delay_seconds)
            if not self.path.startswith("/model/parse"):
                status, payload = 404, b'{"status": "failure", "reason": "NotFound"}'
            else:
                status, payload = fake.answer(str(body.get("text", "")))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            # A client that gave up waiting is what a timeout test wants.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
