"""When tier0 is not sure what a message asks, it searches the knowledge base and offers a
ticket if nothing fits: it never acts on a guess."""

from __future__ import annotations

from bot.assistant import Decision, IncomingMessage, Reply
from bot.runtime import Tier0
from nlu.classifier import FALLBACK_INTENT


def unsure(tier0: Tier0) -> Tier0:
    """Every message now falls below the tuned confidence threshold."""
    tier0.assistant.interpreter.classifier.fallback_threshold = 1.01
    return tier0


def ask(tier0: Tier0, text: str) -> Reply:
    return tier0.assistant.respond(IncomingMessage("console:alice:1", "alice", text))


def test_an_unsure_it_question_is_answered_from_the_knowledge_base(tier0: Tier0) -> None:
    reply = ask(unsure(tier0), "outlook on my iphone keeps asking for my password")

    assert reply.intent == FALLBACK_INTENT
    assert reply.decision is Decision.ANSWER
    assert reply.articles[0].article_id == "mobile-email"


def test_an_unsure_request_with_no_article_is_escalated_not_acted_on(tier0: Tier0) -> None:
    # Read with confidence, this would open a hardware ticket at once.
    reply = ask(unsure(tier0), "the coffee machine on floor 3 is making a grinding noise")

    assert reply.intent == FALLBACK_INTENT
    assert reply.decision is Decision.ESCALATE
    assert reply.offers_ticket
    assert tier0.tickets.list_for_requester("alice") == []


def test_a_confident_message_is_not_second_guessed(tier0: Tier0) -> None:
    reply = ask(tier0, "my laptop screen is cracked")

    assert reply.intent == "hardware_broken"
    assert reply.decision is Decision.TICKET


def test_a_problem_barely_read_as_a_status_request_is_searched_not_answered_with_tickets(
    tier0: Tier0,
) -> None:
    # The model reads this, weakly, as "ticket status": "You have no open tickets" would be
    # a confident wrong answer to someone whose expenses were rejected.
    reply = ask(tier0, "concur rejected my travel expenses")

    assert reply.decision is not Decision.STATUS
    assert reply.decision in {Decision.ANSWER, Decision.ESCALATE}


def test_a_clear_status_request_still_lists_my_tickets(tier0: Tier0) -> None:
    reply = ask(tier0, "show me my tickets")

    assert reply.decision is Decision.STATUS
