"""The assistant's decisions, told as console conversations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.assistant import MAX_MESSAGE_CHARS, Decision, IncomingMessage
from bot.runtime import Tier0
from tests.knowledge.kb import (
    RUNBOOK_ID,
    RUNBOOK_QUESTION,
    RUNBOOK_WORDS,
    sample_kb_with_an_internal_runbook,
)


def talk(tier0: Tier0, key: str = "console:alice:1", user: str = "alice") -> Callable[..., object]:
    def say(text: str):  # type: ignore[no-untyped-def]
        return tier0.assistant.respond(IncomingMessage(key, user, text))

    return say


def test_a_cited_answer_then_no_then_yes_gives_a_ticket_with_the_conversation(tier0: Tier0) -> None:
    say = talk(tier0)
    answer = say("outlook on my iphone keeps asking for my password")
    assert answer.decision is Decision.ANSWER
    assert answer.articles[0].article_id == "mobile-email"
    assert answer.asks_feedback and "Did this help?" in answer.text
    assert len(answer.articles) <= 3

    offer = say("no")
    assert offer.decision is Decision.ESCALATE and offer.offers_ticket
    assert tier0.tickets.list_for_requester("alice") == []

    opened = say("yes please")
    assert opened.decision is Decision.TICKET
    assert opened.ticket is not None and opened.ticket.number in opened.text
    ticket = tier0.tickets.get(opened.ticket.number)
    assert ticket.title == "outlook on my iphone keeps asking for my password"
    assert ticket.articles_tried[0]["id"] == "mobile-email"
    requester_turns = [turn["text"] for turn in ticket.transcript if turn["role"] == "requester"]
    assert requester_turns == [
        "outlook on my iphone keeps asking for my password",
        "no",
        "yes please",
    ]


def test_yes_after_an_answer_closes_the_question(tier0: Tier0) -> None:
    say = talk(tier0)
    say("how do i report a phishing email")
    thanks = say("yes that worked")
    assert thanks.decision is Decision.SMALLTALK
    assert tier0.tickets.list_for_requester("alice") == []


def test_declining_the_offered_ticket_opens_none(tier0: Tier0) -> None:
    say = talk(tier0)
    assert say("what's the parental leave policy").decision is Decision.ESCALATE
    assert say("no thanks").decision is Decision.SMALLTALK
    assert tier0.tickets.list_for_requester("alice") == []


def test_a_question_the_kb_cannot_answer_is_escalated_not_guessed(tier0: Tier0) -> None:
    reply = talk(tier0)("how do i configure a kubernetes ingress controller")
    assert reply.decision is Decision.ESCALATE
    assert reply.articles == ()
    assert reply.offers_ticket


def test_broken_hardware_and_asking_for_a_person_open_a_ticket_at_once(tier0: Tier0) -> None:
    cases = {
        "my laptop screen is cracked": "hardware",
        "coffee spilled on my keyboard and now it won't turn on": "hardware",
        "i want to talk to a real person": "general",
    }
    for number, (text, category) in enumerate(cases.items()):
        reply = talk(tier0, key=f"console:bob:{number}", user="bob")(text)
        assert reply.decision is Decision.TICKET, text
        assert reply.ticket is not None and reply.ticket.category == category, text
    assert len(tier0.tickets.list_for_requester("bob")) == 3


def test_an_access_request_gets_the_portal_article_first_then_an_access_ticket(
    tier0: Tier0,
) -> None:
    # Self-service first: the folder's owner grants access through the access portal the
    # article links (the request form); IT cannot grant it. A ticket is one "no" away.
    say = talk(tier0)
    first = say("please give me access to the finance shared drive")
    assert first.decision is Decision.ANSWER
    assert first.articles[0].article_id in {"shared-drive", "access-request"}
    say("no")
    opened = say("yes")
    assert opened.ticket is not None
    assert opened.ticket.category == "access"
    assert opened.ticket.title == "please give me access to the finance shared drive"


def test_small_talk_gets_small_talk(tier0: Tier0) -> None:
    say = talk(tier0)
    # "great" and "ok thanks bye" are read with middling confidence, but are short.
    for text in ("hello", "thanks a lot", "bye", "great", "ok thanks bye"):
        assert say(text).decision is Decision.SMALLTALK, text


def test_a_question_barely_read_as_small_talk_is_searched_not_waved_goodbye(
    tier0: Tier0,
) -> None:
    text = "can i postpone the forced reboot, i have a demo"
    reply = talk(tier0)(text)
    assert reply.decision in {Decision.ANSWER, Decision.ESCALATE}
    if reply.decision is Decision.ANSWER:
        assert reply.articles[0].article_id == "os-updates"
    else:
        assert reply.offers_ticket


def test_ticket_status_shows_only_the_requesters_own_tickets(tier0: Tier0) -> None:
    mine = talk(tier0, "console:carol:1", "carol")("my docking station is dead, nothing works")
    assert mine.ticket is not None
    theirs = talk(tier0, "console:dave:1", "dave")("my keyboard is broken, keys fell off")
    assert theirs.ticket is not None

    status = talk(tier0, "console:carol:2", "carol")(f"what's the status of {mine.ticket.number}")
    assert status.decision is Decision.STATUS
    assert mine.ticket.number in status.text and "waiting for an agent" in status.text

    snooping = talk(tier0, "console:carol:3", "carol")(f"status of {theirs.ticket.number}?")
    assert snooping.decision is Decision.STATUS
    assert snooping.tickets == () and "can't find" in snooping.text

    listing = talk(tier0, "console:carol:4", "carol")("show me my tickets")
    assert [t.number for t in listing.tickets] == [mine.ticket.number]


def test_one_conversation_opens_one_ticket(tier0: Tier0) -> None:
    say = talk(tier0)
    first = say("my monitor is flickering and has a crack after it fell")
    again = say("can you open a ticket for this")
    assert first.ticket is not None and again.ticket is not None
    assert first.ticket.number == again.ticket.number
    assert len(tier0.tickets.list_for_requester("alice")) == 1


def test_empty_and_huge_messages_get_a_clear_reply_and_nothing_is_lost(tier0: Tier0) -> None:
    say = talk(tier0)
    empty = say("   ")
    assert empty.decision is Decision.SMALLTALK and "didn't get any text" in empty.text

    huge = "my vpn keeps disconnecting every few minutes. " + "details " * 2000
    reply = say(huge)
    assert any("first 4,000" in notice for notice in reply.notices)
    record = tier0.assistant.conversations.load("console:alice:1")
    assert record is not None
    assert record.transcript[-2]["text"] == huge.strip()
    assert len(huge) > MAX_MESSAGE_CHARS


def test_a_dry_run_decides_but_stores_nothing(make_tier0: Callable[..., Tier0]) -> None:
    tier0 = make_tier0()
    tier0.assistant.dry_run = True
    reply = talk(tier0)("my laptop battery is swollen")
    assert reply.decision is Decision.TICKET and reply.ticket is None
    assert tier0.assistant.conversations.load("console:alice:1") is None
    assert tier0.tickets.list_for_requester("alice") == []


def test_open_a_ticket_without_details_asks_what_is_wrong_first(tier0: Tier0) -> None:
    say = talk(tier0)
    question = say("can you open a ticket please")
    assert question.decision is Decision.ESCALATE and question.ticket is None
    assert "What's the problem?" in question.text
    assert tier0.tickets.list_for_requester("alice") == []

    opened = say("the projector in room 4.02 shows no signal from my laptop")
    assert opened.decision is Decision.TICKET and opened.ticket is not None
    assert opened.ticket.title == "the projector in room 4.02 shows no signal from my laptop"


def test_open_a_ticket_with_details_opens_it_at_once(tier0: Tier0) -> None:
    reply = talk(tier0)("please open a ticket, the projector in room 4.02 shows no signal")
    assert reply.decision is Decision.TICKET and reply.ticket is not None


def test_never_mind_instead_of_details_opens_nothing(tier0: Tier0) -> None:
    say = talk(tier0)
    say("i want to open a ticket")
    assert say("no never mind").decision is Decision.SMALLTALK
    assert tier0.tickets.list_for_requester("alice") == []


def test_an_internal_article_answers_the_it_agents_and_never_an_employee(
    make_tier0: Callable[..., Tier0], tmp_path: Path
) -> None:
    kb = sample_kb_with_an_internal_runbook(tmp_path / "kb")
    tier0 = make_tier0(TIER0_KB_DIR=str(kb), TIER0_AGENTS="U0AGENT1")

    agent = tier0.assistant.respond(IncomingMessage("slack:D1:1", "U0AGENT1", RUNBOOK_QUESTION))
    employee = tier0.assistant.respond(
        IncomingMessage("slack:D2:1", "U0EMPLOYEE", RUNBOOK_QUESTION)
    )

    assert agent.decision is Decision.ANSWER
    assert agent.articles[0].article_id == RUNBOOK_ID
    assert RUNBOOK_WORDS in agent.text
    assert RUNBOOK_ID not in {hit.article_id for hit in employee.articles}
    assert RUNBOOK_WORDS not in employee.text
    # The same for a Rasa assistant's sender, and for editors' checks, which see it all.
    _, for_agent = tier0.assistant.knowledge_decision(RUNBOOK_QUESTION, "U0AGENT1")
    _, for_employee = tier0.assistant.knowledge_decision(RUNBOOK_QUESTION, "U0EMPLOYEE")
    assert for_agent[0].article_id == RUNBOOK_ID
    assert RUNBOOK_ID not in {hit.article_id for hit in for_employee}
    assert tier0.assistant.search_knowledge(RUNBOOK_QUESTION)[0].article_id == RUNBOOK_ID
