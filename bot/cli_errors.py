"""How every tier0 command tells its user what went wrong, and reads a period of time.

A problem is one red "error:" line on stderr and exit code 2 (the code Click gives a bad
option), a caution one yellow "warning:" line; both are printed as given, never read as
Rich markup, since they quote what the user typed.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

errors = Console(stderr=True)
ERROR_EXIT_CODE = 2

_PERIOD = re.compile(r"(\d{1,5})\s*([hdw])")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7}


def fail(message: str) -> NoReturn:
    errors.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=ERROR_EXIT_CODE)


def warn(message: str) -> None:
    errors.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)


def parse_period(text: str, option: str = "--since") -> timedelta:
    """ "30d", "8w", "12h" as a time span; anything else, or zero, fails with a message
    that names the option (an empty window would always report nothing, which reads as
    good news)."""
    match = _PERIOD.fullmatch(text.strip().lower())
    if match is None:
        fail(f"{option} takes a period like 30d, 8w or 12h (a number and h, d or w), not {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    if amount == 0:
        fail(f"{option} {text!r}: the period must be at least 1h")
    return timedelta(hours=amount * _UNIT_HOURS[unit])
