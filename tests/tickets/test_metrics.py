"""The desk's figures, checked against a month whose answers we know."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import MONDAY_10AM, Desk, open_incident
from tickets.metrics import GroupBy, desk_report, record_feedback, record_question
from tickets.models import CsatResponse, Question, SlaClock, Team, Ticket


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


# -- every figure, every grouping, against the definitions read literally ------------------

OPEN = {"new", "triaged", "in_progress", "waiting_on_requester"}


def _desk_history(seed: int, team_ids: list[int]) -> dict[str, list[dict[str, Any]]]:
    """Tickets, SLA clocks and ratings spread over five weeks around a report period, with
    open and closed tickets, no team on some, clocks that stopped or breached
    (or neither), and instants right on the period's edges."""
    rng = random.Random(seed)

    def instant() -> datetime:
        return MONDAY_10AM + timedelta(hours=6 * rng.randrange(-20, 120))

    tickets, clocks, ratings = [], [], []
    for index in range(90):
        created = instant()
        resolved = (
            created + timedelta(hours=rng.choice([1, 5, 30, 200])) if rng.random() < 0.7 else None
        )
        tickets.append(
            {
                "id": index + 1,
                "number": f"T-{7000 + index}",
                "requester": rng.choice(["UALICE", "UBRUNO", "mona"]),
                "title": "Historic",
                "description": "",
                "status": rng.choice(sorted(OPEN)) if resolved is None else "resolved",
                "priority": "P3",
                "category": rng.choice(["network", "hardware", "general"]),
                "team_id": rng.choice([*team_ids, None]),
                "source": "slack",
                "transcript": [],
                "articles_tried": [],
                "reopen_count": rng.choice([0, 0, 1, 2]),
                "created_at": created,
                "updated_at": created,
                "first_response_at": (
                    created + timedelta(minutes=rng.randrange(5, 900))
                    if rng.random() < 0.8
                    else None
                ),
                "resolved_at": resolved,
            }
        )
        for kind in ("first_response", "resolution"):
            decided = created + timedelta(hours=rng.randrange(1, 80))
            stopped, breached, met = rng.choice(
                [
                    (decided, None, True),
                    (decided, decided, False),
                    (None, decided, False),
                    (None, None, None),
                ]
            )
            clocks.append(
                {
                    "ticket_id": index + 1,
                    "kind": kind,
                    "target_minutes": 240,
                    "business_hours": True,
                    "consumed_minutes": 10.0,
                    "stopped_at": stopped,
                    "breached_at": breached,
                    "met": met,
                }
            )
        if rng.random() < 0.5:
            ratings.append(
                {
                    "ticket_id": index + 1,
                    "requester": "UALICE",
                    "score": rng.randint(1, 5),
                    "created_at": created + timedelta(hours=rng.randrange(1, 100)),
                }
            )
    return {"tickets": tickets, "clocks": clocks, "ratings": ratings}


def _expected_rows(
    history: dict[str, list[dict[str, Any]]],
    team_names: dict[int, str],
    since: datetime,
    until: datetime,
    group_by: GroupBy,
    week: Any,
) -> dict[str, dict[str, Any]]:
    """The figures computed row by row in Python, per group."""
    by_id = {t["id"]: t for t in history["tickets"]}

    def in_period(at: datetime | None) -> bool:
        return at is not None and since <= at < until

    def key(ticket: dict[str, Any], at: datetime) -> str:
        if group_by is GroupBy.TEAM:
            name = team_names.get(ticket["team_id"])
        elif group_by is GroupBy.CATEGORY:
            name = ticket["category"]
        elif group_by is GroupBy.WEEK:
            name = week(at)
        else:
            name = "all"
        return "(none)" if name is None else name

    groups: dict[str, dict[str, list[Any]]] = {}

    def add(name: str, figure: str, value: Any) -> None:
        groups.setdefault(name, {}).setdefault(figure, []).append(value)

    for t in history["tickets"]:
        if in_period(t["created_at"]):
            name = key(t, t["created_at"])
            add(name, "opened", 1)
            if t["first_response_at"] is not None:
                add(
                    name,
                    "response",
                    (t["first_response_at"] - t["created_at"]) / timedelta(hours=1),
                )
        if in_period(t["resolved_at"]):
            name = key(t, t["resolved_at"])
            add(name, "resolved", (t["resolved_at"] - t["created_at"]) / timedelta(hours=1))
            add(name, "reopened", int(t["reopen_count"] > 0))
        if t["status"] in OPEN and group_by is not GroupBy.WEEK:
            add(key(t, t["created_at"]), "backlog", 1)
    for clock in history["clocks"]:
        decided = clock["stopped_at"] or clock["breached_at"]
        if in_period(decided):
            add(key(by_id[clock["ticket_id"]], decided), "clocks", int(clock["met"] is True))
    for rating in history["ratings"]:
        if in_period(rating["created_at"]):
            add(key(by_id[rating["ticket_id"]], rating["created_at"]), "ratings", rating["score"])

    def mean(values: list[Any]) -> float | None:
        return sum(values) / len(values) if values else None

    expected = {}
    for name, figures in groups.items():
        get = figures.get
        expected[name] = {
            "tickets_opened": len(get("opened", [])),
            "first_response_hours": mean(get("response", [])),
            "resolved": len(get("resolved", [])),
            "mttr_hours": mean(get("resolved", [])),
            "reopened": sum(get("reopened", [])),
            "backlog": len(get("backlog", [])),
            "sla_measured": len(get("clocks", [])),
            "sla_met": sum(get("clocks", [])),
            "csat_responses": len(get("ratings", [])),
            "csat_average": mean(get("ratings", [])),
            "csat_satisfied": sum(1 for score in get("ratings", []) if score >= 4),
        }
    return expected


@pytest.mark.parametrize("group_by", list(GroupBy))
@pytest.mark.parametrize("seed", [5, 6])
def test_every_figure_of_every_grouping_agrees_with_its_definition(
    desk: Desk, engine: Engine, session_factory: sessionmaker[Session], seed: int, group_by: GroupBy
) -> None:
    with engine.begin() as connection:
        team_names = dict(connection.execute(select(Team.id, Team.name)).all())
        history = _desk_history(seed, sorted(team_names))
        connection.execute(insert(Ticket), history["tickets"])
        connection.execute(insert(SlaClock), history["clocks"])
        connection.execute(insert(CsatResponse), history["ratings"])
        postgres = connection.dialect.name == "postgresql"
    since, until = MONDAY_10AM, MONDAY_10AM + timedelta(days=14)

    def week(at: datetime) -> str:
        if postgres:  # ISO weeks
            year, number, _ = at.isocalendar()
            return f"{year}-W{number:02d}"
        return at.strftime("%Y-W%W")  # SQLite's %W: weeks from the year's first Monday

    report = desk_report(session_factory, since=since, until=until, group_by=group_by)

    expected = _expected_rows(history, team_names, since, until, group_by, week)
    assert [row.group for row in report.rows] == sorted(expected, key=lambda n: (n == "(none)", n))
    for row in report.rows:
        want = expected[row.group]
        got = {name: getattr(row, name) for name in want}
        for name in ("first_response_hours", "mttr_hours", "csat_average"):
            assert got.pop(name) == (None if want[name] is None else pytest.approx(want.pop(name)))
            want.pop(name, None)
        assert got == want, row.group
    # The data reaches every group: both teams and none, each category, both weeks.
    minimum = {GroupBy.NONE: 1, GroupBy.WEEK: 2, GroupBy.TEAM: 3, GroupBy.CATEGORY: 3}
    assert len(expected) == len(report.rows) >= minimum[group_by]
