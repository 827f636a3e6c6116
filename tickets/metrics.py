"""Service-desk metrics: how much self-service settles, and how well the desk does the rest.

* **deflection rate**: IT questions answered and confirmed helpful / all IT questions;
* **verified deflection**: of those, only the ones where the same person opened no ticket
  and asked nothing similar (same intent or same article) in the next 7 days: the answer
  really ended the matter;
* **first-response time** and **MTTR** (mean time to resolve), in wall-clock hours;
* **SLA compliance**: clocks that met their target / clocks that finished or breached;
* **reopen rate**: resolved tickets reopened at least once / resolved tickets;
* **backlog**: tickets open now; **CSAT**: mean score and share of 4s and 5s.

Everything is aggregated by the database, one statement per table read (questions,
tickets, SLA clocks, ratings), so a report over millions of rows stays fast; grouping is
by team, category or week (ISO weeks on PostgreSQL; on SQLite its ``%W`` weeks, counted
from the year's first Monday: the two can number the same week differently).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.orm import Session, aliased, sessionmaker
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import UnaryExpression

from tickets.lifecycle import OPEN_STATUSES
from tickets.models import CsatResponse, Question, SlaClock, Team, Ticket

VERIFICATION_WINDOW = timedelta(days=7)
ALL = "all"


class GroupBy(StrEnum):
    NONE = "none"
    TEAM = "team"
    CATEGORY = "category"
    WEEK = "week"


@dataclass(frozen=True)
class DeskMetrics:
    group: str
    questions: int
    deflected: int
    verified_deflected: int
    tickets_opened: int
    first_response_hours: float | None
    resolved: int
    mttr_hours: float | None
    sla_met: int
    sla_measured: int
    reopened: int
    backlog: int
    csat_responses: int
    csat_average: float | None
    csat_satisfied: int

    @property
    def deflection_rate(self) -> float | None:
        return _ratio(self.deflected, self.questions)

    @property
    def verified_deflection_rate(self) -> float | None:
        return _ratio(self.verified_deflected, self.questions)

    @property
    def sla_compliance(self) -> float | None:
        return _ratio(self.sla_met, self.sla_measured)

    @property
    def reopen_rate(self) -> float | None:
        return _ratio(self.reopened, self.resolved)

    @property
    def csat_satisfied_share(self) -> float | None:
        return _ratio(self.csat_satisfied, self.csat_responses)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in (
            "deflection_rate",
            "verified_deflection_rate",
            "sla_compliance",
            "reopen_rate",
            "csat_satisfied_share",
        ):
            value = getattr(self, name)
            data[name] = None if value is None else round(value, 4)
        for name in ("first_response_hours", "mttr_hours", "csat_average"):
            if data[name] is not None:
                data[name] = round(data[name], 2)
        return data


@dataclass(frozen=True)
class Report:
    since: datetime
    until: datetime
    group_by: GroupBy
    rows: list[DeskMetrics]

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "group_by": self.group_by.value,
            "rows": [row.as_json() for row in self.rows],
        }


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


class _Row:
    """Accumulates one group's figures as the queries come back."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {
            "questions": 0,
            "deflected": 0,
            "verified_deflected": 0,
            "tickets_opened": 0,
            "first_response_hours": None,
            "resolved": 0,
            "mttr_hours": None,
            "sla_met": 0,
            "sla_measured": 0,
            "reopened": 0,
            "backlog": 0,
            "csat_responses": 0,
            "csat_average": None,
            "csat_satisfied": 0,
        }


