"""The triage card shows the end of a long conversation and says how much it leaves out,
within Slack's Block Kit limits."""

from __future__ import annotations

from bot.runtime import Tier0
from bot.slack.blocks import TRANSCRIPT_EXCERPT_TURNS, as_payload, triage_blocks

SECTION_LIMIT = 3000  # characters of text in one section block


def card_text(blocks: list[dict[str, object]]) -> str:
    return "\n".join(
        str(block["text"]["text"])  # type: ignore[index]
        for block in blocks
        if block.get("type") == "section" and isinstance(block.get("text"), dict)
    )


def test_a_long_conversation_shows_its_newest_turns_and_how_many_are_left_out(
    tier0: Tier0,
) -> None:
    transcript = [
        {"role": "requester" if n % 2 == 0 else "assistant", "text": f"turn {n} " + "x" * 600}
        for n in range(40)
    ]
    ticket = tier0.tickets.open_ticket(
        requester="UEMPLOYEE1",
        title="Printer jams every morning",
        description="Printer jams every morning",
        transcript=transcript,
        source="slack",
    )
    blocks = as_payload(triage_blocks(ticket))  # slack_sdk validates the blocks here

    assert len(blocks) <= 50
    assert all(
        len(str(block["text"]["text"])) <= SECTION_LIMIT  # type: ignore[index]
        for block in blocks
        if isinstance(block.get("text"), dict)
    )
    text = card_text(blocks)
    shown = [n for n in range(40) if f"turn {n} " in text]
    assert shown == list(range(40 - TRANSCRIPT_EXCERPT_TURNS, 40))  # the newest, in order
    assert f"… {40 - len(shown)} earlier messages not shown" in text


def test_turns_full_of_characters_slack_escapes_still_fit_and_keep_the_newest(
    tier0: Tier0,
) -> None:
    # "<" becomes "&lt;" (four times longer): the card must not overflow or cut an entity.
    transcript = [{"role": "requester", "text": f"turn {n} " + "<&>" * 400} for n in range(12)]
    ticket = tier0.tickets.open_ticket(
        requester="UEMPLOYEE1",
        title="Weird characters",
        description="Weird characters",
        transcript=transcript,
        source="slack",
    )
    blocks = as_payload(triage_blocks(ticket))
    conversation = next(
        str(block["text"]["text"])  # type: ignore[index]
        for block in blocks
        if "*Conversation*" in str(block.get("text"))
    )
    assert len(conversation) <= SECTION_LIMIT
    assert "turn 11 " in conversation
    assert "earlier messages not shown" in conversation
    assert "<" not in conversation.replace("<@", "")  # all escaped, no stray markup
    assert not conversation.rstrip("…").endswith(("&", "&l", "&lt", "&am", "&amp", "&g", "&gt"))


def test_a_short_conversation_is_shown_whole_without_a_note(tier0: Tier0) -> None:
    ticket = tier0.tickets.open_ticket(
        requester="UEMPLOYEE1",
        title="VPN drops",
        description="VPN drops",
        transcript=[
            {"role": "requester", "text": "vpn drops"},
            {"role": "assistant", "text": "try this"},
        ],
        source="slack",
    )
    text = card_text(as_payload(triage_blocks(ticket)))
    assert "vpn drops" in text and "try this" in text
    assert "not shown" not in text
