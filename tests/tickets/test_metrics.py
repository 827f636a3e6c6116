"""The desk's figures, checked against a month whose answers we know."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import MONDAY_10AM, Desk, open_incident
from tickets.metrics import GroupBy, desk_report, record_feedback, record_question
from tickets.models import Question, Ticket


def ask(
    session_factory: sessionmaker[Session],
    asker: str,
    days: float,
    *,
    intent: str = "ask_question",
    helpful: bool | None = True,
    answered: bool = True,
) -> None:
    question = record_question(
        session_factory,
        asker=asker,
        text="how do I reset my VPN token",
        intent=intent,
        article_id="KB-12" if answered else None,
        answered=answered,
        at=MONDAY_10AM + timedelta(days=days),
    )
    if helpful is not None:
        record_feedback(session_factory, question, helpful)


def test_verified_deflection_only_counts_answers_that_ended_the_matter(
    desk: Desk, session_factory: sessionmaker[Session]
) -> None:
    ask(session_factory, "UALICE", 0)  # helped, nothing after: verified
    ask(session_factory, "UBRUNO", 0)  # "helped", but a ticket two days later
    ask(session_factory, "mona", 0, intent="vpn")  # "helped", asked again 3 days later
    ask(session_factory, "mona", 3, intent="vpn", helpful=False)
    ask(session_factory, "eddy", 1, answered=False, helpful=None)
    desk.clock.advance(days=2)
    open_incident(desk, requester="UBRUNO")

    report = desk_report(
        session_factory,
        since=MONDAY_10AM - timedelta(days=1),
        until=MONDAY_10AM + timedelta(days=30),
    )

    (row,) = report.rows
    assert row.questions == 5
    assert row.deflected == 3
    assert row.verified_deflected == 1
    assert row.deflection_rate == pytest.approx(3 / 5)
    assert row.verified_deflection_rate == pytest.approx(1 / 5)


def test_response_resolution_sla_reopen_backlog_and_csat(
    desk: Desk, session_factory: sessionmaker[Session]
) -> None:
    fast = open_incident(desk, impact="medium", urgency="medium").number
    slow = open_incident(desk, impact="medium", urgency="medium").number
    open_incident(desk, impact="low", urgency="low")  # stays in the backlog
    desk.clock.advance(hours=1)
    desk.tickets.claim(fast, "ann")  # first response after 1 h: met (4 h target)
    desk.clock.advance(hours=2)
    desk.tickets.resolve(fast, "ann", "Fixed")  # 3 h to resolve
    desk.clock.advance(hours=2)
    desk.tickets.claim(slow, "bob")  # first response after 5 h: missed
    desk.tickets.resolve(slow, "bob", "Fixed")  # 5 h to resolve
    desk.tickets.reopen(slow, as_user="UALICE", reason="Back again")
    desk.tickets.resolve(slow, "bob", "Fixed for real")
    desk.tickets.rate(fast, 5, as_user="UALICE")
    desk.tickets.rate(slow, 2, as_user="UALICE")

    report = desk_report(session_factory, since=MONDAY_10AM, until=MONDAY_10AM + timedelta(days=1))

    (row,) = report.rows
    assert row.tickets_opened == 3
    assert row.first_response_hours == pytest.approx((1 + 5) / 2)
    assert row.resolved == 2
    assert row.mttr_hours == pytest.approx((3 + 5) / 2)
    assert row.reopened == 1 and row.reopen_rate == pytest.approx(0.5)
    # first response: one met, one missed; resolution: two met (well inside 3 days).
    assert (row.sla_met, row.sla_measured) == (3, 4)
    assert row.backlog == 1
    assert row.csat_responses == 2
    assert row.csat_average == pytest.approx(3.5)
    assert row.csat_satisfied_share == pytest.approx(0.5)


def test_figures_group_by_team_and_by_category(
    desk: Desk, session_factory: sessionmaker[Session]
) -> None:
    open_incident(desk, category="network")
    escalated = open_incident(desk, category="hardware").number
    desk.tickets.escalate(escalated, as_user="ann", reason="board swap")
    period = {"since": MONDAY_10AM, "until": MONDAY_10AM + timedelta(days=1)}

    by_team = desk_report(session_factory, group_by=GroupBy.TEAM, **period)
    by_category = desk_report(session_factory, group_by=GroupBy.CATEGORY, **period)

    # Opened counts follow the team that owns the ticket now.
    assert {r.group: r.tickets_opened for r in by_team.rows} == {
        "Service Desk L1": 1,
        "Service Desk L2": 1,
    }
    assert {r.group: r.backlog for r in by_category.rows} == {"hardware": 1, "network": 1}
    assert by_team.as_json()["rows"][0]["group"] == "Service Desk L1"


def test_an_empty_period_reports_zeros_not_errors(session_factory: sessionmaker[Session]) -> None:
    report = desk_report(session_factory, since=MONDAY_10AM, until=MONDAY_10AM + timedelta(days=1))

    (row,) = report.rows
    assert row.questions == 0 and row.deflection_rate is None and row.mttr_hours is None
    with pytest.raises(ValueError, match="end after it starts"):
        desk_report(session_factory, since=MONDAY_10AM, until=MONDAY_10AM)


# -- verified deflection, set-based, against the definition read literally -----------------


def _history(seed: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Questions and tickets from a few people at a few instants half a day apart, so ties,
    repeats and the window's exact end (7 days = 14 steps) all happen."""
    rng = random.Random(seed)
    people = ["UALICE", "UBRUNO", "mona", "eddy", "ann", "bob", "carl", "dana"]

    def instant() -> datetime:
        return MONDAY_10AM + timedelta(hours=12 * rng.randrange(40))

    questions = [
        {
            "id": index + 1,
            "asker": rng.choice(people),
            "text": "how do I …",
            "intent": rng.choice(["vpn", "password", None]),
            "article_id": rng.choice(["KB-1", "KB-2", None]),
            "answered": rng.random() < 0.8,
            "helpful": rng.choice([True, True, False, None]),
            "asked_at": instant(),
        }
        for index in range(60)
    ]
    # The same question twice at one instant (a double click): each is the other's repeat.
    for twin in (61, 62):
        questions.append(
            questions[0]
            | {"id": twin, "asker": "zoe", "intent": "vpn", "article_id": None}
            | {"answered": True, "helpful": True, "asked_at": MONDAY_10AM + timedelta(days=3)}
        )
    tickets = [
        {
            "number": f"T-{5000 + index}",
            "requester": rng.choice(people),
            "title": "Historic",
            "description": "",
            "status": "closed",
            "priority": "P3",
            "category": "general",
            "source": "slack",
            "transcript": [],
            "articles_tried": [],
            "created_at": instant(),
            "updated_at": MONDAY_10AM,
        }
        for index in range(12)
    ]
    return questions, tickets


