"""A ticket's life: an employee opens it, an agent claims it, works it and resolves it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tickets import (
    InvalidTransition,
    TicketAlreadyClaimed,
    TicketNotFound,
    TicketService,
    TicketSource,
    TicketStatus,
    TicketView,
    canonical_ticket_number,
)


def open_vpn_ticket(service: TicketService, **overrides: object) -> TicketView:
    """Alice's VPN ticket, as the assistant escalates it from Slack; ``overrides`` vary it."""
    fields: dict[str, object] = {
        "requester": "U0ALICE",
        "title": "VPN drops every ten minutes",
        "description": "Since this morning the VPN disconnects every ten minutes.",
        "transcript": [
            {"role": "requester", "text": "my vpn keeps dropping"},
            {"role": "assistant", "text": "Try reinstalling the VPN client (KB-12)."},
            {"role": "requester", "text": "that did not help"},
        ],
        "articles_tried": [{"id": "KB-12", "title": "Reinstall the VPN client", "score": 0.81}],
        "category": "network",
        "priority": "P2",
        "source": "slack",
        "requester_channel": "D0ALICE",
        "requester_thread_ts": "1700000000.000100",
    }
    fields.update(overrides)
    return service.open_ticket(**fields)  # type: ignore[arg-type]


def test_an_opened_ticket_can_be_read_back_with_everything_the_agent_needs(
    ticket_service: TicketService,
) -> None:
    opened = open_vpn_ticket(ticket_service)

    assert opened.number == "T-1001"
    assert opened.status is TicketStatus.NEW
    assert opened.source is TicketSource.SLACK
    assert opened.assignee is None
    assert opened.is_open

    fetched = ticket_service.get("T-1001")
    assert fetched == opened
    assert fetched.title == "VPN drops every ten minutes"
    assert fetched.priority == "P2"
    assert fetched.category == "network"
    assert [turn["role"] for turn in fetched.transcript] == ["requester", "assistant", "requester"]
    assert fetched.articles_tried == (
        {"id": "KB-12", "title": "Reinstall the VPN client", "score": 0.81},
    )
    assert (fetched.requester_channel, fetched.requester_thread_ts) == (
        "D0ALICE",
        "1700000000.000100",
    )
    assert fetched.created_at.tzinfo is UTC
    assert fetched.updated_at == fetched.created_at
    assert fetched.resolved_at is None


def test_defaults_give_a_p3_general_console_ticket(ticket_service: TicketService) -> None:
    ticket = ticket_service.open_ticket(
        requester="alice", title="Printer on 3rd floor jams", description="It jams."
    )

    assert (ticket.priority, ticket.category, ticket.source) == ("P3", "general", "console")
    assert ticket.transcript == ()
    assert ticket.articles_tried == ()


def test_ticket_numbers_count_up_from_t_1001(ticket_service: TicketService) -> None:
    numbers = [open_vpn_ticket(ticket_service).number for _ in range(3)]

    assert numbers == ["T-1001", "T-1002", "T-1003"]


@pytest.mark.parametrize("spelling", ["T-1001", "t-1001", "1001", " #1001 ", "T1001"])
def test_a_ticket_is_found_however_the_number_is_typed(
    ticket_service: TicketService, spelling: str
) -> None:
    open_vpn_ticket(ticket_service)

    assert ticket_service.get(spelling).number == "T-1001"


def test_asking_for_a_ticket_that_does_not_exist_says_so(ticket_service: TicketService) -> None:
    with pytest.raises(TicketNotFound, match="There is no ticket T-4242"):
        ticket_service.get("t-4242")
    with pytest.raises(TicketNotFound):
        ticket_service.get("my printer")


def test_an_employee_sees_their_open_tickets_newest_first(ticket_service: TicketService) -> None:
    vpn = open_vpn_ticket(ticket_service)
    laptop = open_vpn_ticket(ticket_service, title="Laptop battery swells")
    monitor = open_vpn_ticket(ticket_service, title="Second monitor flickers")
    open_vpn_ticket(ticket_service, requester="U0BOB", title="Bob's unrelated ticket")
    ticket_service.resolve(laptop.number, "U0AGENT", "Replaced the battery.")

    open_now = ticket_service.list_for_requester("U0ALICE")
    everything = ticket_service.list_for_requester("U0ALICE", include_resolved=True)

    assert [t.number for t in open_now] == [monitor.number, vpn.number]
    assert [t.number for t in everything] == [monitor.number, laptop.number, vpn.number]
    assert ticket_service.list_for_requester("U0NOBODY") == []