def desk_report(
    session_factory: sessionmaker[Session],
    *,
    since: datetime,
    until: datetime,
    group_by: GroupBy = GroupBy.NONE,
) -> Report:
    if until <= since:
        raise ValueError("the report period must end after it starts")
    rows: dict[str, _Row] = {}

    def row(key: object) -> _Row:
        name = ALL if group_by is GroupBy.NONE else ("(none)" if key is None else str(key))
        return rows.setdefault(name, _Row())

    with session_factory.begin() as session:
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            # JIT compiling these few big aggregates costs more than it saves (measured
            # on the 1M-row benchmark: about a quarter of a second per report).
            session.execute(text("SET LOCAL jit = off"))
        # Clocks and ratings need their ticket only to group by its team or category.
        by_ticket = group_by in (GroupBy.TEAM, GroupBy.CATEGORY)
        team_names = {team.id: team.name for team in session.scalars(select(Team))}

        def ticket_group(timestamp: Any) -> Any:
            if group_by is GroupBy.TEAM:
                return Ticket.team_id
            if group_by is GroupBy.CATEGORY:
                return Ticket.category
            if group_by is GroupBy.WEEK:
                return _week(dialect, timestamp)
            return literal(ALL)

        def label(key: object) -> object:
            if group_by is GroupBy.TEAM:
                return team_names.get(key) if isinstance(key, int) else None
            return key

        # Questions belong to no team; they group by week or count in the total only.
        if group_by in (GroupBy.NONE, GroupBy.WEEK):
            for key, asked, deflected, verified in session.execute(
                _question_figures(dialect, since, until, group_by)
            ):
                target = row(key).values
                target["questions"] = asked
                target["deflected"] = int(deflected or 0)
                target["verified_deflected"] = int(verified or 0)

        opened = and_(Ticket.created_at >= since, Ticket.created_at < until)
        resolved = and_(Ticket.resolved_at >= since, Ticket.resolved_at < until)
        response_hours = _hours(dialect, Ticket.created_at, Ticket.first_response_at)
        resolve_hours = _hours(dialect, Ticket.created_at, Ticket.resolved_at)
        reopened = case((Ticket.reopen_count > 0, 1), else_=0)
        if group_by is GroupBy.WEEK:
            # A ticket opened one week and resolved another counts in both: two passes.
            opened_week = _week(dialect, Ticket.created_at)
            for key, count, responded_hours in session.execute(
                select(opened_week, func.count(), func.avg(response_hours))
                .where(opened)
                .group_by(opened_week)
            ):
                target = row(key).values
                target["tickets_opened"] = count
                target["first_response_hours"] = _float(responded_hours)
            resolved_week = _week(dialect, Ticket.resolved_at)
            for key, count, hours, reopened_count in session.execute(
                select(resolved_week, func.count(), func.avg(resolve_hours), func.sum(reopened))
                .where(resolved)
                .group_by(resolved_week)
            ):
                target = row(key).values
                target["resolved"] = count
                target["mttr_hours"] = _float(hours)
                target["reopened"] = int(reopened_count or 0)
        else:
            # Opened, resolved and still open, by the ticket's team or category: one pass
            # over the tickets with filtered aggregates instead of three.
            open_statuses = [s.value for s in OPEN_STATUSES]
            still_open = Ticket.status.in_(open_statuses)
            created, resolved_at = (
                _scanned(dialect, Ticket.created_at),
                _scanned(dialect, Ticket.resolved_at),
            )
            any_of_them = or_(
                and_(created >= since, created < until),
                and_(resolved_at >= since, resolved_at < until),
                _scanned(dialect, Ticket.status).in_(open_statuses),
            )
            group = ticket_group(Ticket.created_at)
            for (
                key,
                count_opened,
                responded_hours,
                count_resolved,
                hours,
                reopened_count,
                backlog,
            ) in session.execute(
                select(
                    group,
                    func.count().filter(opened),
                    func.avg(response_hours).filter(opened),
                    func.count().filter(resolved),
                    func.avg(resolve_hours).filter(resolved),
                    func.sum(reopened).filter(resolved),
                    func.count().filter(still_open),
                )
                .where(any_of_them)
                .group_by(*_keys(group_by, group))
            ):
                target = row(label(key)).values
                target["tickets_opened"] = count_opened
                target["first_response_hours"] = _float(responded_hours)
                target["resolved"] = count_resolved
                target["mttr_hours"] = _float(hours)
                target["reopened"] = int(reopened_count or 0)
                target["backlog"] = backlog

        # A clock counts once it is decided: stopped in the period, or breached in it.
        decided_at = func.coalesce(SlaClock.stopped_at, SlaClock.breached_at)
        clock_group = ticket_group(SlaClock.stopped_at)
        if group_by is GroupBy.WEEK:
            clock_group = _week(dialect, decided_at)
        clocks = select(
            clock_group, func.count(), func.sum(case((SlaClock.met.is_(true()), 1), else_=0))
        ).select_from(SlaClock)
        if by_ticket:
            clocks = clocks.join(Ticket, Ticket.id == SlaClock.ticket_id)
        for key, measured, met in session.execute(
            clocks.where(
                or_(SlaClock.stopped_at.is_not(None), SlaClock.breached_at.is_not(None)),
                decided_at >= since,
                decided_at < until,
            ).group_by(*_keys(group_by, clock_group))
        ):
            target = row(label(key)).values
            target["sla_measured"] = measured
            target["sla_met"] = int(met or 0)

        csat_group = ticket_group(CsatResponse.created_at)
        if group_by is GroupBy.WEEK:
            csat_group = _week(dialect, CsatResponse.created_at)
        ratings = select(
            csat_group,
            func.count(),
            func.avg(cast(CsatResponse.score, Float)),
            func.sum(case((CsatResponse.score >= 4, 1), else_=0)),
        ).select_from(CsatResponse)
        if by_ticket:
            ratings = ratings.join(Ticket, Ticket.id == CsatResponse.ticket_id)
        for key, responses, average, satisfied in session.execute(
            ratings.where(
                CsatResponse.created_at >= since, CsatResponse.created_at < until
            ).group_by(*_keys(group_by, csat_group))
        ):
            target = row(label(key)).values
            target["csat_responses"] = responses
            target["csat_average"] = _float(average)
            target["csat_satisfied"] = int(satisfied or 0)

    if not rows:
        row(None)
    ordered = sorted(rows.items(), key=lambda item: (item[0] == "(none)", item[0]))
    return Report(
        since=since,
        until=until,
        group_by=group_by,
        rows=[DeskMetrics(group=name, **acc.values) for name, acc in ordered],
    )


