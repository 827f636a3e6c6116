"""TIER0_NLU_BACKEND=rasa: the assistant understands messages through a Rasa server.

A local fake answers in Rasa's `/model/parse` shape; when it is down, slow or broken,
tier0 must answer from its built-in model and log why.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.assistant import Decision, IncomingMessage
from bot.cli import app
from bot.runtime import Tier0
from nlu.rasa_backend import (
    RasaClient,
    RasaInterpreter,
    RasaUnavailable,
    parse_response,
)
from tests.nlu.fake_rasa import FakeRasa, fake_rasa_server, rasa_parse


@pytest.fixture
def fake_rasa() -> Iterator[FakeRasa]:
    with fake_rasa_server() as fake:
        yield fake


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_the_assistant_acts_on_the_intent_rasa_reads(
    make_tier0: Callable[..., Tier0], fake_rasa: FakeRasa
) -> None:
    tier0 = make_tier0(TIER0_NLU_BACKEND="rasa", TIER0_RASA_URL=fake_rasa.url)
    ticket = tier0.tickets.open_ticket(
        requester="alice", title="VPN drops every hour", description="VPN drops every hour"
    )
    # Rasa's helpdesk-assistant calls it `incident_status` and extracts the number itself.
    fake_rasa.answer_json(
        lambda text: rasa_parse(
            text,
            "incident_status",
            0.97,
            others={"open_incident": 0.02, "greet": 0.01},
            entities=[
                {
                    "entity": "ticket_number",
                    "value": "1001",
                    "start": 17,
                    "end": 21,
                    "extractor": "DIETClassifier",
                }
            ],
        )
    )

    reply = tier0.assistant.respond(IncomingMessage("c1", "alice", "any news on case 1001?"))

    assert fake_rasa.received == [
        {"path": "/model/parse", "body": {"text": "any news on case 1001?"}}
    ]
    assert reply.intent == "ticket_status" and reply.confidence == 0.97
    assert reply.decision is Decision.STATUS
    assert [t.number for t in reply.tickets] == [ticket.number]


def test_rasa_fallback_means_search_the_knowledge_base(
    make_tier0: Callable[..., Tier0], fake_rasa: FakeRasa
) -> None:
    tier0 = make_tier0(TIER0_NLU_BACKEND="rasa", TIER0_RASA_URL=fake_rasa.url)
    fake_rasa.answer_json(
        lambda text: rasa_parse(text, "nlu_fallback", 0.3, others={"greet": 0.21})
    )

    reply = tier0.assistant.respond(
        IncomingMessage("c1", "bob", "locked out after typing my password wrong too many times")
    )

    assert reply.intent == "nlu_fallback"
    assert reply.decision is Decision.ANSWER
    assert reply.articles[0].article_id == "account-locked"


def test_an_unreachable_rasa_server_leaves_the_built_in_model_answering(
    make_tier0: Callable[..., Tier0], caplog: pytest.LogCaptureFixture
) -> None:
    tier0 = make_tier0(TIER0_NLU_BACKEND="rasa", TIER0_RASA_URL=closed_port_url())
    builtin = make_tier0()

    with caplog.at_level(logging.INFO, logger="nlu.rasa_backend"):
        first = tier0.assistant.respond(
            IncomingMessage("c1", "carol", "my laptop screen is cracked")
        )
        second = tier0.assistant.respond(IncomingMessage("c2", "carol", "hello"))

    expected = builtin.assistant.interpreter.understand("my laptop screen is cracked").intent
    assert (first.intent, first.confidence) == (expected.name, expected.confidence)
    assert first.decision is Decision.TICKET and first.ticket is not None
    assert second.decision is Decision.SMALLTALK
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    # One warning for the outage, not one per message; every message is still logged.
    assert len(warnings) == 1 and "Rasa NLU unavailable" in warnings[0].getMessage()
    assert len([r for r in caplog.records if "Rasa NLU" in r.getMessage()]) == 2
    assert isinstance(tier0.assistant.interpreter, RasaInterpreter)
    assert tier0.assistant.interpreter.fallbacks == 2


def test_a_slow_rasa_server_costs_at_most_the_timeout(tier0: Tier0, fake_rasa: FakeRasa) -> None:
    # Far longer than the timeout, so the bound below holds however busy the machine is
    # (the built-in model's parse is inside it too) and still fails if the client waited.
    fake_rasa.delay_seconds = 60.0
    interpreter = RasaInterpreter(
        tier0.assistant.interpreter, RasaClient(fake_rasa.url, timeout=0.3)
    )

    started = time.monotonic()
    understanding = interpreter.understand("how do I reset my password")
    elapsed = time.monotonic() - started

    assert elapsed < 30.0
    assert (
        understanding.intent
        == tier0.assistant.interpreter.understand("how do I reset my password").intent
    )
    assert interpreter.fallbacks == 1


def test_rasa_answering_again_after_an_outage_is_used_again(
    tier0: Tier0, fake_rasa: FakeRasa, caplog: pytest.LogCaptureFixture
) -> None:
    interpreter = RasaInterpreter(tier0.assistant.interpreter, RasaClient(fake_rasa.url))
    fake_rasa.answer = lambda text: (503, b'{"status": "failure"}')
    assert interpreter.understand("hello").intent.name == "greet"  # the built-in model
    fake_rasa.answer_json(lambda text: rasa_parse(text, "thank", 0.88))

    with caplog.at_level(logging.WARNING, logger="nlu.rasa_backend"):
        understanding = interpreter.understand("hello")

    assert (understanding.intent.name, understanding.intent.confidence) == ("thanks", 0.88)
    assert "answers again" in caplog.text


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b'{"status": "failure", "message": "boom"}', "HTTP 500"),
        (200, b"<html>proxy error</html>", "not JSON"),
        (200, b'{"text": "hi", "intent": null}', "no `intent`"),
        (200, b'{"intent": {"name": "greet", "confidence": "high"}}', "not a number"),
        (200, b'{"intent": {"name": "greet", "confidence": 0.9}, "entities": "none"}', "entities"),
    ],
)
def test_a_broken_rasa_answer_is_an_outage_not_an_intent(
    tier0: Tier0, fake_rasa: FakeRasa, status: int, body: bytes, reason: str
) -> None:
    fake_rasa.answer = lambda text: (status, body)
    client = RasaClient(fake_rasa.url)

    with pytest.raises(RasaUnavailable, match=reason):
        client.parse("hi")
    interpreter = RasaInterpreter(tier0.assistant.interpreter, client)
    assert (
        interpreter.understand("hi").intent == tier0.assistant.interpreter.understand("hi").intent
    )
    assert interpreter.fallbacks == 1


def test_rasa_intents_are_read_in_tier0_names_and_ranked() -> None:
    parsed = parse_response(
        rasa_parse(
            "I need a person",
            "human_handoff",
            0.7,
            others={"out_of_scope": 0.1, "nlu_fallback": 0.15, "password_reset": 0.05},
            entities=[
                {
                    "entity": "email",
                    "value": "a@b.example",
                    "start": 0,
                    "end": 11,
                    "extractor": "RegexEntityExtractor",
                }
            ],
        )
    )

    assert parsed.intent.name == "talk_to_human" and parsed.intent.confidence == 0.7
    # out_of_scope and nlu_fallback are both "I don't know": one entry, the higher one.
    assert [(r.name, r.confidence) for r in parsed.intent.ranking] == [
        ("talk_to_human", 0.7),
        ("nlu_fallback", 0.15),
        ("ask_question", 0.05),
    ]
    assert parsed.entities[0].entity == "email" and parsed.entities[0].value == "a@b.example"


def test_rasa_url_and_token_make_the_parse_url() -> None:
    assert RasaClient("http://rasa:5005/").parse_url == "http://rasa:5005/model/parse"
    assert RasaClient("http://rasa:5005", token="s3cret").parse_url.endswith("?token=s3cret")
    with pytest.raises(ValueError, match="http"):
        RasaClient("rasa:5005")


runner = CliRunner()


def cli_env(home: Path, **env: str) -> dict[str, str]:
    return {"TIER0_HOME": str(home), "HF_HUB_OFFLINE": "1", **env}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TIER0_NLU_BACKEND": "dialogflow"}, "TIER0_NLU_BACKEND is 'dialogflow'; use one of"),
        ({"TIER0_NLU_BACKEND": "rasa", "TIER0_RASA_URL": "rasa:5005"}, "must be an http(s) URL"),
    ],
)
def test_a_bad_backend_setting_is_a_one_line_error(
    home: Path, env: dict[str, str], message: str
) -> None:
    result = runner.invoke(app, ["nlu", "parse", "hello"], env=cli_env(home, **env))

    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_nlu_parse_prints_rasas_reading(home: Path, fake_rasa: FakeRasa) -> None:
    monitor = {
        "entity": "device",
        "value": "display",
        "start": 27,
        "end": 34,
        "extractor": "DIETClassifier",
    }
    fake_rasa.answer_json(
        lambda text: rasa_parse(text, "open_incident", 0.91, entities=[dict(monitor)])
    )

    result = runner.invoke(
        app,
        ["nlu", "parse", "please log an incident, my monitor is dead"],
        env=cli_env(home, TIER0_NLU_BACKEND="rasa", TIER0_RASA_URL=fake_rasa.url),
    )

    assert result.exit_code == 0, result.output
    assert '"name": "open_ticket"' in result.output and '"confidence": 0.91' in result.output
    parsed = json.loads(result.stdout)
    # Rasa's entity wins its span; tier0's own reading of the same word is not repeated.
    assert {**monitor} in [
        {key: e[key] for key in ("entity", "value", "start", "end", "extractor")}
        for e in parsed["entities"]
    ]
    assert [e for e in parsed["entities"] if e["start"] == 27] == [
        e for e in parsed["entities"] if e["extractor"] == "DIETClassifier"
    ]