def test_a_messy_title_is_tidied_and_a_long_one_cut(ticket_service: TicketService) -> None:
    tidy = open_vpn_ticket(ticket_service, title="  Outlook\n\tkeeps   crashing  ")
    long = open_vpn_ticket(ticket_service, title="word " * 100)

    assert tidy.title == "Outlook keeps crashing"
    assert len(long.title) == 200
    assert long.title.endswith("…")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"title": "  \n "}, "needs a title"),
        ({"requester": ""}, "requester must not be empty"),
        ({"priority": "urgent"}, "priority must be P1, P2, P3 or P4"),
        ({"source": "fax"}, "unknown ticket source"),
        ({"transcript": [{"role": "boss", "text": "hi"}]}, "unknown transcript role"),
        ({"articles_tried": [{"id": "KB-1"}]}, "needs an 'id', a 'title' and a numeric 'score'"),
    ],
)
def test_unusable_input_is_refused_with_a_clear_message_and_opens_nothing(
    ticket_service: TicketService, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        open_vpn_ticket(ticket_service, **overrides)

    assert ticket_service.list_for_requester("U0ALICE", include_resolved=True) == []


def test_an_agent_claims_a_new_ticket_and_work_starts(ticket_service: TicketService) -> None:
    ticket = open_vpn_ticket(ticket_service)

    claimed = ticket_service.claim(ticket.number, "U0AGENT")

    assert claimed.status is TicketStatus.IN_PROGRESS
    assert claimed.assignee == "U0AGENT"
    assert claimed.updated_at >= ticket.updated_at
    events = ticket_service.events(ticket.number)
    assert [(e.kind, e.actor, e.from_status, e.to_status) for e in events] == [
        ("opened", "U0ALICE", None, TicketStatus.NEW),
        ("claimed", "U0AGENT", TicketStatus.NEW, TicketStatus.IN_PROGRESS),
    ]


def test_a_second_agent_is_told_who_already_claimed_the_ticket(
    ticket_service: TicketService,
) -> None:
    ticket = open_vpn_ticket(ticket_service)
    ticket_service.claim(ticket.number, "U0FIRST")

    with pytest.raises(TicketAlreadyClaimed, match="T-1001 is already claimed by U0FIRST") as lost:
        ticket_service.claim(ticket.number, "U0SECOND")

    assert lost.value.assignee == "U0FIRST"
    assert ticket_service.get(ticket.number).assignee == "U0FIRST"


def test_claiming_again_as_the_same_agent_changes_nothing(ticket_service: TicketService) -> None:
    ticket = open_vpn_ticket(ticket_service)
    first = ticket_service.claim(ticket.number, "U0AGENT")

    again = ticket_service.claim(ticket.number, "U0AGENT")

    assert again == first
    assert [e.kind for e in ticket_service.events(ticket.number)] == ["opened", "claimed"]


def test_resolving_records_the_note_the_time_and_who_did_it(
    session_factory: sessionmaker[Session],
) -> None:
    now = datetime(2024, 11, 23, 9, 30, tzinfo=UTC)
    service = TicketService(session_factory, clock=lambda: now)
    ticket = open_vpn_ticket(service)
    service.claim(ticket.number, "U0AGENT")

    resolved = service.resolve(ticket.number, "U0AGENT", "  Pushed a new VPN profile.  ")

    assert resolved.status is TicketStatus.RESOLVED
    assert not resolved.is_open
    assert resolved.resolution == "Pushed a new VPN profile."
    assert resolved.resolved_at == now
    last = service.events(ticket.number)[-1]
    assert (last.kind, last.actor, last.from_status, last.to_status) == (
        "resolved",
        "U0AGENT",
        TicketStatus.IN_PROGRESS,
        TicketStatus.RESOLVED,
    )


def test_an_unclaimed_ticket_resolved_straight_away_names_the_resolver(
    ticket_service: TicketService,
) -> None:
    ticket = open_vpn_ticket(ticket_service)

    resolved = ticket_service.resolve(ticket.number, "U0AGENT", "Known outage, now fixed.")

    assert resolved.assignee == "U0AGENT"
    assert ticket_service.events(ticket.number)[-1].from_status is TicketStatus.NEW


def test_resolving_needs_a_note_for_the_requester(ticket_service: TicketService) -> None:
    ticket = open_vpn_ticket(ticket_service)

    with pytest.raises(ValueError, match="resolution note is needed"):
        ticket_service.resolve(ticket.number, "U0AGENT", "   ")

    assert ticket_service.get(ticket.number).status is TicketStatus.NEW


def test_a_resolved_ticket_can_be_neither_resolved_again_nor_claimed(
    ticket_service: TicketService,
) -> None:
    ticket = open_vpn_ticket(ticket_service)
    ticket_service.resolve(ticket.number, "U0AGENT", "Fixed.")

    with pytest.raises(InvalidTransition, match="T-1001 is resolved, so it cannot be resolved"):
        ticket_service.resolve(ticket.number, "U0OTHER", "Fixed again.")
    with pytest.raises(InvalidTransition, match="cannot be claimed"):
        ticket_service.claim(ticket.number, "U0OTHER")

    assert [e.kind for e in ticket_service.events(ticket.number)] == ["opened", "resolved"]
    assert ticket_service.get(ticket.number).resolution == "Fixed."


def test_the_triage_post_is_remembered_so_replies_can_thread_under_it(
    ticket_service: TicketService,
) -> None:
    ticket = open_vpn_ticket(ticket_service)

    posted = ticket_service.record_triage_message(ticket.number, "C0TRIAGE", "1700000001.000200")

    assert (posted.triage_channel, posted.triage_ts) == ("C0TRIAGE", "1700000001.000200")
    assert ticket_service.get(ticket.number).triage_ts == "1700000001.000200"
    last = ticket_service.events(ticket.number)[-1]
    assert (last.kind, last.actor) == ("triage_posted", "tier0")
    assert last.detail == {"channel": "C0TRIAGE", "ts": "1700000001.000200"}


def test_views_are_snapshots_unaffected_by_later_changes(ticket_service: TicketService) -> None:
    opened = open_vpn_ticket(ticket_service)
    ticket_service.claim(opened.number, "U0AGENT")

    assert opened.status is TicketStatus.NEW
    assert ticket_service.get(opened.number).status is TicketStatus.IN_PROGRESS


def test_ticket_numbers_are_read_in_any_common_spelling() -> None:
    assert canonical_ticket_number("t-0042") == "T-42"
    assert canonical_ticket_number("T 1001") == "T-1001"
    assert canonical_ticket_number("ticket") is None
    assert canonical_ticket_number("") is None
