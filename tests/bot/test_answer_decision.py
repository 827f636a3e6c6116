"""Answer, escalate or open a ticket: the calibrated decision kept with the index, and outages."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.assistant import Decision, IncomingMessage, Reply
from bot.runtime import Tier0, answer_calibration
from knowledge.answerability import (
    FEATURES,
    OUTCOMES,
    AnswerCalibration,
    Outcome,
    decision_features,
    load_calibration,
)
from knowledge.index import KnowledgeIndex, SearchHit


def ask(tier0: Tier0, text: str, key: str = "console:dana:1") -> Reply:
    return tier0.assistant.respond(IncomingMessage(key, "dana", text))


def leaning_to(outcome: Outcome) -> AnswerCalibration:
    """A model that ignores every feature and always prefers one outcome."""
    bias = tuple(10.0 if each is outcome else -10.0 for each in OUTCOMES)
    return AnswerCalibration(tuple(tuple(0.0 for _ in FEATURES) for _ in OUTCOMES), bias, 0.5)


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
    tier0.assistant.calibration = leaning_to(Outcome.ESCALATE)

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


def test_the_calibration_not_the_intent_decides_whether_a_person_is_needed(
    tier0: Tier0,
) -> None:
    # Read as a hardware fault by the intent model, but the calibration says an article
    # settles it: the article is given, no ticket is opened.
    tier0.assistant.calibration = leaning_to(Outcome.ANSWER)
    reply = ask(tier0, "my laptop screen is flickering", "console:dana:3")
    assert reply.decision is Decision.ANSWER and reply.ticket is None

    # And a plain question the calibration reads as work for a person opens a ticket.
    tier0.assistant.calibration = leaning_to(Outcome.TICKET)
    reply = ask(tier0, "how do i connect to the vpn from home", "console:dana:4")
    assert reply.decision is Decision.TICKET and reply.ticket is not None


def test_with_the_shipped_calibration_broken_hardware_opens_a_ticket(tier0: Tier0) -> None:
    reply = ask(tier0, "my laptop screen is cracked", "console:dana:5")

    assert reply.decision is Decision.TICKET
    assert reply.ticket is not None and reply.ticket.category == "hardware"


def test_with_the_shipped_calibration_a_stolen_phone_gets_the_article(tier0: Tier0) -> None:
    reply = ask(tier0, "someone stole my work phone from my bag", "console:dana:6")

    assert reply.decision is Decision.ANSWER
    assert reply.articles[0].article_id == "lost-stolen-device"


def test_features_of_an_empty_search_say_there_is_no_answer() -> None:
    features = decision_features([], {"ask_question": 0.9}, "how do i print?")

    assert features["fused"] == 0.0 and features["question_intent"] == 0.9
    assert set(features) == set(FEATURES)


def test_features_say_how_much_of_the_question_the_best_article_covers() -> None:
    best = SearchHit(
        "offboarding",
        "Leaving the company",
        "Return your laptop.",
        "",
        0.41,
        "offboarding.md",
        dense_score=0.45,
        lexical_score=0.2,
        uncovered_rarity=1.0,
        title_similarity=0.31,
    )
    second = replace(best, article_id="vpn", score=0.3, uncovered_rarity=0.0)

    features = decision_features([best, second], {}, "how many days of annual leave do i get")

    assert features["uncovered_rarity"] == 1.0  # "annual": a word no article uses
    assert features["title_similarity"] == 0.31
    assert decision_features([], {}, "annual leave")["uncovered_rarity"] == 0.0


def test_the_assistant_weighs_whether_its_best_article_covers_the_question(
    tier0: Tier0,
) -> None:
    # No sample-KB article says "annual"; the VPN article holds every word of its question.
    leave = tier0.assistant.search_knowledge("how many days of annual leave do i get")
    vpn = tier0.assistant.search_knowledge("vpn keeps disconnecting")

    assert leave[0].uncovered_rarity == pytest.approx(1.0)
    assert vpn[0].article_id.startswith("vpn") and vpn[0].uncovered_rarity == 0.0
    assert vpn[0].title_similarity > leave[0].title_similarity > 0.0


def test_the_wording_says_whether_someone_is_asked_to_act() -> None:
    def cues(text: str, devices: tuple[str, ...] = ()) -> dict[str, float]:
        return decision_features([], {}, text, devices)

    asking = cues("can you order a second monitor for my desk", ("device",))
    assert asking["asks_someone_to_act"] == 1.0 and asking["question_phrasing"] == 0.0
    assert asking["names_device"] == 1.0
    wondering = cues("how do I add a second monitor?")
    assert wondering["question_phrasing"] == 1.0 and wondering["asks_someone_to_act"] == 0.0
    assert cues("my monitor flickers, please send someone")["asks_someone_to_act"] == 1.0
    assert cues("printer on the 2nd floor is smoking")["physical_damage"] == 1.0
    assert cues("printer on the 2nd floor is offline")["physical_damage"] == 0.0


def test_a_calibration_of_the_wrong_shape_is_refused() -> None:
    shipped = load_calibration()
    assert shipped is not None
    data = shipped.as_dict()
    with pytest.raises(ValueError, match="outcome"):
        AnswerCalibration.from_dict({**data, "outcomes": ["answer", "escalate"]})
    with pytest.raises(ValueError, match="per feature"):
        AnswerCalibration.from_dict({**data, "weights": [[1.0]] * len(OUTCOMES)})


def test_a_damaged_calibration_falls_back_to_the_shipped_one(tier0: Tier0) -> None:
    index: KnowledgeIndex = tier0.knowledge
    index.calibration = {"features": ["something else"], "weights": [], "bias": 0}

    assert answer_calibration(index) == load_calibration()


def test_the_knowledge_decision_alone_is_the_one_respond_takes(tier0: Tier0) -> None:
    # What front ends with their own dialogue (Rasa's action_search_knowledge) ask for.
    for text in (
        "my vpn keeps disconnecting every hour",
        "the whole office network is down",
        "how do i configure terraform remote state in s3",
    ):
        outcome, hits = tier0.assistant.knowledge_decision(text)
        reply = ask(tier0, text, key=f"console:dana:{text}")
        assert outcome.value == reply.decision.value, text
        if outcome is Outcome.ANSWER:
            assert hits[0].article_id == reply.articles[0].article_id

    tier0.assistant.calibration = leaning_to(Outcome.TICKET)
    outcome, _ = tier0.assistant.knowledge_decision("my vpn keeps disconnecting every hour")
    assert outcome is Outcome.TICKET  # the model decides, not a threshold on a score


def test_asking_how_tickets_are_opened_is_a_question_not_a_ticket(tier0: Tier0) -> None:
    # A model that would answer anything: only a rule could still force the ticket.
    # (An order to open one is test_assistant_conversations' "please open a ticket, …".)
    tier0.assistant.calibration = leaning_to(Outcome.ANSWER)

    asking_how = ask(tier0, "how do i open a servicenow ticket or live chat with it")

    assert asking_how.decision is Decision.ANSWER
