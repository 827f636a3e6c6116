"""A change made where the requester already hears of it (their Slack thread) queues no
second copy of the same news; the same change made elsewhere still tells them."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.tickets.conftest import Desk, open_incident
from tickets.models import IdempotencyKey, utc_now
from tickets.notifications import NotificationKind
from tickets.service import TicketView


def requester_news(desk: Desk) -> list[NotificationKind]:
    """What Alice was sent, in Slack or (for her emailed ticket) by mail."""
    alice = {"UALICE", "alice@example.com"}
    return [n.kind for n in desk.sink.sent if n.recipient in alice]


def test_claim_and_resolve_from_the_cli_tell_the_requester(desk: Desk) -> None:
    ticket = open_incident(desk)

    desk.tickets.claim(ticket.number, "ann")
    desk.tickets.resolve(ticket.number, "ann", "Reinstalled the VPN client.")

    told = requester_news(desk)
    assert NotificationKind.TICKET_ASSIGNED in told
    assert NotificationKind.TICKET_RESOLVED in told


def test_claim_resolve_and_a_relayed_reply_told_by_the_front_end_are_not_queued_again(
    desk: Desk,
) -> None:
    ticket = open_incident(desk)

    desk.tickets.claim(ticket.number, "ann", requester_told=True)
    desk.tickets.comment(ticket.number, "Does it drop on Wi-Fi too?", as_user="ann", relayed=True)
    desk.tickets.resolve(ticket.number, "ann", "Reinstalled the VPN client.", requester_told=True)

    told = requester_news(desk)
    assert NotificationKind.TICKET_ASSIGNED not in told
    assert NotificationKind.COMMENT_ADDED not in told
    assert NotificationKind.TICKET_RESOLVED not in told
    # The change itself happened, with its audit trail.
    assert desk.tickets.get(ticket.number).status == "resolved"


def test_a_secret_in_a_relayed_reply_still_brings_the_rotate_notice(desk: Desk) -> None:
    ticket = open_incident(desk)
    desk.tickets.claim(ticket.number, "ann", requester_told=True)

    desk.tickets.comment(
        ticket.number, "my password is Hunter2-Secret!", as_user="UALICE", relayed=True
    )

    assert NotificationKind.SECRET_REDACTED in requester_news(desk)


def test_a_front_ends_work_in_the_changes_transaction_commits_and_rolls_back_with_it(
    desk: Desk,
) -> None:
    """`then=` runs in the change's transaction: what it writes exists exactly when the
    change does, and its failure undoes the change."""
    ticket = open_incident(desk)
    seen: list[tuple[str, str | None]] = []

    def fails(session: Session, changed: TicketView) -> None:
        seen.append((changed.status.value, changed.assignee))
        raise OSError("the front end's write failed")

    with pytest.raises(OSError):
        desk.tickets.claim(ticket.number, "ann", then=fails)
    assert seen == [("in_progress", "ann")]  # it saw the change, in its transaction
    assert desk.tickets.get(ticket.number).assignee is None  # which rolled back

    def writes_a_note(session: Session, changed: TicketView) -> None:
        session.add(
            IdempotencyKey(
                key=f"front-end:{changed.number}", ticket_id=changed.id, created_at=utc_now()
            )
        )

    desk.tickets.claim(ticket.number, "ann", then=writes_a_note)
    with desk.tickets.session_factory() as session:
        assert session.get(IdempotencyKey, f"front-end:{ticket.number}") is not None
    assert desk.tickets.get(ticket.number).assignee == "ann"
