"""Answer or escalate: the calibrated decision kept with the index, and outages."""

from __future__ import annotations

from dataclasses import replace

from bot.assistant import Decision, IncomingMessage
from bot.runtime import Tier0, answer_calibration
from knowledge.answerability import FEATURES, AnswerCalibration, answer_features, load_calibration
from knowledge.index import KnowledgeIndex


def ask(tier0: Tier0, text: str, key: str = "console:dana:1") -> object:
    return tier0.assistant.respond(IncomingMessage(key, "dana", text))


def test_a_problem_shared_by_many_people_opens_a_ticket_at_once(tier0: Tier0) -> None:
    for number, text in enumerate(
        [
            "the whole office network is down",
            "wifi is down for everyone on the 3rd floor",
            "nobody in the berlin office can get on the vpn",
        ]
    ):
        reply = tier0.assistant.respond(IncomingMessage(f"console:dana:{number}", "dana", text))
        assert reply.decision is Decision.TICKET, text
        assert reply.ticket is not None


def test_one_persons_problem_still_gets_the_article(tier0: Tier0) -> None:
    reply = tier0.assistant.respond(
        IncomingMessage("console:dana:9", "dana", "my vpn keeps disconnecting every hour")
    )

    assert reply.decision is Decision.ANSWER
    assert reply.articles[0].article_id in {"vpn-troubleshooting", "vpn-connect"}


def test_the_calibration_decides_instead_of_a_fixed_threshold(tier0: Tier0) -> None:
    never = AnswerCalibration(tuple(0.0 for _ in FEATURES), bias=-10.0, threshold=0.5)
    tier0.assistant.calibration = never

    reply = tier0.assistant.respond(
        IncomingMessage(
            "console:dana:2", "dana", "outlook on my iphone keeps asking for my password"
        )
    )

    assert reply.decision is Decision.ESCALATE and reply.offers_ticket


def test_the_index_carries_the_calibration_the_assistant_uses(tier0: Tier0) -> None:
    shipped = load_calibration()
    assert shipped is not None  # knowledge/calibration.json, fitted by bench/eval_kb.py
    assert tier0.knowledge.calibration == shipped.as_dict()
    assert tier0.assistant.calibration == shipped
    tuned = replace(shipped, threshold=0.9, trained_on="this KB's own questions")
    tier0.knowledge.calibration = tuned.as_dict()

    assert answer_calibration(tier0.knowledge) == tuned


def test_features_of_an_empty_search_say_there_is_no_answer() -> None:
    features = answer_features([], {"ask_question": 0.9})

    assert features["fused"] == 0.0 and features["question_intent"] == 0.9
    assert set(features) == set(FEATURES)


def test_a_damaged_calibration_falls_back_to_the_shipped_one(tier0: Tier0) -> None:
    index: KnowledgeIndex = tier0.knowledge
    index.calibration = {"features": ["something else"], "weights": [], "bias": 0}

    assert answer_calibration(index) == load_calibration()
