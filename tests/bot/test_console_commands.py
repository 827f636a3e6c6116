"""The console front end: `tier0 ask`, `tier0 kb import`, run as a person runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app


def run_tier0(
    home: Path, *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "TIER0_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        **env,
    }
    for name in ("TIER0_KB_DIR", "TIER0_DATABASE_URL", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN"):
        if name not in env:
            environment.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )


def test_ask_jsonl_answers_from_the_sample_kb_and_escalates_what_it_cannot(home: Path) -> None:
    questions = "\n".join(
        [
            "locked out after typing my password wrong too many times",
            "how do i configure terraform remote state in s3",
            "",
            "my laptop screen is cracked",
        ]
    )
    result = run_tier0(home, "ask", "--jsonl", stdin=questions + "\n")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4  # one answer per question, the empty one included

    answered, unanswerable, empty, broken = lines
    assert answered["decision"] == "answer"
    assert answered["articles"][0]["id"] == "account-locked"
    assert set(answered) >= {"text", "intent", "confidence", "decision", "articles"}
    assert unanswerable["decision"] == "escalate" and unanswerable["articles"] == []
    assert empty["decision"] == "smalltalk" and "didn't get any text" in empty["reply"]
    assert broken["decision"] == "ticket" and broken["ticket"] == "T-1001"


def test_ask_without_a_question_says_how_to_use_it(home: Path) -> None:
    result = CliRunner().invoke(app, ["ask"], env={"TIER0_HOME": str(home)})
    assert result.exit_code == 2
    assert "give a question" in result.output


def test_kb_import_makes_a_folder_the_knowledge_base(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "our-kb"
    folder.mkdir()
    (folder / "espresso.md").write_text(
        "---\nid: espresso-machine\ntitle: Descale the kitchen espresso machine\n---\n\n"
        "# Descale the kitchen espresso machine\n\nWhen the orange light blinks, run the "
        "descaling programme with one sachet of descaler and a full water tank.\n",
        encoding="utf-8",
    )
    imported = run_tier0(home, "kb", "import", str(folder))
    assert imported.returncode == 0, imported.stderr
    assert "Imported 1 articles" in imported.stdout

    asked = run_tier0(home, "ask", "--json", "--dry-run", "how do i descale the coffee machine")
    reply = json.loads(asked.stdout)
    assert reply["decision"] == "answer"
    assert reply["articles"][0]["id"] == "espresso-machine"


def test_kb_import_of_a_broken_folder_names_the_file_and_keeps_the_old_kb(
    home: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "broken-kb"
    folder.mkdir()
    (folder / "no-front-matter.md").write_text("# Just a heading\n\nText.\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["kb", "import", str(folder)], env={"TIER0_HOME": str(home)})
    assert result.exit_code == 2
    assert "no-front-matter.md" in result.output and "front matter" in result.output
    assert not (home / "kb").exists()


def test_an_unreachable_database_is_named_without_its_password(home: Path) -> None:
    url = "postgresql+psycopg://tier0:s3cret-pw@127.0.0.1:1/tier0"
    result = CliRunner().invoke(
        app, ["ask", "hello"], env={"TIER0_HOME": str(home), "TIER0_DATABASE_URL": url}
    )
    assert result.exit_code == 2
    assert "cannot open the ticket store at postgresql+psycopg://tier0:***@127.0.0.1:1" in (
        result.output
    )
    assert "s3cret-pw" not in result.output


def test_a_malformed_database_url_is_reported(home: Path) -> None:
    result = CliRunner().invoke(
        app, ["ask", "hello"], env={"TIER0_HOME": str(home), "TIER0_DATABASE_URL": "not a url"}
    )
    assert result.exit_code == 2
    assert "TIER0_DATABASE_URL is not a database URL" in result.output
