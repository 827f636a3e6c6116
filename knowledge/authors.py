"""Who wrote an article: in a git-managed folder, the author of the file's last commit.

Docs-as-code teams often run `kb sync` from CI after a merge; the person who ran the sync
is then a bot, while the version's real author is in git.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

GIT_TIMEOUT_SECONDS = 10


def _git(path: Path, *args: str) -> str | None:
    try:
        finished = subprocess.run(
            ["git", *args, "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # no git here, or a stuck repository: fall back to the sync's author
    return finished.stdout if finished.returncode == 0 else None


def git_author(path: Path) -> str | None:
    """ "Name <email>" of the last commit of `path`, if the file on disk is that commit's;
    None outside a repository, for an untracked file, or one with uncommitted changes."""
    status = _git(path, "status", "--porcelain")
    if status is None or status.strip():
        return None
    author = _git(path, "log", "-1", "--format=%an <%ae>")
    if author is None or not author.strip():
        return None  # never committed
    return author.strip()
