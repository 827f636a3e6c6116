"""Writing small knowledge-base folders for tests."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

from bot.config import BUNDLED_KB_DIR


def article_text(
    article_id: str, title: str, body: str, *, extra: str = "", tags: str = "[]"
) -> str:
    front = f"---\nid: {article_id}\ntitle: {title}\ntags: {tags}\n{extra}---\n"
    return front + textwrap.dedent(body).strip() + "\n"


def write_article(folder: Path, name: str, article_id: str, title: str, body: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(article_text(article_id, title, body), encoding="utf-8")
    return path


# An internal article (audience: agents) beside the bundled sample: what an agent may be
# answered with and an employee never.
RUNBOOK_ID = "vpn-gateway-runbook"
RUNBOOK_QUESTION = "how do i restart the northwind vpn gateway service"
RUNBOOK_WORDS = "firewall console"  # in its text only


def sample_kb_with_an_internal_runbook(folder: Path) -> Path:
    shutil.copytree(BUNDLED_KB_DIR, folder)
    (folder / f"{RUNBOOK_ID}.md").write_text(
        article_text(
            RUNBOOK_ID,
            "Restart the Northwind VPN gateway (agents)",
            f"""
            Only for the IT agents on call. Sign in to the {RUNBOOK_WORDS}, open the
            GlobalProtect gateway, and restart the gateway service; tunnels come back
            within two minutes.
            """,
            extra="audience: agents\n",
        ),
        encoding="utf-8",
    )
    return folder
