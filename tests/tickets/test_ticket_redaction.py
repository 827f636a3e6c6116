"""Secrets employees paste into the chat never reach the store."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.tickets.conftest import Desk
from tickets import ConversationStore, Ticket, TicketService, redact_secrets
from tickets.notifications import NotificationKind
from tickets.redaction import rotate_notice, secrets_found

PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.mark.parametrize(
    ("pasted", "stored"),
    [
        (
            "my bot token is xoxb-123456789012-1234567890123-AbCdEfGhIjKl",
            "my bot token is [redacted]",
        ),
        ("user token xoxp-1234-5678-abcdefgh ok", "user token [redacted] ok"),
        ("key AKIAIOSFODNN7EXAMPLE in prod", "key [redacted] in prod"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789 leaked", "[redacted] leaked"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "[redacted]"),
        (f"here is my key\n{PRIVATE_KEY}\nthanks", "here is my key\n[redacted]\nthanks"),
        ("Authorization: Bearer abc123def456ghi789jkl", "Authorization: Bearer [redacted]"),
        (f"the cookie has {JWT} in it", "the cookie has [redacted] in it"),
        ("password: hunter2", "password: [redacted]"),
        ("Password:hunter2 please", "Password:[redacted] please"),
        ("my password is Tr0ub4dor&3", "my password is [redacted]"),
        ("my password is sunshine", "my password is [redacted]"),
        ("login pw=s3cret!", "login pw=[redacted]"),
        ("the passcode 482913 did not work", "the passcode [redacted] did not work"),
        ('password: "correct horse battery"', "password: [redacted]"),
        ("api_key=sk_live_51Habc", "api_key=[redacted]"),
        (
            "https://alice:hunter2@git.example.com/repo",
            "https://alice:[redacted]@git.example.com/repo",
        ),
    ],
)
def test_pasted_secrets_are_redacted(pasted: str, stored: str) -> None:
    assert redact_secrets(pasted) == stored


@pytest.mark.parametrize(
    "ordinary",
    [
        "how do I reset my password",
        "my password is expired",
        "my password is not working since Monday",
        "password reset link never arrived",
        "Which password manager do we use?",
        "I got a passcode prompt on my phone",
        "the bearer of this laptop is Bob",
        "VPN error 809 on Windows 11, ticket T-1001",
        "see https://wiki.example.com/vpn#setup",
        "",
    ],
)
def test_ordinary_help_desk_text_is_left_alone(ordinary: str) -> None:
    assert redact_secrets(ordinary) == ordinary


def test_an_unterminated_private_key_is_redacted_to_the_end() -> None:
    assert redact_secrets("key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow") == "key:\n[redacted]"


def test_redacting_twice_changes_nothing_more() -> None:
    once = redact_secrets("password: hunter2 and token xoxb-1234567890-abcdefghij")

    assert redact_secrets(once) == once


def test_a_ticket_stores_no_pasted_secret(
    ticket_service: TicketService, session_factory: sessionmaker[Session]
) -> None:
    ticket = ticket_service.open_ticket(
        requester="U0ALICE",
        title="Locked out, password: hunter2",
        description="I tried pw=hunter2 and AKIAIOSFODNN7EXAMPLE",
        transcript=[
            {"role": "requester", "text": "my password is hunter2 and it fails"},
            {"role": "assistant", "text": "Never share your password. Try the reset page."},
        ],
    )

    assert ticket.title == "Locked out, password: [redacted]"
    with session_factory.begin() as session:
        stored = session.scalars(select(Ticket)).one()
        everything = " ".join(
            [stored.title, stored.description, *(turn["text"] for turn in stored.transcript)]
        )
    assert "hunter2" not in everything
    assert "AKIA" not in everything
    assert stored.transcript[0]["text"] == "my password is [redacted] and it fails"
    assert stored.transcript[1]["text"] == "Never share your password. Try the reset page."


def test_a_resolution_note_stores_no_secret(ticket_service: TicketService) -> None:
    ticket = ticket_service.open_ticket(requester="alice", title="Locked out", description="")

    resolved = ticket_service.resolve(
        ticket.number, "U0AGENT", "Unlocked; temporary password: Welcome2024!"
    )

    assert resolved.resolution == "Unlocked; temporary password: [redacted]"


def test_a_conversation_stores_no_pasted_secret(conversations: ConversationStore) -> None:
    conversations.append_turn(
        "slack:D0ALICE:1700000000.000100",
        "U0ALICE",
        "requester",
        "token xoxb-1234567890-abcdefghij",
    )

    record = conversations.load("slack:D0ALICE:1700000000.000100")

    assert record is not None
    assert record.transcript == [{"role": "requester", "text": "token [redacted]"}]


@pytest.mark.parametrize(
    ("pasted", "named"),
    [
        ("token xoxb-123456789012-1234567890123-AbCdEfGhIjKl", "a Slack token"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "a GitHub token"),
        ("AKIAIOSFODNN7EXAMPLE", "an AWS access key"),
        (PRIVATE_KEY, "a private key"),
        ("my password is Tr0ub4dor&3", "a password"),
        ("api_key=sk_live_abcdef123456", "a password or API key"),
    ],
)
def test_the_requester_is_told_what_was_removed_and_to_rotate_it(pasted: str, named: str) -> None:
    kinds = secrets_found(f"help: {pasted}")

    assert named in kinds
    assert "rotate" in rotate_notice(kinds)
    assert named in rotate_notice(kinds)


@pytest.mark.parametrize(
    "harmless",
    ["my password is expired", "I use a password manager", "the bearer of bad news", ""],
)
def test_ordinary_help_requests_raise_no_rotate_notice(harmless: str) -> None:
    assert secrets_found(harmless) == []


def test_a_pasted_secret_is_kept_out_of_the_store_and_the_requester_warned_to_rotate(
    desk: Desk,
) -> None:
    token = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
    ticket = desk.tickets.open_ticket(
        requester="UALICE",
        title="git push fails",
        description=f"I used {token}",
        source="email",
    )
    desk.tickets.claim(ticket.number, "ann")
    desk.tickets.comment(ticket.number, f"also tried {token}", as_user="UALICE")

    stored = desk.tickets.get(ticket.number)
    comments = desk.tickets.comments(ticket.number, as_user="ann")
    assert token not in stored.description and token not in comments[0].body
    warnings = desk.sink.of_kind(NotificationKind.SECRET_REDACTED)
    assert len(warnings) == 2
    assert all("GitHub token" in w.text and "rotate" in w.text for w in warnings)
    assert all(token not in n.text for n in desk.sink.sent)
    audit = [e for e in desk.tickets.events(ticket.number) if e.kind == "secret_redacted"]
    assert [e.detail["kinds"] for e in audit] == [["a GitHub token"], ["a GitHub token"]]
