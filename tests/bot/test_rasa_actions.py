"""`tier0 actions serve`: a Rasa assistant uses tier0's knowledge base and tickets.

The action server runs as a user runs it, and the tests speak to it as Rasa 3.6 does:
POST /webhook with `next_action`, `tracker` and `domain`, reading `events` and `responses`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from knowledge.feedback import ArticleFeedbackLog, ArticleStats
from knowledge.records import FeedbackKind
from tickets.db import create_store_engine, make_session_factory
from tickets.outbox import OutboxMessage
from tickets.service import TicketService

STARTUP_TIMEOUT_SECONDS = 300


@dataclass
class ActionServer:
    url: str
    tickets: TicketService
    sessions: sessionmaker[Session]

    def owed_notifications(self, ticket_number: str) -> list[tuple[str, str, str]]:
        """(channel, recipient, purpose) of what the outbox owes about a ticket."""
        with self.sessions() as session:
            rows = session.scalars(
                select(OutboxMessage).where(OutboxMessage.ticket_number == ticket_number)
            ).all()
            return sorted(
                (row.channel, str(row.payload.get("channel") or row.payload.get("to")),
                 str(row.purpose)) for row in rows
            )  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def action_server(
    tmp_path_factory: pytest.TempPathFactory, prebuilt_home: Path
) -> Iterator[ActionServer]:
    home = tmp_path_factory.mktemp("actions-home")
    shutil.copytree(prebuilt_home / "index", home / "index")
    port = free_port()
    environment = {**os.environ, "TIER0_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    for name in ("TIER0_KB_DIR", "TIER0_DATABASE_URL"):
        environment.pop(name, None)
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "actions", "serve", "--port", str(port)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"tier0 actions serve exited: {server.stdout and server.stdout.read()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("tier0 actions serve did not start")
            time.sleep(0.3)
        settings = Settings(_env_file=None, TIER0_HOME=str(home))  # type: ignore[call-arg, arg-type]
        engine = create_store_engine(settings.resolved_database_url)
        sessions = make_session_factory(engine)
        yield ActionServer(url, TicketService(sessions), sessions)
        engine.dispose()
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def action_call(
    action: str,
    text: str,
    *,
    sender: str = "alice@northwind.example",
    slots: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
    earlier: list[tuple[str, str]] = (),  # type: ignore[assignment]
    message_id: str = "m-1",
) -> dict[str, Any]:
    """What Rasa 3.6 posts to an action server before running `action`."""
    latest = {
        "text": text,
        "intent": {"name": "some_intent", "confidence": 0.98},
        "entities": entities or [],
        "message_id": message_id,
        "metadata": {},
    }
    events: list[dict[str, Any]] = [{"event": "action", "name": "action_session_start"}]
    for who, said in earlier:
        events.append({"event": who, "text": said})
    events.append({"event": "user", "text": text, "parse_data": latest})
    return {
        "next_action": action,
        "sender_id": sender,
        "version": "3.6.21",
        "tracker": {
            "sender_id": sender,
            "slots": slots or {},
            "latest_message": latest,
            "latest_event_time": time.time(),
            "followup_action": None,
            "paused": False,
            "events": events,
            "latest_input_channel": "rest",
            "active_loop": {},
            "latest_action": {"action_name": "action_listen"},
            "latest_action_name": "action_listen",
        },
        "domain": {
            "version": "3.1",
            "intents": ["open_incident", "incident_status", "human_handoff"],
            "entities": ["ticket_number", "priority"],
            "slots": {"ticket_number": {"type": "text"}, "kb_article": {"type": "text"}},
            "responses": {},
            "actions": [
                "action_search_knowledge",
                "action_open_ticket",
                "action_ticket_status",
                "action_escalate_to_human",
            ],
        },
    }


def post(server: ActionServer, body: bytes | dict[str, Any]) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{server.url}/webhook", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def slots_set(result: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in result["events"] if e["event"] == "slot"}


def test_the_action_server_lists_tiers_actions(action_server: ActionServer) -> None:
    with urllib.request.urlopen(f"{action_server.url}/actions", timeout=10) as response:
        names = {item["name"] for item in json.loads(response.read())}
    assert names == {
        "action_search_knowledge",
        "action_open_ticket",
        "action_ticket_status",
        "action_escalate_to_human",
        "action_article_helped",
        "action_article_not_helped",
    }


def test_search_knowledge_answers_from_the_kb_with_its_source(
    action_server: ActionServer,
) -> None:
    status, result = post(
        action_server,
        action_call(
            "action_search_knowledge", "locked out after typing my password wrong too many times"
        ),
    )

    assert status == 200
    [response] = result["responses"]
    assert "Source: account-locked" in response["text"]
    assert response["custom"]["tier0_articles"][0]["id"] == "account-locked"
    # A new answer, not yet judged.
    assert slots_set(result) == {"kb_article": "account-locked", "kb_verdict": None}


def test_search_knowledge_says_so_when_no_article_fits(action_server: ActionServer) -> None:
    status, result = post(
        action_server,
        action_call("action_search_knowledge", "how do i configure terraform remote state in s3"),
    )

    assert status == 200
    assert "couldn't find an article" in result["responses"][0]["text"]
    assert slots_set(result) == {"kb_article": None}


def test_search_knowledge_decides_as_the_assistant_that_a_person_must_act(
    action_server: ActionServer,
) -> None:
    # An outage matches the network articles' words, but no article fixes it: tier0's
    # assistant opens a ticket at once, and the action says a person is needed.
    status, result = post(
        action_server,
        action_call("action_search_knowledge", "the wifi is down for everyone on our floor"),
    )

    assert status == 200
    [response] = result["responses"]
    assert "needs someone from the IT team" in response["text"]
    assert "Source:" not in response["text"]
    assert slots_set(result) == {"kb_article": None}


def test_open_ticket_keeps_the_conversation_and_is_not_doubled_by_a_retry(
    action_server: ActionServer,
) -> None:
    call = action_call(
        "action_open_ticket",
        "high",
        sender="bob@northwind.example",
        slots={"problem_description": "Second monitor flickers and goes black", "priority": "high"},
        earlier=[("user", "my second monitor keeps flickering"), ("bot", "What's the priority?")],
        message_id="m-42",
    )

    status, first = post(action_server, call)
    _, retried = post(action_server, call)  # Rasa retrying the same step

    assert status == 200
    number = slots_set(first)["ticket_number"]
    assert slots_set(retried)["ticket_number"] == number
    assert f"I've opened ticket {number}" in first["responses"][0]["text"]
    ticket = action_server.tickets.get(number)
    assert ticket.requester == "bob@northwind.example"
    assert ticket.title == "Second monitor flickers and goes black"
    assert ticket.priority == "P2"
    assert [turn["text"] for turn in ticket.transcript] == [
        "my second monitor keeps flickering",
        "What's the priority?",
        "high",
    ]
    assert [
        t.number for t in action_server.tickets.list_for_requester("bob@northwind.example")
    ] == [number]
    # Opened as `tier0 run` opens one: the requester is mailed and triage hears of it.
    assert action_server.owed_notifications(number) == [
        ("email", "bob@northwind.example", "ticket_opened"),
        ("slack", "it-triage", "ticket_opened"),
    ]


def test_ticket_status_shows_a_requester_their_own_tickets_only(
    action_server: ActionServer,
) -> None:
    ticket = action_server.tickets.open_ticket(
        requester="carol@northwind.example",
        title="VPN drops every hour",
        description="VPN drops every hour",
    )
    number_entity = [{"entity": "ticket_number", "value": ticket.number.lower(), "start": 10,
                      "end": 16, "extractor": "RegexEntityExtractor"}]  # fmt: skip

    _, by_entity = post(
        action_server,
        action_call(
            "action_ticket_status",
            "status of my incident",
            sender="carol@northwind.example",
            entities=number_entity,
        ),
    )
    _, listed = post(
        action_server,
        action_call("action_ticket_status", "any news?", sender="carol@northwind.example"),
    )
    _, someone_else = post(
        action_server,
        action_call("action_ticket_status", f"what about {ticket.number}?", sender="mallory"),
    )

    assert by_entity["responses"][0]["text"].startswith(f"{ticket.number} · new")
    assert slots_set(by_entity) == {"ticket_number": ticket.number}
    assert "Your open tickets:" in listed["responses"][0]["text"]
    assert "VPN drops every hour" in listed["responses"][0]["text"]
    assert someone_else["responses"][0]["text"] == (
        f"I can't find a ticket {ticket.number} of yours."
    )


def test_escalating_twice_hands_over_one_ticket(action_server: ActionServer) -> None:
    sender = "dave@northwind.example"
    status, first = post(
        action_server,
        action_call(
            "action_escalate_to_human",
            "printer on floor 3 jams, I want a person",
            sender=sender,
            message_id="m-1",
        ),
    )
    number = slots_set(first)["ticket_number"]
    _, again = post(
        action_server,
        action_call(
            "action_escalate_to_human",
            "hello?? a human please",
            sender=sender,
            slots={"ticket_number": number},
            message_id="m-2",
        ),
    )

    assert status == 200
    assert "handed this to the IT team as ticket" in first["responses"][0]["text"]
    assert slots_set(again) == {"ticket_number": number}
    [ticket] = action_server.tickets.list_for_requester(sender)
    assert ticket.title == "printer on floor 3 jams, I want a person"


def test_unknown_actions_and_bad_requests_get_rasa_sdk_errors(
    action_server: ActionServer,
) -> None:
    status, result = post(action_server, action_call("action_make_coffee", "coffee"))
    assert status == 404 and result["action_name"] == "action_make_coffee"

    status, result = post(action_server, b"this is not json")
    assert status == 400 and "parsing body as json" in result["message"]


# -- the editors' figures from a Rasa conversation -----------------------------------------


def article_stats(server: ActionServer, article_id: str) -> ArticleStats:
    return ArticleFeedbackLog(server.sessions).stats().get(article_id, ArticleStats(article_id))


def gap_questions(server: ActionServer, sender: str) -> list[tuple[str, str | None, str]]:
    """(kind, article, question) of what `kb gaps` reads, for one Rasa conversation."""
    events = ArticleFeedbackLog(server.sessions).events_since(
        datetime(2000, 1, 1, tzinfo=UTC),
        (FeedbackKind.UNANSWERED, FeedbackKind.NOT_HELPFUL, FeedbackKind.TICKET),
    )
    return [
        (e.kind, e.article_id, e.question) for e in events if e.conversation_key == f"rasa:{sender}"
    ]


def test_a_rasa_conversation_counts_what_was_shown_judged_and_escalated(
    action_server: ActionServer,
) -> None:
    sender = "fay@northwind.example"
    question = "my bitlocker recovery key screen came up after a bios update"
    before = article_stats(action_server, "bitlocker-recovery")

    _, answered = post(
        action_server, action_call("action_search_knowledge", question, sender=sender)
    )
    assert slots_set(answered)["kb_article"] == "bitlocker-recovery"
    cited = {"kb_article": "bitlocker-recovery", "kb_verdict": None}
    earlier = [("user", question), ("bot", answered["responses"][0]["text"])]
    no = action_call(
        "action_article_not_helped",
        "no",
        sender=sender,
        slots=cited,
        earlier=earlier,
        message_id="m-2",
    )
    _, judged = post(action_server, no)
    assert slots_set(judged) == {"kb_verdict": "not_helpful"}
    # Rasa runs it again with the verdict already set (a second "no"): counted once.
    _, again = post(
        action_server, {**no, "tracker": {**no["tracker"], "slots": {**cited, **slots_set(judged)}}}
    )
    assert slots_set(again) == {}
    _, opened = post(
        action_server,
        action_call(
            "action_open_ticket",
            "yes please",
            sender=sender,
            slots={**cited, "kb_verdict": "not_helpful", "problem_description": question},
            earlier=earlier,
            message_id="m-3",
        ),
    )
    number = slots_set(opened)["ticket_number"]

    after = article_stats(action_server, "bitlocker-recovery")
    assert after.shown - before.shown == 1
    assert (after.helpful, after.not_helpful - before.not_helpful) == (before.helpful, 1)
    assert after.tickets - before.tickets == 1
    # `kb gaps` reads the question the article was shown for, not the "no".
    assert gap_questions(action_server, sender) == [
        ("not_helpful", "bitlocker-recovery", question),
        ("ticket", "bitlocker-recovery", question),
    ]
    assert action_server.tickets.get(number).title == question


def test_a_helpful_answer_is_counted_and_a_later_ticket_is_not_held_against_it(
    action_server: ActionServer,
) -> None:
    sender = "gus@northwind.example"
    before = article_stats(action_server, "account-locked")
    question = "locked out after typing my password wrong too many times"
    post(action_server, action_call("action_search_knowledge", question, sender=sender))
    cited = {"kb_article": "account-locked", "kb_verdict": None}

    _, judged = post(
        action_server,
        action_call("action_article_helped", "yes", sender=sender, slots=cited, message_id="m-2"),
    )
    post(
        action_server,
        action_call(
            "action_escalate_to_human",
            "my monitor is broken too, get me a person",
            sender=sender,
            slots={**cited, **slots_set(judged)},
            message_id="m-3",
        ),
    )

    after = article_stats(action_server, "account-locked")
    assert slots_set(judged) == {"kb_verdict": "helpful"}
    assert (after.helpful - before.helpful, after.not_helpful) == (1, before.not_helpful)
    assert after.tickets == before.tickets
    # Not an article's failure: a question that went to a person, for the gap report.
    assert gap_questions(action_server, sender) == [
        ("ticket", None, "my monitor is broken too, get me a person")
    ]


def test_a_question_no_article_fits_is_a_gap_for_editors(action_server: ActionServer) -> None:
    sender = "hal@northwind.example"
    question = "how do i configure terraform remote state in s3"

    post(action_server, action_call("action_search_knowledge", question, sender=sender))
    _, nothing = post(
        action_server,
        action_call("action_article_not_helped", "no", sender=sender, slots={"kb_article": None}),
    )

    assert gap_questions(action_server, sender) == [("unanswered", None, question)]
    assert nothing["events"] == []  # no article was cited: nothing to judge