def _keys(group_by: GroupBy, key: Any) -> tuple[Any, ...]:
    """What to GROUP BY: nothing for the whole period (a constant key would still make
    SQLite sort every row by it)."""
    return () if group_by is GroupBy.NONE else (key,)


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _hours(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 24.0
    return func.extract("epoch", end - start) / 3600.0


def _week(dialect: str, timestamp: Any) -> ColumnElement[Any]:
    if dialect == "sqlite":
        return func.strftime("%Y-W%W", timestamp)
    return func.to_char(timestamp, 'IYYY-"W"IW')


def _exact(dialect: str, column: Any) -> Any:
    """``column`` compared byte for byte, for partitions that only need equal values
    together. PostgreSQL otherwise sorts text by the database's collation through the C
    library (even C.UTF-8), several times slower; equality is the same either way, as
    the database's collations are deterministic. SQLite compares bytes already."""
    if dialect == "postgresql":
        return column.collate("C")
    return column


def _scanned(dialect: str, column: Any) -> Any:
    """``column`` in a condition that selects most of a table in a report over its
    history, with SQLite told not to use its index for it.

    SQLite has no statistics on value ranges, so it reads a period's rows through the
    timestamp's index one look-up at a time (or merges three indexes for an OR), two
    to five times slower than reading the table when the period covers much of it
    (measured on the 1M-row benchmark). A unary ``+`` is SQLite's documented way to keep
    a term off its indexes; a scan is bounded, under a second per million rows.
    PostgreSQL chooses from its statistics."""
    if dialect == "sqlite":
        return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)
    return column


