"""Conversation memory kept in the store, so any bot replica can carry on a conversation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tickets.models import Conversation, utc_now
from tickets.transcript import (
    TranscriptTurn,
    copy_transcript,
    redacted_transcript,
    redacted_turn,
)


@dataclass(frozen=True)
class ConversationRecord:
    """A conversation as it was when read or as it is to be saved.

    ``key`` names the conversation: "slack:<channel>:<thread_ts>" or "console:<user>".
    ``state`` is the assistant's own free-form memory; it must be JSON-serialisable.
    ``updated_at`` is filled in on load and ignored on save.
    """

    key: str
    requester: str
    transcript: list[TranscriptTurn] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None


class ConversationStore:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._session_factory = session_factory
        self._clock = clock

    def load(self, key: str) -> ConversationRecord | None:
        with self._session_factory.begin() as session:
            conversation = session.get(Conversation, key)
            return None if conversation is None else _record_of(conversation)

    def save(
        self, record: ConversationRecord, *, then: Callable[[Session], None] | None = None
    ) -> ConversationRecord:
        """Create or replace the conversation's transcript and state (texts redacted);
        ``then`` (a front end's own writes, e.g. its outbox messages) commits with it."""
        transcript = redacted_transcript(record.transcript)
        state = dict(record.state)

        def replace(conversation: Conversation) -> None:
            conversation.transcript = list(transcript)
            conversation.state = state

        return self._write(record.key, record.requester, replace, then)

    def append_turn(self, key: str, requester: str, role: str, text: str) -> ConversationRecord:
        """Add one turn (text redacted), starting the conversation if it is new."""
        turn = redacted_turn(role, text)

        def append(conversation: Conversation) -> None:
            # A new list, not an in-place append: the JSON column only notices assignment.
            conversation.transcript = [*conversation.transcript, turn]

        return self._write(key, requester, append)

    def _write(
        self,
        key: str,
        requester: str,
        change: Callable[[Conversation], None],
        then: Callable[[Session], None] | None = None,
    ) -> ConversationRecord:
        if not key.strip():
            raise ValueError("a conversation needs a key")
        # Two replicas may start the same conversation at once; the loser of the primary
        # key race retries once and then finds the winner's row to update.
        for attempt in range(2):
            try:
                with self._session_factory.begin() as session:
                    now = self._clock()
                    # Row lock on PostgreSQL so concurrent appends do not drop turns.
                    conversation = session.get(Conversation, key, with_for_update=True)
                    if conversation is None:
                        conversation = Conversation(
                            key=key,
                            requester=requester,
                            transcript=[],
                            state={},
                            created_at=now,
                        )
                        session.add(conversation)
                    change(conversation)
                    conversation.updated_at = now
                    session.flush()
                    if then is not None:
                        then(session)
                    return _record_of(conversation)
            except IntegrityError:
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


def _record_of(conversation: Conversation) -> ConversationRecord:
    return ConversationRecord(
        key=conversation.key,
        requester=conversation.requester,
        transcript=copy_transcript(conversation.transcript),
        state=dict(conversation.state),
        updated_at=conversation.updated_at,
    )
