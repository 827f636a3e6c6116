"""Load on tier0's Slack HTTP front end: signed events at increasing rates.

Starts a local server that plays Slack's Web API (recording every call), then
`tier0 serve --http` as a subprocess pointed at it, and sends signed `message.im`
events at each rate for a while (open loop: events leave on schedule whether or not
earlier ones were answered). One event in ten is delivered twice more, as Slack's
retries (`X-Slack-Retry-Num: 1` and `2`).

Per rate it prints: events offered and acknowledged per second, ack latency
p50/p95/p99/max (from the moment the event was due to leave, so a slow generator
cannot hide queueing), errors (anything but HTTP 200, or no answer), duplicates
(questions answered more than once), how long the replies took to catch up, and the
CPU used by the acknowledging process and by the answering processes it runs.
The target on a 2-core machine: >= 150 events/s with ack p95 <= 100 ms, no errors,
no duplicates.

Run with `make bench-slack`; `--rates 50,100 --seconds 5` for a quick look.
`TIER0_DATABASE_URL` picks the store (SQLite in a temporary home by default; for
PostgreSQL the run gets a schema of its own in that database).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fake_slack import FakeSlackApi  # noqa: E402
from tickets.db import scratch_schema  # noqa: E402

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
RETRIED_SHARE = 10  # one event in ten is redelivered twice
SENDERS = 48


def questions() -> list[str]:
    data = yaml.safe_load((ROOT / "bench" / "data" / "sample_kb_questions.yml").read_text())
    asked = [item["question"] for item in data["answerable"]]
    asked += [
        item if isinstance(item, str) else item["question"] for item in data.get("unanswerable", [])
    ]
    return asked


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def signed_headers(body: bytes, retry: int) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(
        SIGNING_SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256
    ).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
    }
    if retry:
        headers["X-Slack-Retry-Num"] = str(retry)
        headers["X-Slack-Retry-Reason"] = "http_timeout"
    return headers


def event_body(event_id: str, channel: str, ts: str, text: str) -> bytes:
    return json.dumps(
        {
            "token": "unused",
            "team_id": "TBENCH",
            "api_app_id": "ABENCH",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": {
                "type": "message",
                "channel_type": "im",
                "channel": channel,
                "user": "U" + channel[1:],
                "text": text,
                "ts": ts,
                "event_ts": ts,
            },
        }
    ).encode()


@dataclass(order=True)
class Delivery:
    due: float
    event_id: str = field(compare=False)
    body: bytes = field(compare=False)
    retry: int = field(compare=False)


@dataclass
class Outcome:
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def send_all(port: int, deliveries: list[Delivery], outcome: Outcome) -> None:
    """Send each delivery at its due time from a pool of sender threads."""
    work: queue.Queue[Delivery | None] = queue.Queue()
    for delivery in sorted(deliveries):
        work.put(delivery)

    def sender() -> None:
        while True:
            delivery = work.get()
            if delivery is None:
                return
            pause = delivery.due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request(
                    "POST",
                    "/slack/events",
                    body=delivery.body,
                    headers=signed_headers(delivery.body, delivery.retry),
                )
                response = connection.getresponse()
                response.read()
                connection.close()
                took = (time.perf_counter() - delivery.due) * 1000
                with outcome.lock:
                    outcome.sent += 1
                    if response.status == 200:
                        outcome.latencies_ms.append(took)
                    else:
                        outcome.errors[f"HTTP {response.status}"] += 1
            except OSError as error:
                with outcome.lock:
                    outcome.sent += 1
                    outcome.errors[type(error).__name__] += 1

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for _ in threads:
        work.put(None)
    for thread in threads:
        thread.join()


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def replies_by_thread(api: FakeSlackApi) -> Counter[str]:
    return Counter(
        str(call.args.get("thread_ts"))
        for call in api.calls_to("chat.postMessage")
        if str(call.args.get("channel", "")).startswith("D")
    )


@contextlib.contextmanager
def fresh_store(store: Path) -> Iterator[str]:
    """The store URL for this run: a new SQLite file, or with TIER0_DATABASE_URL set to
    PostgreSQL a new schema in that database (dropped afterwards), so event ids of an
    earlier run are not taken for redeliveries."""
    url = os.environ.get("TIER0_DATABASE_URL")
    if not url or make_url(url).get_backend_name() != "postgresql":
        yield url or f"sqlite:///{store / 'tier0.db'}"
        return
    with scratch_schema(url, f"bench_slack_{os.getpid()}_{int(time.time())}") as in_its_schema:
        yield in_its_schema


def start_tier0(
    api: FakeSlackApi, home: Path, store_url: str, port: int, answer_processes: int
) -> subprocess.Popen[bytes]:
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "TIER0_HOME": str(home),
        "TIER0_DATABASE_URL": store_url,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "TIER0_SLACK_API_URL": api.base_url,
        # This checkout's code, whichever environment's Python runs it.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.pop("SLACK_APP_TOKEN", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "serve",
            "--http",
            "--port",
            str(port),
            "--answer-processes",
            str(answer_processes),
        ],
        env=env,
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"tier0 serve exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit("tier0 serve did not start within 10 minutes")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """The processes `pid` started (tier0 serve's answering processes), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def answering_cpu_seconds(pid: int) -> float:
    """CPU time of the answering processes `pid` runs now (a restarted one counts anew)."""
    return sum(cpu_seconds(child) for child in children_of(pid))


def run_stage(
    pid: int,
    port: int,
    api: FakeSlackApi,
    rate: int,
    seconds: float,
    stage: int,
    asked: list[str],
    catch_up: float,
) -> dict[str, float | int | str]:
    count = int(rate * seconds)
    start = time.perf_counter() + 0.5
    deliveries: list[Delivery] = []
    threads: list[str] = []
    for n in range(count):
        due = start + n / rate
        ts = f"{1800000000 + stage * 100000 + n}.000100"
        channel = f"DBENCH{stage:02d}{n % 500:04d}"
        event_id = f"EvBench{stage:02d}{n:06d}"
        body = event_body(event_id, channel, ts, asked[n % len(asked)])
        threads.append(ts)
        deliveries.append(Delivery(due, event_id, body, 0))
        if n % RETRIED_SHARE == 0:
            # Slack retries after its 3 s timeout; here sooner, so the two overlap the work.
            deliveries.append(Delivery(due + 0.05, event_id, body, 1))
            deliveries.append(Delivery(due + 1.0, event_id, body, 2))
    outcome = Outcome()
    cpu_before = cpu_seconds(pid)
    answering_before = answering_cpu_seconds(pid)
    send_all(port, deliveries, outcome)
    sending_took = time.perf_counter() - start
    # While the events arrived: the CPU of the process that acknowledges them, and of the
    # answering processes it runs beside it.
    server_cpu = cpu_seconds(pid) - cpu_before
    answering_cpu = answering_cpu_seconds(pid) - answering_before

    wanted = set(threads)
    deadline = time.monotonic() + catch_up
    answered: Counter[str] = Counter()
    while time.monotonic() < deadline:
        answered = replies_by_thread(api)
        if wanted <= set(answered):
            break
        time.sleep(0.2)
    caught_up = time.perf_counter() - start
    time.sleep(1.0)  # a late duplicate would show up now
    answered = replies_by_thread(api)
    latencies = outcome.latencies_ms
    return {
        "rate": rate,
        "events": count,
        "deliveries": len(deliveries),
        "sent_per_s": round(len(deliveries) / sending_took, 1),
        "acked": len(latencies),
        "acks_per_s": round(len(latencies) / sending_took, 1),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
        "errors": sum(outcome.errors.values()),
        "error_kinds": ", ".join(f"{k}×{v}" for k, v in outcome.errors.items()) or "-",
        "answered": sum(1 for ts in wanted if answered[ts]),
        "duplicates": sum(1 for ts in wanted if answered[ts] > 1),
        "replies_caught_up_s": round(caught_up, 1),
        "replies_per_s": round(sum(1 for ts in wanted if answered[ts]) / caught_up, 1),
        "server_cpu_per_s": round(server_cpu / sending_took, 2),
        "cpu_ms_per_ack": round(server_cpu * 1000 / max(1, len(latencies)), 2),
        "answering_cpu_per_s": round(answering_cpu / sending_took, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,100,150,200,300")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--catch-up",
        type=float,
        default=120.0,
        help="how long to wait after a stage for its replies (what is left spills over)",
    )
    parser.add_argument(
        "--answer-processes",
        type=int,
        default=1,
        help="tier0 serve --http --answer-processes (0: the acking process answers too)",
    )
    arguments = parser.parse_args()
    rates = [int(rate) for rate in arguments.rates.split(",")]

    asked = questions()
    api = FakeSlackApi(BOT_TOKEN).start()
    # The index and intent model are kept between runs; the store is new each time.
    home = ROOT / ".tier0-bench"
    store = Path(tempfile.mkdtemp(prefix="tier0-bench-slack-"))
    port = free_port()
    print(f"tier0 serve --http on :{port}, mock Slack Web API at {api.base_url}", flush=True)
    stack = contextlib.ExitStack()
    store_url = stack.enter_context(fresh_store(store))
    process = start_tier0(api, home, store_url, port, arguments.answer_processes)
    try:
        # Warm-up: the first answers load lazily-initialised parts.
        run_stage(process.pid, port, api, 5, 2, 0, asked, arguments.catch_up)
        header = (
            f"{'rate':>5} {'events':>6} {'sent/s':>7} {'acks/s':>7} {'p50':>7} {'p95':>7} "
            f"{'p99':>7} {'max':>7} {'errors':>6} {'dups':>4} {'answered':>8} "
            f"{'replies/s':>9} {'caught up':>9} {'ack cpu':>7} {'ms/ack':>6} {'ans cpu':>7}"
        )
        print(header)
        print("-" * len(header))
        results = []
        for stage, rate in enumerate(rates, start=1):
            result = run_stage(
                process.pid, port, api, rate, arguments.seconds, stage, asked, arguments.catch_up
            )
            results.append(result)
            print(
                f"{result['rate']:>5} {result['events']:>6} {result['sent_per_s']:>7} "
                f"{result['acks_per_s']:>7} {result['p50_ms']:>7} {result['p95_ms']:>7} "
                f"{result['p99_ms']:>7} {result['max_ms']:>7} {result['errors']:>6} "
                f"{result['duplicates']:>4} {result['answered']:>8} "
                f"{result['replies_per_s']:>9} {result['replies_caught_up_s']:>8}s "
                f"{result['server_cpu_per_s']:>7} {result['cpu_ms_per_ack']:>6} "
                f"{result['answering_cpu_per_s']:>7}",
                flush=True,
            )
            if result["errors"]:
                print(f"      errors: {result['error_kinds']}")
        print(
            "\nack latencies in ms, measured from each event's due time; 'sent/s' counts "
            f"deliveries including the retries (1 event in {RETRIED_SHARE} sent 3 times); "
            "'caught up' is when the last question of the stage had its reply; 'ack cpu' is "
            "the CPU seconds per wall second of the process that acknowledges (tier0 serve "
            "--http) while the events arrived (2 = both cores), 'ms/ack' the same per "
            "acknowledged delivery (work it did besides acking included), 'ans cpu' that of "
            "its answering processes."
        )
        print(f"load average during the run: {os.getloadavg()}")
        print(
            f"this generator used {time.process_time():.1f} s CPU; "
            f"tier0 serve {cpu_seconds(process.pid):.1f} s CPU in all, its answering "
            f"processes {answering_cpu_seconds(process.pid):.1f} s"
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        api.stop()
        stack.close()
        shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
