"""Transcript turns as stored on tickets and conversations, checked and redacted."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, TypedDict, cast, get_args

from tickets.redaction import redact_secrets

TranscriptRole = Literal["requester", "assistant", "agent"]
TRANSCRIPT_ROLES: frozenset[str] = frozenset(get_args(TranscriptRole))


class TranscriptTurn(TypedDict):
    role: TranscriptRole
    text: str


def redacted_turn(role: str, text: str) -> TranscriptTurn:
    """One turn, checked, with secrets in its text redacted."""
    if role not in TRANSCRIPT_ROLES:
        allowed = ", ".join(sorted(TRANSCRIPT_ROLES))
        raise ValueError(f"unknown transcript role {role!r}; expected one of {allowed}")
    if not isinstance(text, str):
        raise ValueError(f"transcript text must be a string, not {type(text).__name__}")
    return TranscriptTurn(role=cast(TranscriptRole, role), text=redact_secrets(text))


def redacted_transcript(turns: Iterable[Mapping[str, object]]) -> list[TranscriptTurn]:
    """A transcript ready to store: every turn checked and its text redacted."""
    transcript = []
    for position, turn in enumerate(turns):
        if "role" not in turn or "text" not in turn:
            raise ValueError(f"transcript turn {position} needs a 'role' and a 'text'")
        transcript.append(redacted_turn(str(turn["role"]), cast(str, turn["text"])))
    return transcript


def copy_transcript(turns: Iterable[Mapping[str, object]]) -> list[TranscriptTurn]:
    """Fresh dicts for a stored transcript, so callers cannot mutate what a session holds."""
    return [
        TranscriptTurn(role=cast(TranscriptRole, turn["role"]), text=str(turn["text"]))
        for turn in turns
    ]
