"""Opening a ticket takes a short path (one statement on PostgreSQL, one per table on
SQLite); the rows it writes must be the ones the general ORM path (``open_in_session``,
which the catalog uses) writes for the same ticket, and a key must still open one ticket
however many deliveries race."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Table, select
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import Desk
from tests.tickets.test_ticket_concurrency import all_at_once
from tickets import Ticket, TicketEvent
from tickets.models import SlaClock, TicketArticle, User
from tickets.notifications import NotificationKind

TRANSCRIPT = [
    {"role": "requester", "text": "the VPN drops every ten minutes"},
    {"role": "assistant", "text": "Have you tried reconnecting?"},
]
ARTICLES = [
    {"id": "KB-12", "title": "VPN keeps disconnecting", "score": 0.71},
    {"id": "KB-40", "title": "Working from home", "score": 0.42},
]


def _rows(session: Session, model: type[Any], ticket_id: int, *skip: str) -> list[dict[str, Any]]:
    table: Table = model.__table__
    key = table.c.id if model is Ticket else table.c.ticket_id
    rows = session.execute(select(table).where(key == ticket_id).order_by(table.c.id))
    return [
        {name: value for name, value in row._mapping.items() if name not in skip} for row in rows
    ]


def _user(session: Session, handle: str) -> dict[str, Any]:
    row = session.execute(select(User.__table__).where(User.handle == handle)).one()
    return {
        name: value
        for name, value in row._mapping.items()
        # Registered at the wall-clock time, not the desk's test clock.
        if name not in ("id", "handle", "slack_id", "name", "created_at")
    }


@pytest.mark.parametrize("source", ["slack", "email"])
def test_the_short_open_writes_the_rows_the_orm_open_writes(
    desk: Desk, session_factory: sessionmaker[Session], source: str
) -> None:
    short = desk.tickets.open_ticket(
        requester="U0NEWONE",
        title="VPN drops every ten minutes",
        description="Since this morning.",
        transcript=TRANSCRIPT,
        articles_tried=ARTICLES,
        category="network",
        impact="high",
        urgency="medium",
        source=source,
        idempotency_key="Ev0SHORT",
        requester_channel="D0NEWONE",
        requester_thread_ts="1700000000.0001",
    )
    now = desk.clock()
    with session_factory.begin() as session:
        general = Ticket(
            requester="U0NEWTWO",
            title="VPN drops every ten minutes",
            description="Since this morning.",
            status="new",
            priority="P2",
            category="network",
            source=source,
            transcript=TRANSCRIPT,
            articles_tried=ARTICLES,
            idempotency_key="Ev0GENERAL",
            requester_channel="D0NEWONE",
            requester_thread_ts="1700000000.0001",
            type="incident",
            impact="high",
            urgency="medium",
            tier="L1",
            form_answers={},
            reopen_count=0,
            created_at=now,
            updated_at=now,
        )
        desk.tickets.open_in_session(session, general, now=now)
        general_id = general.id

    with session_factory.begin() as session:
        for model, skip in (
            (Ticket, ("id", "number", "requester", "idempotency_key")),
            (TicketEvent, ("id", "ticket_id", "actor")),
            (SlaClock, ("id", "ticket_id")),
            (TicketArticle, ("id", "ticket_id")),
        ):
            written = _rows(session, model, short.id, *skip)
            assert written == _rows(session, model, general_id, *skip), model.__name__
            assert written, f"no {model.__name__} row"
        assert _user(session, "U0NEWONE") == _user(session, "U0NEWTWO")
    # What the caller is handed is what a later read gives.
    assert desk.tickets.get(short.number) == short
    assert short.team == "Service Desk L1" and short.priority == "P2"


@pytest.mark.postgres
def test_a_dozen_deliveries_of_one_event_at_once_write_one_ticket_and_its_rows(
    desk: Desk, session_factory: sessionmaker[Session], store_url: str
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("the one-statement open under real concurrency: PostgreSQL only")

    def deliver(index: int) -> tuple[int, str]:
        opened = desk.tickets.open_ticket(
            requester="U0FIRSTTIME",
            title=f"Printer on floor 3 jams (delivery {index})",
            description="Every second page.",
            articles_tried=ARTICLES,
            category="hardware",
            source="slack",
            idempotency_key="slack-event:Ev0PRINTER",
        )
        return opened.id, opened.number

    opened = set(all_at_once(12, deliver))

    assert len(opened) == 1
    ((ticket_id, _number),) = opened
    with session_factory.begin() as session:
        assert session.scalars(select(Ticket.id)).all() == [ticket_id]
        assert [event.kind for event in session.scalars(select(TicketEvent))] == ["opened"]
        assert len(session.scalars(select(SlaClock)).all()) == 2
        assert len(session.scalars(select(TicketArticle)).all()) == len(ARTICLES)
        assert len(session.scalars(select(User).where(User.handle == "U0FIRSTTIME")).all()) == 1


def test_a_pasted_secret_is_redacted_and_noticed_on_the_short_open(
    desk: Desk, session_factory: sessionmaker[Session]
) -> None:
    opened = desk.tickets.open_ticket(
        requester="UALICE",
        title="Login fails",
        description="my password is Hunter2024! and it does not work",
        source="slack",
        idempotency_key="Ev0SECRET",
    )

    assert "Hunter2024" not in opened.description
    with session_factory.begin() as session:
        stored = session.get_one(Ticket, opened.id)
        assert "Hunter2024" not in stored.description
        kinds = [e.kind for e in session.scalars(select(TicketEvent).order_by(TicketEvent.id))]
    assert kinds == ["opened", "secret_redacted"]
    (notice,) = desk.sink.of_kind(NotificationKind.SECRET_REDACTED)
    assert notice.recipient == "UALICE" and "rotate" in notice.text
