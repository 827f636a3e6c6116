"""`tier0 worker` and `tier0 outbox` from the command line, as an operator runs them."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from tests.conftest import TEST_BOT_TOKEN
from tests.fake_slack import FakeSlackApi
from tests.local_smtp import LocalSmtpServer, free_port
from tickets import TicketService, create_store_engine, make_session_factory, upgrade_schema
from tickets.outbox import enqueue_email, enqueue_slack_message


def owe_two_notifications(database_url: str) -> None:
    engine = create_store_engine(database_url)
    upgrade_schema(engine)
    with make_session_factory(engine).begin() as session:
        enqueue_slack_message(
            session, channel="CTRIAGE", text="New ticket T-1001", dedupe_key="triage:T-1001"
        )
        enqueue_email(
            session,
            to="ana@northwind.test",
            subject="[T-1001] We received your request",
            body="We opened T-1001 for you.",
            dedupe_key="opened:T-1001:mail",
            ticket_number="T-1001",
        )
    engine.dispose()


def test_the_worker_process_delivers_the_outbox_and_stops_cleanly_on_sigterm(
    tmp_path: Path,
) -> None:
    database_url = f"sqlite:///{tmp_path / 'tier0.db'}"
    owe_two_notifications(database_url)
    slack = FakeSlackApi(TEST_BOT_TOKEN).start()
    smtp = LocalSmtpServer().start()
    env = {
        **os.environ,
        "TIER0_HOME": str(tmp_path),
        "TIER0_DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": TEST_BOT_TOKEN,
        "TIER0_SLACK_API_URL": slack.base_url,
        "TIER0_SMTP_HOST": "127.0.0.1",
        "TIER0_SMTP_PORT": str(smtp.port),
        "TIER0_SMTP_FROM": "it@northwind.test",
        "TIER0_WORKER_DELIVERY_INTERVAL": "0.2",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        [mail] = smtp.wait_for(1, timeout=60)
        [post] = slack.wait_for("chat.postMessage", timeout=30)
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
        slack.stop()
        smtp.stop()

    assert worker.returncode == 0, output
    assert "tier0 worker running: outbox delivery" in output
    assert mail["Subject"] == "[T-1001] We received your request"
    assert post.args["text"] == "New ticket T-1001"
    assert len(smtp.messages) == 1  # each delivered once, over several delivery rounds
    assert len(slack.calls_to("chat.postMessage")) == 1


def test_outbox_status_lists_what_waits_and_retry_requeues_the_dead(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'tier0.db'}"
    owe_two_notifications(database_url)
    env = {"TIER0_HOME": str(tmp_path), "TIER0_DATABASE_URL": database_url}

    status = CliRunner().invoke(app, ["outbox", "status"], env=env)
    retry = CliRunner().invoke(app, ["outbox", "retry"], env=env)

    assert status.exit_code == 0, status.output
    assert "pending: 2" in status.output and "dead: 0" in status.output
    assert "T-1001" in status.output
    assert retry.exit_code == 0 and "0 notification(s) queued again" in retry.output


def test_a_worker_pointed_at_a_database_it_cannot_open_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    env = {
        "TIER0_HOME": str(tmp_path),
        "TIER0_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none",
    }

    result = CliRunner().invoke(app, ["worker"], env=env)

    assert result.exit_code == 2
    assert "cannot open the ticket store" in result.output
    assert "Traceback" not in result.output


def test_tier0_mail_turns_a_mail_into_a_ticket_and_stops_on_sigterm(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'tier0.db'}"
    port = free_port()
    env = {
        **os.environ,
        "TIER0_HOME": str(tmp_path),
        "TIER0_DATABASE_URL": database_url,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "mail", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        reply = send_when_listening(port, "Printer on floor 3 is jammed")
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()

    assert reply.startswith("2.0.0 Opened T-1001"), reply
    assert process.returncode == 0, output
    engine = create_store_engine(database_url)
    [ticket] = TicketService(make_session_factory(engine)).list_for_requester("ana@northwind.test")
    engine.dispose()
    assert ticket.title == "Printer on floor 3 is jammed"


def send_when_listening(port: int, subject: str, timeout: float = 60.0) -> str:
    """Send one mail as soon as the endpoint accepts connections; its final reply text."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = smtplib.SMTP("127.0.0.1", port, timeout=10)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with client:
        client.ehlo()
        client.mail("ana@northwind.test")
        client.rcpt("it@northwind.test")
        body = f"From: ana@northwind.test\r\nSubject: {subject}\r\n\r\nPaper stuck.\r\n"
        _code, reply = client.data(body.encode())
    return str(reply.decode())


def test_mail_on_a_port_in_use_or_a_bad_setting_is_a_one_line_error(tmp_path: Path) -> None:
    env = {"TIER0_HOME": str(tmp_path), "TIER0_DATABASE_URL": f"sqlite:///{tmp_path}/t.db"}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        in_use = CliRunner().invoke(app, ["mail", "--port", str(port)], env=env)
    bad_interval = CliRunner().invoke(
        app, ["worker"], env={**env, "TIER0_WORKER_DELIVERY_INTERVAL": "0"}
    )

    assert in_use.exit_code == 2
    assert f"cannot listen for mail on 127.0.0.1:{port}" in in_use.output
    assert bad_interval.exit_code == 2
    assert "TIER0_WORKER_DELIVERY_INTERVAL" in bad_interval.output
    assert "Traceback" not in in_use.output + bad_interval.output
