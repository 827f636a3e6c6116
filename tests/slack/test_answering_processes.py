"""Over HTTP one process acknowledges Slack's events and others answer them.

`tier0 serve --http` only verifies, stores and acknowledges an event; answering
processes claim it from the inbox. Every event must still get exactly one reply, however
many answering processes race for it and whichever of them dies.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

import pytest

from bot.runtime import Tier0
from bot.slack.app import SlackService, build_slack_service
from bot.slack.http import EVENTS_PATH, make_http_server
from bot.slack.inbox import GroupCommit, InboxState, SlackInbox
from tests.conftest import TEST_BOT_TOKEN, TEST_SIGNING_SECRET
from tests.fake_slack import FakeSlackApi
from tests.local_smtp import free_port
from tests.slack.conftest import SlackDesk, eventually, sign

RETRY = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}


def replies_by_thread(api: FakeSlackApi) -> Counter[str]:
    return Counter(str(call.args.get("thread_ts")) for call in api.calls_to("chat.postMessage"))


@pytest.fixture
def acking_only(
    make_tier0: Callable[..., Tier0], slack_api: FakeSlackApi, store_url: str
) -> Iterator[tuple[SlackDesk, list[SlackService]]]:
    """`serve --http` that answers nothing itself, and a list to add answerers to; on
    SQLite and on PostgreSQL."""
    tier0 = make_tier0(TIER0_SLACK_API_URL=slack_api.base_url, TIER0_DATABASE_URL=store_url)
    acking = build_slack_service(tier0, answer_events=False)
    server = make_http_server(acking.app, host="127.0.0.1", port=0, intake=acking.intake)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}{EVENTS_PATH}"
    answerers: list[SlackService] = []
    yield SlackDesk(url, tier0, slack_api, count(1), acking), answerers
    server.shutdown()
    server.server_close()
    for service in [acking, *answerers]:
        service.stop()


def test_events_the_acking_process_stored_are_answered_once_by_racing_answerers(
    acking_only: tuple[SlackDesk, list[SlackService]],
) -> None:
    slack, answerers = acking_only
    questions = [f"17000002{n:02d}.000001" for n in range(8)]
    for n, ts in enumerate(questions):
        assert slack.direct_message("i forgot my password", ts=ts, event_id=f"EvRACE{n}")[0] == 200
    assert slack.direct_message("i forgot my password", ts=questions[0], event_id="EvRACE0")[0] == (
        200
    )
    time.sleep(0.5)
    # Acknowledged and kept, not answered: this process only acks.
    assert slack.api.calls_to("chat.postMessage") == []
    assert slack.service.inbox.state_of("EvRACE3") is InboxState.RECEIVED

    # Two answering processes (here: services of their own on the same store) start.
    answerers += [build_slack_service(slack.tier0), build_slack_service(slack.tier0)]
    for n in range(8, 12):  # and more come in while they work
        ts = f"17000002{n:02d}.000001"
        questions.append(ts)
        status, _ = slack.direct_message(
            "how do i connect to the vpn", ts=ts, event_id=f"EvRACE{n}", headers=RETRY
        )
        assert status == 200

    eventually(lambda: set(questions) <= set(replies_by_thread(slack.api)), timeout=60)
    time.sleep(1.0)  # a second answer would show up now
    assert replies_by_thread(slack.api) == Counter(dict.fromkeys(questions, 1))
    for n in range(12):
        assert slack.service.inbox.state_of(f"EvRACE{n}") is InboxState.DONE


def test_forged_events_are_refused_before_anything_is_stored_by_the_acking_process(
    acking_only: tuple[SlackDesk, list[SlackService]],
) -> None:
    slack, _ = acking_only
    status, _ = slack.direct_message(
        "hello", ts="1700000300.000001", event_id="EvFORGED2", secret="not-the-secret"
    )
    assert status == 401
    assert slack.service.inbox.state_of("EvFORGED2") is None


def test_an_event_with_an_unusable_id_is_refused_with_the_reason(
    acking_only: tuple[SlackDesk, list[SlackService]],
) -> None:
    slack, _ = acking_only
    status, said = slack.direct_message("hello", ts="1700000301.000001", event_id="x" * 500)
    assert status == 400
    assert "event_id" in said
    assert slack.service.inbox.state_of("x" * 500) is None


# -- `tier0 serve --http` as an operator runs it ---------------------------------------


def serve_env(home: Path, api: FakeSlackApi) -> dict[str, str]:
    return {
        **os.environ,
        "TIER0_HOME": str(home),
        "TIER0_DATABASE_URL": f"sqlite:///{home / 'tier0.db'}",
        "SLACK_BOT_TOKEN": TEST_BOT_TOKEN,
        "SLACK_SIGNING_SECRET": TEST_SIGNING_SECRET,
        "TIER0_SLACK_API_URL": api.base_url,
        "TIER0_TRIAGE_CHANNEL": "it-triage",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def children_of(pid: int) -> list[int]:
    """The live processes `pid` started, from /proc (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def post_direct_message(url: str, ts: str, event_id: str, headers: dict[str, str]) -> int:
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "TNORTHWIND",
            "api_app_id": "ATIER0",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": {
                "type": "message",
                "channel_type": "im",
                "channel": "DEMPLOYEE1",
                "user": "UEMPLOYEE1",
                "text": "i forgot my password",
                "ts": ts,
                "event_ts": ts,
            },
        }
    )
    request = urllib.request.Request(
        url,
        data=body.encode(),
        headers={"Content-Type": "application/json", **sign(body), **headers},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def answering_pids(serve: subprocess.Popen[str], timeout: float = 120) -> list[int]:
    deadline = time.monotonic() + timeout
    while not (pids := children_of(serve.pid)):
        assert serve.poll() is None, serve.stdout.read() if serve.stdout else ""
        assert time.monotonic() < deadline, "serve started no answering process"
        time.sleep(0.2)
    return pids


def test_serve_http_answers_in_a_process_of_its_own_which_is_restarted_when_it_dies(
    tmp_path: Path, prebuilt_home: Path, slack_api: FakeSlackApi
) -> None:
    home = tmp_path / "home"
    for part in ("index", "nlu"):
        shutil.copytree(prebuilt_home / part, home / part)
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--http", "--port", str(port)],
        env=serve_env(home, slack_api),
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}{EVENTS_PATH}"

    def direct_message(ts: str, event_id: str, **headers: str) -> int:
        deadline = time.monotonic() + 120
        while True:
            try:
                return post_direct_message(url, ts, event_id, headers)
            except OSError:  # not listening yet
                assert serve.poll() is None, serve.stdout.read() if serve.stdout else ""
                assert time.monotonic() < deadline, "serve never listened"
                time.sleep(0.3)

    try:
        assert direct_message("1700000401.000001", "EvPROC1") == 200
        assert direct_message("1700000401.000001", "EvPROC1", **RETRY) == 200
        [first] = answering_pids(serve)
        slack_api.wait_for("chat.postMessage", timeout=120)

        # The answering process dies: events keep being acknowledged and stored, and
        # the process started in its place answers them.
        os.kill(first, signal.SIGKILL)
        eventually(lambda: first not in children_of(serve.pid), timeout=10)
        assert direct_message("1700000402.000001", "EvPROC2") == 200
        eventually(lambda: bool(set(children_of(serve.pid)) - {first}), timeout=30)
        eventually(lambda: "1700000402.000001" in replies_by_thread(slack_api), timeout=120)
        time.sleep(1.0)
        assert replies_by_thread(slack_api) == Counter(
            {"1700000401.000001": 1, "1700000402.000001": 1}
        )
        [second] = children_of(serve.pid)

        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        # Its answering process leaves with it.
        eventually(lambda: not Path(f"/proc/{second}").exists(), timeout=30)
    finally:
        for pid in children_of(serve.pid):
            os.kill(pid, signal.SIGKILL)
        if serve.poll() is None:
            serve.kill()


