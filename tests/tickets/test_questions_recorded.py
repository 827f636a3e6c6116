"""Questions asked through the assistant are what the desk's deflection figures count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.assistant import Decision, IncomingMessage
from bot.cli import app
from bot.runtime import Tier0
from knowledge.records import ArticleFeedback
from tickets.models import Question

QUESTION = "outlook on my iphone keeps asking for my password"


def test_questions_and_their_verdicts_reach_the_deflection_report(
    tier0: Tier0, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def say(user: str, text: str) -> Decision:
        return tier0.assistant.respond(IncomingMessage(f"console:{user}:1", user, text)).decision

    # Alice is answered and says it helped.
    assert say("alice", QUESTION) is Decision.ANSWER
    say("alice", "yes")
    # Bruno is answered, says it did not help, and gets a ticket.
    assert say("bruno", QUESTION) is Decision.ANSWER
    say("bruno", "no")
    assert say("bruno", "yes please") is Decision.TICKET
    # Dana is answered and presses "That solved it".
    assert say("dana", QUESTION) is Decision.ANSWER
    tier0.assistant.mark_helpful("console:dana:1", "dana")

    monkeypatch.setenv("TIER0_HOME", str(home))
    monkeypatch.delenv("TIER0_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["report", "--since", "1d", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["rows"]

    # Three questions (a "yes" or "no" to a follow-up asks nothing new), two helped, and
    # neither of those two people opened a ticket after.
    assert (row["questions"], row["deflected"], row["verified_deflected"]) == (3, 2, 2)
    assert row["deflection_rate"] == round(2 / 3, 4)
    assert row["tickets_opened"] == 1

    with tier0.session_factory.begin() as session:
        questions = {q.asker: q for q in session.scalars(select(Question))}
        feedback_keys = set(session.scalars(select(ArticleFeedback.conversation_key)))
    assert {asker: q.helpful for asker, q in questions.items()} == {
        "alice": True,
        "bruno": False,
        "dana": True,
    }
    assert all(q.answered and q.article_id == "mobile-email" for q in questions.values())
    # Each question is tied to the per-article events of its conversation.
    assert {q.conversation_key for q in questions.values()} <= feedback_keys


def test_a_question_no_article_answers_counts_as_not_deflected(tier0: Tier0) -> None:
    reply = tier0.assistant.respond(
        IncomingMessage(
            "console:eve:1", "eve", "what colour will the chairs in the new cafeteria be?"
        )
    )
    assert reply.decision is Decision.ESCALATE and reply.offers_ticket
    tier0.assistant.respond(IncomingMessage("console:eve:1", "eve", "no"))

    with tier0.session_factory.begin() as session:
        (question,) = session.scalars(select(Question)).all()
    assert question.asker == "eve" and not question.answered and question.helpful is None
