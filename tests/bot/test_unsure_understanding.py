"""When tier0 is not sure what a message asks, it searches the knowledge base and offers a
ticket if nothing fits: it never acts on a guess."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.assistant import SMALLTALK_INTENTS, Decision, IncomingMessage, Reply
from bot.runtime import Tier0
from nlu.classifier import FALLBACK_INTENT, IntentPrediction, RankedIntent
from nlu.understanding import Understanding


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


@pytest.mark.parametrize(
    "text",
    [
        "can i postpone the forced reboot",
        "can i postpone the forced reboot, i have a demo",
        "can the reboot wait until tomorrow, i have a client call",
        "i have a deadline today, can i stop the update restart",
    ],
)
def test_a_question_sharing_words_with_small_talk_is_not_chatted_to(
    tier0: Tier0, text: str
) -> None:
    # "i have a demo" once made this a goodbye ("have a nice day"): "Bye!" to a question.
    reply = ask(tier0, text)

    assert reply.intent not in SMALLTALK_INTENTS
    # Answered from the updates article, or a ticket offered: whatever the search finds.
    assert reply.decision in {Decision.ANSWER, Decision.ESCALATE}
    assert [a.article_id for a in reply.articles[:1]] in ([], ["os-updates"])


def read_as(tier0: Tier0, intent: str, confidence: float) -> None:
    """The model now reads every message as `intent`, this sure of it."""
    interpreter = tier0.assistant.interpreter
    understand = interpreter.understand

    def misread(text: str) -> Understanding:
        read = understand(text)
        ranking = (RankedIntent(intent, confidence),)
        return replace(read, intent=IntentPrediction(intent, confidence, ranking))

    interpreter.understand = misread  # type: ignore[method-assign]


def test_a_long_message_unsurely_read_as_small_talk_is_searched(tier0: Tier0) -> None:
    read_as(tier0, "goodbye", 0.3)

    reply = ask(tier0, "outlook on my iphone keeps asking for my password, have a look")

    assert reply.decision is Decision.ANSWER
    assert reply.articles[0].article_id == "mobile-email"


def test_short_or_sure_small_talk_is_still_small_talk(tier0: Tier0) -> None:
    read_as(tier0, "goodbye", 0.3)
    assert ask(tier0, "ok catch you later then").decision is Decision.SMALLTALK

    read_as(tier0, "thanks", 0.9)
    reply = ask(tier0, "thank you so much for sorting out my vpn this morning")
    assert reply.decision is Decision.SMALLTALK
