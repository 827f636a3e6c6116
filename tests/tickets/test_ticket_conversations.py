"""The assistant's memory of a conversation survives between messages and replicas."""

from __future__ import annotations

import pytest

from tickets import ConversationRecord, ConversationStore

THREAD = "slack:D0ALICE:1700000000.000100"


def test_an_unknown_conversation_loads_as_none(conversations: ConversationStore) -> None:
    assert conversations.load(THREAD) is None


def test_a_saved_conversation_loads_back_as_it_was(conversations: ConversationStore) -> None:
    record = ConversationRecord(
        key=THREAD,
        requester="U0ALICE",
        transcript=[
            {"role": "requester", "text": "outlook asks for my password all the time"},
            {"role": "assistant", "text": "Does this article help? (KB-7)"},
        ],
        state={"awaiting": "feedback", "offered": ["KB-7"], "turns": 2},
    )

    conversations.save(record)
    loaded = conversations.load(THREAD)

    assert loaded is not None
    assert loaded.key == THREAD
    assert loaded.requester == "U0ALICE"
    assert loaded.transcript == record.transcript
    assert loaded.state == {"awaiting": "feedback", "offered": ["KB-7"], "turns": 2}
    assert loaded.updated_at is not None


def test_saving_again_replaces_transcript_and_state(conversations: ConversationStore) -> None:
    conversations.save(ConversationRecord(key="console:alice", requester="alice", state={"a": 1}))

    conversations.save(
        ConversationRecord(
            key="console:alice",
            requester="alice",
            transcript=[{"role": "requester", "text": "hello"}],
            state={"b": 2},
        )
    )

    loaded = conversations.load("console:alice")
    assert loaded is not None
    assert loaded.transcript == [{"role": "requester", "text": "hello"}]
    assert loaded.state == {"b": 2}


def test_turns_are_appended_in_order_starting_a_new_conversation(
    conversations: ConversationStore,
) -> None:
    conversations.append_turn(THREAD, "U0ALICE", "requester", "wifi is down on floor 4")
    conversations.append_turn(THREAD, "U0ALICE", "assistant", "There is a known outage.")
    after = conversations.append_turn(THREAD, "U0ALICE", "requester", "thanks")

    assert [turn["text"] for turn in after.transcript] == [
        "wifi is down on floor 4",
        "There is a known outage.",
        "thanks",
    ]
    assert conversations.load(THREAD) == after


def test_appending_keeps_the_assistant_state(conversations: ConversationStore) -> None:
    conversations.save(ConversationRecord(key=THREAD, requester="U0ALICE", state={"step": 3}))

    after = conversations.append_turn(THREAD, "U0ALICE", "requester", "still broken")

    assert after.state == {"step": 3}


def test_a_turn_with_an_unknown_role_is_refused(conversations: ConversationStore) -> None:
    with pytest.raises(ValueError, match="unknown transcript role 'system'"):
        conversations.append_turn(THREAD, "U0ALICE", "system", "hi")

    assert conversations.load(THREAD) is None