def _plus_window(dialect: str, timestamp: Any) -> Any:
    days = VERIFICATION_WINDOW.days
    if dialect == "sqlite":
        # Stored as naive UTC text; keep the fraction so comparisons stay in order.
        return func.strftime("%Y-%m-%d %H:%M:%f", timestamp, f"+{days} days")
    return timestamp + literal_column(f"interval '{days} days'")


def _question_figures(
    dialect: str, since: datetime, until: datetime, group_by: GroupBy
) -> Select[tuple[Any, int, Any, Any]]:
    """Questions asked, deflected and verified deflected in the period, in one statement.

    A deflected question is verified when, within VERIFICATION_WINDOW after it, the asker
    opened no ticket and asked nothing similar (same intent or same article). Each
    database gets the form it runs fastest (measured on the 1M-row benchmark; both are
    checked against the definition by tests/tickets/test_metrics.py): PostgreSQL sorts
    (window functions, ``_question_figures_windowed``), a fifth cheaper than an index
    probe per question there; SQLite probes indexes, four times cheaper than its window
    functions.
    """
    if dialect == "postgresql":
        return _question_figures_windowed(dialect, since, until, group_by)
    return _question_figures_by_lookup(dialect, since, until, group_by)


def _question_figures_by_lookup(
    dialect: str, since: datetime, until: datetime, group_by: GroupBy
) -> Select[tuple[Any, int, Any, Any]]:
    """``_question_figures`` as the definition reads: for each deflected question, NOT
    EXISTS a ticket and NOT EXISTS a similar question, each one index probe
    (``ix_tickets_requester_created_at``, ``ix_questions_asker_asked_at``)."""
    window_end = _plus_window(dialect, Question.asked_at)
    ticket_soon = (
        select(literal(1))
        .where(
            Ticket.requester == Question.asker,
            Ticket.created_at >= Question.asked_at,
            Ticket.created_at < window_end,
        )
        .exists()
    )
    other = aliased(Question, name="other_question")
    asked_again = (
        select(literal(1))
        .where(
            other.asker == Question.asker,
            other.asked_at >= Question.asked_at,
            other.asked_at < window_end,
            other.id != Question.id,
            # A NULL intent or article matches nothing (NULL = NULL is not true).
            or_(other.intent == Question.intent, other.article_id == Question.article_id),
        )
        .exists()
    )
    deflected = and_(Question.answered.is_(true()), Question.helpful.is_(true()))
    # Cheapest test first: the databases evaluate AND left to right and stop at false.
    verified = and_(deflected, ~ticket_soon, ~asked_again)
    key = _week(dialect, Question.asked_at) if group_by is GroupBy.WEEK else literal(ALL)
    return (
        select(
            key,
            func.count(),
            func.sum(case((deflected, 1), else_=0)),
            func.sum(case((verified, 1), else_=0)),
        )
        .where(
            _scanned(dialect, Question.asked_at) >= since,
            _scanned(dialect, Question.asked_at) < until,
        )
        .group_by(*_keys(group_by, key))
    )


