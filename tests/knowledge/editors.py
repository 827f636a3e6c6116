"""A small knowledge base an editor works on, and `tier0 kb …` run the way they run it."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from bot.cli import app

ARTICLES = {
    "vpn-connect": """\
        ---
        id: vpn-connect
        title: Connect to the VPN from home
        tags: [vpn, remote]
        owner: U0NETWORK1
        audience: everyone
        status: published
        updated: 2026-06-18
        review_by: 2099-01-01
        questions:
          - how do I connect to the vpn from home
        ---

        # Connect to the VPN from home

        Open GlobalProtect, enter vpn.northwind.example as the portal and sign in with
        your Northwind account. Approve the MFA prompt on your phone.
        """,
    "printer-jam": """\
        ---
        id: printer-jam
        title: Clear a paper jam in the office printer
        tags: [printer, jam]
        owner: it-workplace@northwind.example
        status: published
        updated: 2026-02-24
        review_by: 2099-01-01
        questions:
          - the printer says paper jam
        ---

        # Clear a paper jam in the office printer

        Open tray 2 and the side door, pull the jammed paper out gently in the direction
        of the paper path, close the doors and the printer restarts the job.
        """,
    "password-reset": """\
        ---
        id: password-reset
        title: Reset a forgotten password
        tags: [password, account]
        owner: U0IDENTITY
        status: published
        updated: 2026-10-02
        review_by: 2099-01-01
        questions:
          - I forgot my password
        ---

        # Reset a forgotten password

        Go to https://it.northwind.example/reset, enter your work email, approve the
        verification request and choose a new password of at least 14 characters.
        """,
    "expense-tool": """\
        ---
        id: expense-tool
        title: Submit travel expenses in Concur
        tags: [expenses, travel]
        owner: finance-systems@northwind.example
        status: draft
        updated: 2026-11-01
        ---

        # Submit travel expenses in Concur

        Photograph each receipt with the Concur app, attach it to an expense report and
        submit the report to your manager before the end of the month.
        """,
}


def article_source(article_id: str) -> str:
    return textwrap.dedent(ARTICLES[article_id])


def write_kb(folder: Path, *article_ids: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for article_id in article_ids or tuple(ARTICLES):
        (folder / f"{article_id}.md").write_text(article_source(article_id), encoding="utf-8")
    return folder


@dataclass
class Editor:
    """An editor's terminal: a tier0 home, a knowledge base folder, and `tier0 kb`."""

    home: Path
    kb: Path

    def env(self, **extra: str | None) -> dict[str, str | None]:
        return {
            "TIER0_HOME": str(self.home),
            "TIER0_KB_DIR": str(self.kb),
            "TIER0_DATABASE_URL": None,
            "SLACK_BOT_TOKEN": None,
            "SLACK_APP_TOKEN": None,
            "VISUAL": None,
            "EDITOR": None,
            "COLUMNS": "160",  # a wide terminal, so tables do not wrap ids
            **extra,
        }

    def kb_command(self, *args: str, **env: str | None) -> Result:
        return CliRunner().invoke(app, ["kb", *args], env=self.env(**env))

    def file(self, article_id: str) -> Path:
        return self.kb / f"{article_id}.md"


def editor_script(tmp_path: Path, new_text: str) -> str:
    """An $EDITOR that replaces the file it is given with `new_text` (as a person would)."""
    replacement = tmp_path / f"replacement-{len(list(tmp_path.glob('replacement-*')))}.md"
    replacement.write_text(new_text, encoding="utf-8")
    script = tmp_path / "fake_editor.py"
    script.write_text(
        "import shutil, sys\nshutil.copyfile(sys.argv[1], sys.argv[2])\n", encoding="utf-8"
    )
    return f"{sys.executable} {script} {replacement}"
