"""Reading one message: synonyms spelled the articles' way, ticket numbers found, one embedding."""

from __future__ import annotations

import numpy as np
import pytest

from nlu.classifier import IntentClassifier
from nlu.training_data import IntentExample, TrainingData
from nlu.understanding import Interpreter, find_ticket_numbers
from tests.nlu.fake_embedder import HashingEmbedder

SYNONYMS = {
    "pw": "password",
    "passwd": "password",
    "two factor": "mfa",
    "two factor authentication": "mfa",
    "wi-fi": "wifi",
    "Global Protect": "vpn",
}


def train(embedder: HashingEmbedder) -> IntentClassifier:
    data = TrainingData(
        [
            IntentExample("reset my password", "password_reset"),
            IntentExample("forgot password", "password_reset"),
            IntentExample("password expired", "password_reset"),
            IntentExample("vpn is down", "vpn_problem"),
            IntentExample("cannot connect to vpn", "vpn_problem"),
            IntentExample("vpn keeps dropping", "vpn_problem"),
        ]
    )
    return IntentClassifier.train(data, embedder, fallback_threshold=0.0)


def make_interpreter(
    synonyms: dict[str, str] | None = None,
) -> tuple[Interpreter, HashingEmbedder]:
    embedder = HashingEmbedder()
    classifier = train(embedder)
    embedder.embedded.clear()
    return Interpreter(embedder, classifier, SYNONYMS if synonyms is None else synonyms), embedder


@pytest.mark.parametrize(
    ("message", "normalized"),
    [
        ("I forgot my pw", "I forgot my password"),
        ("PW expired", "password expired"),
        ("Passwd and pw again", "password and password again"),
        ("my two factor authentication is broken", "my mfa is broken"),  # longest wins
        ("two factor code missing", "mfa code missing"),
        ("the wi-fi is slow", "the wifi is slow"),
        ("global protect will not start", "vpn will not start"),
        ("I got pwned", "I got pwned"),  # whole words only
        ("nothing to change here", "nothing to change here"),
    ],
)
def test_synonyms_are_spelled_the_way_the_articles_do(message: str, normalized: str) -> None:
    interpreter, _ = make_interpreter()

    assert interpreter.normalize(message) == normalized


def test_without_synonyms_the_text_is_unchanged() -> None:
    interpreter, _ = make_interpreter(synonyms={})

    assert interpreter.normalize("my pw expired") == "my pw expired"


@pytest.mark.parametrize(
    ("message", "tickets"),
    [
        ("what about T-1042?", ("T-1042",)),
        ("status of t1042 please", ("T-1042",)),
        ("t-1042", ("T-1042",)),
        ("T-2000, then T-1042 and again t2000", ("T-2000", "T-1042")),
        ("my ticket (T-123456789) is stuck", ("T-123456789",)),
        ("no ticket here, just 1042", ()),
        ("T-42 is too short", ()),
        ("ST-1042 and T-1042a are something else", ()),
    ],
)
def test_ticket_numbers_are_found_and_written_one_way(
    message: str, tickets: tuple[str, ...]
) -> None:
    assert find_ticket_numbers(message) == tickets


def test_a_message_is_embedded_once_after_normalising() -> None:
    interpreter, embedder = make_interpreter()

    understanding = interpreter.understand("my pw expired, see t1042")

    assert embedder.embedded == ["my password expired, see t1042"]
    assert understanding.text == "my pw expired, see t1042"
    assert understanding.normalized_text == "my password expired, see t1042"
    assert understanding.ticket_numbers == ("T-1042",)
    expected = HashingEmbedder().embed(["my password expired, see t1042"])[0]
    np.testing.assert_allclose(understanding.vector, expected)


def test_the_intent_is_read_from_the_normalised_text() -> None:
    interpreter, embedder = make_interpreter()

    for message in ("pw", "passwd"):
        embedder.embedded.clear()
        understanding = interpreter.understand(message)
        # The classifier never saw "pw": it reads (and embeds) the article's spelling.
        assert embedder.embedded == ["password"]
        assert understanding.intent.name == "password_reset"


def test_parse_answers_in_the_shape_of_rasa_model_parse() -> None:
    interpreter, _ = make_interpreter()

    result = interpreter.parse("vpn down since T-1042, host vpn-gw-02 at 10.1.2.3")

    assert list(result) == ["text", "intent", "intent_ranking", "entities"]
    assert result["text"] == "vpn down since T-1042, host vpn-gw-02 at 10.1.2.3"
    assert result["intent"] == {
        "name": "vpn_problem",
        "confidence": result["intent_ranking"][0]["confidence"],
    }
    assert {r["name"] for r in result["intent_ranking"]} == {"vpn_problem", "password_reset"}
    assert [(e["entity"], e["value"], e["start"], e["end"]) for e in result["entities"]] == [
        ("ticket_number", "T-1042", 15, 21),
        ("hostname", "vpn-gw-02", 28, 37),
        ("ip_address", "10.1.2.3", 41, 49),
    ]
    assert {e["extractor"] for e in result["entities"]} == {"tier0.BuiltinEntityExtractor"}