def test_events_stored_by_bolts_middleware_as_in_socket_mode_are_answered_once(
    make_tier0: Callable[..., Tier0], slack_api: FakeSlackApi
) -> None:
    # Socket Mode has no HTTP intake: bolt's middleware keeps the event and acks it, and
    # the same answering path takes it from the inbox. Served here without the intake.
    tier0 = make_tier0(TIER0_SLACK_API_URL=slack_api.base_url)
    service = build_slack_service(tier0)
    server = make_http_server(service.app, host="127.0.0.1", port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    slack = SlackDesk(
        f"http://127.0.0.1:{server.server_address[1]}{EVENTS_PATH}",
        tier0,
        slack_api,
        count(1),
        service,
    )
    try:
        for headers in ({}, RETRY):
            status, _ = slack.direct_message(
                "i forgot my password", ts="1700000500.000001", event_id="EvSOCKET", headers=headers
            )
            assert status == 200
        eventually(lambda: bool(slack_api.calls_to("chat.postMessage")), timeout=30)
        time.sleep(1.0)
        assert replies_by_thread(slack_api) == Counter({"1700000500.000001": 1})
        assert service.inbox.state_of("EvSOCKET") is InboxState.DONE
    finally:
        server.shutdown()
        server.server_close()
        service.stop()


def test_deliveries_of_one_event_committed_together_keep_it_once(
    make_tier0: Callable[..., Tier0], slack_api: FakeSlackApi, store_url: str
) -> None:
    tier0 = make_tier0(TIER0_SLACK_API_URL=slack_api.base_url, TIER0_DATABASE_URL=store_url)
    inbox = SlackInbox(tier0.session_factory)
    writer = GroupCommit(inbox)
    kept: Counter[str] = Counter()
    lock = threading.Lock()

    def deliver(event_id: str) -> None:
        if writer.receive(event_id, '{"type":"event_callback"}'):
            with lock:
                kept[event_id] += 1

    # Redeliveries racing their first delivery, into the same transactions.
    deliveries = [f"EvBATCH{n % 10}" for n in range(60)]
    threads = [threading.Thread(target=deliver, args=(event_id,)) for event_id in deliveries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert kept == Counter({f"EvBATCH{n}": 1 for n in range(10)})
    assert inbox.receive("EvBATCH3", "{}") is False
    with pytest.raises(ValueError):
        writer.receive(" ", "{}")