def _question_figures_windowed(
    dialect: str, since: datetime, until: datetime, group_by: GroupBy
) -> Select[tuple[Any, int, Any, Any]]:
    """``_question_figures`` for PostgreSQL, in one statement.

    A deflected question is verified when, within VERIFICATION_WINDOW after it, the asker
    opened no ticket and asked nothing similar (same intent or same article). Rather than
    look that up question by question, each question's neighbours are read off sorted
    runs with window functions:

    * the asker's next question with the same intent (LEAD) falls inside the window, or
      one asked at the very same instant sorts just before it (LAG);
    * likewise with the same article;
    * the asker's first ticket at or after the question: questions and tickets merged
      into one time line per person, read newest first, a running MIN of ticket times.

    Only rows from the period and the window after it are read.
    """
    horizon = until + VERIFICATION_WINDOW
    window_end = _plus_window(dialect, Question.asked_at)

    asker = _exact(dialect, Question.asker)

    def asked_again_by(similar: Any) -> ColumnElement[bool]:
        order = (Question.asked_at, Question.id)
        partition = (asker, _exact(dialect, similar))
        following = func.lead(Question.asked_at).over(partition_by=partition, order_by=order)
        preceding = func.lag(Question.asked_at).over(partition_by=partition, order_by=order)
        return and_(
            similar.is_not(None),
            or_(following < window_end, preceding == Question.asked_at),
        )

    helpful = and_(Question.answered.is_(true()), Question.helpful.is_(true()))
    questions = select(
        Question.asker.label("who"),
        Question.asked_at.label("at"),
        literal(0).label("is_ticket"),
        case((helpful, 1), else_=0).label("deflected"),
        case(
            (or_(asked_again_by(Question.intent), asked_again_by(Question.article_id)), 1),
            else_=0,
        ).label("asked_again"),
    ).where(Question.asked_at >= since, Question.asked_at < horizon)
    tickets = select(
        Ticket.requester,
        Ticket.created_at,
        literal(1),
        literal(0),
        literal(0),
    ).where(Ticket.created_at >= since, Ticket.created_at < horizon)
    timeline = union_all(questions, tickets).subquery("timeline")
    # Newest first, and at one instant tickets before questions: the running MIN over the
    # rows so far is then the person's first ticket at or after each question.
    next_ticket = (
        func.min(case((timeline.c.is_ticket == 1, timeline.c.at)))
        .over(
            partition_by=_exact(dialect, timeline.c.who),
            order_by=(timeline.c.at.desc(), timeline.c.is_ticket.desc()),
            rows=(None, 0),
        )
        .label("next_ticket")
    )
    marked = select(timeline, next_ticket).subquery("marked")
    ticket_soon = and_(
        marked.c.next_ticket.is_not(None),
        marked.c.next_ticket < _plus_window(dialect, marked.c.at),
    )
    verified = and_(marked.c.deflected == 1, marked.c.asked_again == 0, ~ticket_soon)
    key = _week(dialect, marked.c.at) if group_by is GroupBy.WEEK else literal(ALL)
    return (
        select(
            key,
            func.count(),
            func.sum(marked.c.deflected),
            func.sum(case((verified, 1), else_=0)),
        )
        .where(marked.c.is_ticket == 0, marked.c.at >= since, marked.c.at < until)
        .group_by(*_keys(group_by, key))
    )


def record_question(
    session_factory: sessionmaker[Session],
    *,
    asker: str,
    text: str,
    intent: str | None,
    article_id: str | None,
    answered: bool,
    at: datetime,
    conversation_key: str | None = None,
    ticket_number: str | None = None,
) -> int:
    """Log an IT question the assistant handled; returns its id for ``record_feedback``.

    ``conversation_key`` ties it to the editors' per-article events of the same
    conversation (``knowledge.feedback``); ``ticket_number`` to the ticket it went to.
    """
    from tickets.redaction import redact_secrets

    with session_factory.begin() as session:
        ticket_id = None
        if ticket_number is not None:
            ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == ticket_number))
        question = Question(
            asker=asker,
            text=redact_secrets(text)[:4000],
            intent=intent,
            article_id=article_id,
            answered=answered,
            helpful=None,
            ticket_id=ticket_id,
            conversation_key=None if conversation_key is None else conversation_key[:200],
            asked_at=at,
        )
        session.add(question)
        session.flush()
        return question.id


def record_feedback(
    session_factory: sessionmaker[Session], question_id: int, helpful: bool
) -> None:
    """The asker said whether the answer helped."""
    with session_factory.begin() as session:
        question = session.get(Question, question_id)
        if question is None:
            raise ValueError(f"no question {question_id}")
        question.helpful = helpful
