"""With a real Rasa: train DIET on Rasa's helpdesk-assistant data, serve it, parse through tier0.

Needs `.venv-rasa` (`make rasa`). Without it the real-Rasa test is skipped locally, but
fails under CI (`CI` set), where Rasa must be exercised.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.assistant import Decision, IncomingMessage
from bot.cli import app
from bot.runtime import Tier0
from nlu.rasa_backend import RasaClient
from nlu.rasa_training import RasaError, RasaProject, rasa_executable

HELPDESK_NLU = Path(__file__).resolve().parents[2] / "tests" / "nlu" / "data" / "helpdesk_nlu.yml"
# Few epochs: the test checks the plumbing on clear messages, not DIET's accuracy.
EPOCHS = 15
# Generous: on a loaded 2-core machine Rasa took 8 minutes to load a model.
SERVER_START_TIMEOUT_SECONDS = 1200
TRAIN_TIMEOUT_SECONDS = 1800

runner = CliRunner()


def require_rasa() -> None:
    try:
        rasa_executable()
    except RasaError as error:
        if os.environ.get("CI"):
            pytest.fail(f"{error} (CI must run the real-Rasa test)")
        pytest.skip(str(error))


def tier0_command(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli", *args]


def tier0_env(home: Path) -> dict[str, str]:
    environment = {**os.environ, "TIER0_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    for name in ("TIER0_KB_DIR", "TIER0_DATABASE_URL", "TIER0_NLU_DATA", "TIER0_NLU_BACKEND"):
        environment.pop(name, None)
    return environment


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def rasa_server(home: Path) -> Iterator[str]:
    """`tier0 nlu train --backend rasa` then `tier0 nlu rasa-serve`, as a user runs them."""
    require_rasa()
    train = [*tier0_command(home, "nlu", "train"), "--backend", "rasa",
             "--data", str(HELPDESK_NLU), "--epochs", str(EPOCHS)]  # fmt: skip
    trained = subprocess.run(
        train, env=tier0_env(home), capture_output=True, text=True,
        timeout=TRAIN_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr + trained.stdout
    assert "trained in" in trained.stdout
    again = subprocess.run(
        train, env=tier0_env(home), capture_output=True, text=True, timeout=600, check=False
    )
    assert again.returncode == 0 and "already up to date" in again.stdout

    port = free_port()
    server = subprocess.Popen(
        tier0_command(home, "nlu", "rasa-serve", "--port", str(port)),
        env=tier0_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    client = RasaClient(url, timeout=5)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"rasa-serve exited: {server.stderr and server.stderr.read()[-3000:]}")
            try:
                client.parse("hello")
                break
            except Exception:  # not listening, or the model still loading
                if time.monotonic() > deadline:
                    pytest.fail("the Rasa server did not come up")
                time.sleep(1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.rasa
def test_rasa_trained_on_the_helpdesk_data_drives_the_assistant(
    rasa_server: str, make_tier0: Callable[..., Tier0], home: Path
) -> None:
    raw = urllib.request.Request(
        f"{rasa_server}/model/parse",
        data=json.dumps({"text": "what's the status of my incident?"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(raw, timeout=30) as response:
        rasa_says = json.loads(response.read())
    assert rasa_says["intent"]["name"] == "incident_status"

    tier0 = make_tier0(TIER0_NLU_BACKEND="rasa", TIER0_RASA_URL=rasa_server)
    ticket = tier0.tickets.open_ticket(
        requester="alice", title="VPN drops every hour", description="VPN drops every hour"
    )

    status = tier0.assistant.respond(
        IncomingMessage("c1", "alice", "what's the status of my incident?")
    )
    hello = tier0.assistant.respond(IncomingMessage("c2", "alice", "hey there"))
    person = tier0.assistant.respond(IncomingMessage("c3", "bob", "i want to talk to a human"))

    assert status.intent == "ticket_status"
    assert status.confidence == round(rasa_says["intent"]["confidence"], 4)
    assert status.decision is Decision.STATUS and [t.number for t in status.tickets] == [
        ticket.number
    ]
    assert (hello.intent, hello.decision) == ("greet", Decision.SMALLTALK)
    assert person.intent == "talk_to_human" and person.decision is Decision.TICKET
    assert RasaProject(home / "rasa").model_path.is_file()


def test_training_with_rasa_without_make_rasa_is_a_one_line_error(home: Path) -> None:
    result = runner.invoke(
        app,
        ["nlu", "train", "--backend", "rasa"],
        env={"TIER0_HOME": str(home), "TIER0_RASA_VENV": str(home / "no-such-venv")},
    )

    assert result.exit_code == 2
    assert "run `make rasa` first" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2


def test_training_with_rasa_checks_the_data_first(home: Path, tmp_path: Path) -> None:
    broken = tmp_path / "nlu.yml"
    broken.write_text("nlu:\n- intent: greet\n  examples: hello\n", encoding="utf-8")

    result = runner.invoke(
        app, ["nlu", "train", "--backend", "rasa", "--data", str(broken)],
        env={"TIER0_HOME": str(home)},
    )  # fmt: skip

    assert result.exit_code == 2
    assert str(broken) in result.output and "Traceback" not in result.output


def test_an_unknown_training_backend_is_refused(home: Path) -> None:
    result = runner.invoke(
        app, ["nlu", "train", "--backend", "spacy"], env={"TIER0_HOME": str(home)}
    )
    assert result.exit_code == 2 and "--backend must be builtin or rasa" in result.output


def test_serving_before_training_says_what_to_run(home: Path) -> None:
    result = runner.invoke(app, ["nlu", "rasa-serve"], env={"TIER0_HOME": str(home)})

    assert result.exit_code == 2
    assert "run `tier0 nlu train --backend rasa` first" in result.output
