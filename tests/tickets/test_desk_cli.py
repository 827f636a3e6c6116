"""The service desk from the command line, as an admin, an agent and an employee use it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bot.cli import app

runner = CliRunner()


@pytest.fixture
def tier0_cli(store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> CliRunner:
    monkeypatch.setenv("TIER0_DATABASE_URL", store_url)
    monkeypatch.setenv("TIER0_HOME", str(tmp_path))
    monkeypatch.delenv("TIER0_USER", raising=False)
    return runner


def tier0(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def refused(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.output


def test_a_ticket_from_opening_to_rating_through_the_cli(tier0_cli: CliRunner) -> None:
    assert "run `tier0 db upgrade` first" in refused("ticket", "list", "--as", "ann")
    assert "→" in tier0("db", "upgrade")
    tier0("user", "add", "root", "--role", "admin", "--as", "root")
    tier0("user", "add", "ann", "--role", "agent", "--team", "Service Desk L1", "--as", "root")
    tier0("user", "add", "mona", "--email", "mona@example.com", "--as", "root")
    tier0("user", "add", "alice", "--manager", "mona", "--as", "root")
    assert "only admins" in refused("user", "add", "eve", "--role", "admin", "--as", "eve")

    assert "opened T-1001 (P2, Service Desk L1)" in tier0(
        "ticket",
        "open",
        "Laptop will not boot",
        "--impact",
        "medium",
        "--urgency",
        "high",
        "--as",
        "alice",
    )
    assert "T-1001" in tier0("ticket", "list", "--as", "ann")
    assert "Only agents see a team's queue" in refused(
        "ticket", "list", "--as", "mona", "--team", "Service Desk L1"
    )
    assert "claimed: in_progress" in tier0("ticket", "claim", "T-1001", "--as", "ann")
    tier0("ticket", "comment", "T-1001", "Battery was flat", "--internal", "--as", "ann")
    tier0("ticket", "resolve", "T-1001", "Replaced the charger", "--as", "ann")
    tier0("ticket", "rate", "T-1001", "5", "--as", "alice")

    shown = json.loads(tier0("ticket", "show", "T-1001", "--as", "alice", "--json"))
    assert shown["status"] == "resolved"
    assert shown["comments"] == []  # the internal note is not Alice's to see
    assert {clock["clock"] for clock in shown["sla"]} == {"first_response", "resolution"}
    report = json.loads(tier0("report", "--since", "1d", "--json"))
    assert report["rows"][0]["resolved"] == 1
    assert report["rows"][0]["csat_average"] == 5.0
    assert "Service desk" in tier0("report", "--by", "team")
    exported = json.loads(tier0("export-user", "alice", "--as", "alice"))
    assert [t["number"] for t in exported["tickets"]] == ["T-1001"]
    assert exported["ratings"][0]["score"] == 5


def test_bad_input_gets_one_line_and_a_non_zero_exit(tier0_cli: CliRunner) -> None:
    tier0("db", "upgrade")
    tier0("user", "add", "ann", "--role", "agent", "--team", "Service Desk L1")

    assert "There is no ticket T-9999" in refused("ticket", "claim", "T-9999", "--as", "ann")
    assert "A ticket needs a title" in refused("ticket", "open", "   ", "--as", "bob")
    assert "--since takes a period" in refused("report", "--since", "forever")
    assert "--field takes name=value" in refused("catalog", "request", "figma", "-f", "oops")
    assert "Only the person themselves" in refused("export-user", "ann", "--as", "bob")
    assert "add --yes" in refused("db", "downgrade", "0001")
    assert "figma" in tier0("catalog", "list")


def test_the_store_goes_down_a_revision_and_back_up(tier0_cli: CliRunner) -> None:
    tier0("db", "upgrade")
    assert "→ 0001" in tier0("db", "downgrade", "0001", "--yes")
    assert "run `tier0 db upgrade` first" in refused("ticket", "list", "--as", "ann")
    assert "0001 →" in tier0("db", "upgrade")