def _verified_by_definition(
    questions: list[dict[str, Any]], tickets: list[dict[str, Any]], since: datetime, until: datetime
) -> tuple[int, int, int]:
    window = timedelta(days=7)
    asked = deflected = verified = 0
    for q in questions:
        if not since <= q["asked_at"] < until:
            continue
        asked += 1
        if not (q["answered"] and q["helpful"] is True):
            continue
        deflected += 1
        end = q["asked_at"] + window
        ticket_after = any(
            t["requester"] == q["asker"] and q["asked_at"] <= t["created_at"] < end for t in tickets
        )
        asked_again = any(
            other["id"] != q["id"]
            and other["asker"] == q["asker"]
            and q["asked_at"] <= other["asked_at"] < end
            and (
                (other["intent"] is not None and other["intent"] == q["intent"])
                or (other["article_id"] is not None and other["article_id"] == q["article_id"])
            )
            for other in questions
        )
        verified += not ticket_after and not asked_again
    return asked, deflected, verified


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_verified_deflection_agrees_with_its_definition_question_by_question(
    engine: Engine, session_factory: sessionmaker[Session], seed: int
) -> None:
    questions, tickets = _history(seed)
    with engine.begin() as connection:
        connection.execute(insert(Question), questions)
        connection.execute(insert(Ticket), tickets)
    since, until = MONDAY_10AM + timedelta(days=2), MONDAY_10AM + timedelta(days=13)

    (row,) = desk_report(session_factory, since=since, until=until).rows

    expected = _verified_by_definition(questions, tickets, since, until)
    assert (row.questions, row.deflected, row.verified_deflected) == expected
    assert 0 < expected[2] < expected[1]  # the data exercises both outcomes


def test_weekly_rows_add_up_to_the_whole_period(
    engine: Engine, session_factory: sessionmaker[Session]
) -> None:
    questions, tickets = _history(4)
    with engine.begin() as connection:
        connection.execute(insert(Question), questions)
        connection.execute(insert(Ticket), tickets)
    period = {"since": MONDAY_10AM, "until": MONDAY_10AM + timedelta(days=21)}

    (total,) = desk_report(session_factory, **period).rows
    weeks = desk_report(session_factory, group_by=GroupBy.WEEK, **period).rows

    assert len(weeks) == 3
    assert sum(week.questions for week in weeks) == total.questions
    assert sum(week.verified_deflected for week in weeks) == total.verified_deflected
    assert (
        sum(week.tickets_opened for week in weeks)
        == total.tickets_opened
        == sum(1 for t in tickets if t["created_at"] < MONDAY_10AM + timedelta(days=21))
    )
