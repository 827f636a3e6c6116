"""Which catalog item a message asks for: a wish that names the item, not a complaint."""

from __future__ import annotations

import pytest

from bot.assistant import Decision, IncomingMessage
from bot.catalog_match import catalog_item_asked_for
from bot.runtime import Tier0
from tickets.catalog import CatalogItemView


def item(key: str, name: str = "") -> CatalogItemView:
    return CatalogItemView(
        key=key,
        name=name or key,
        description="",
        fields=(),
        approvers=("manager",),
        team="Service Desk L1",
    )


CATALOG = [item("figma"), item("vpn-access"), item("new-laptop"), item("shared-mailbox")]


@pytest.mark.parametrize(
    ("text", "intent", "key"),
    [
        ("I need Figma", "software_request", "figma"),
        ("can I get VPN access for the conference?", "ask_question", "vpn-access"),
        ("i need a new laptop", "hardware_broken", "new-laptop"),
        ("request a shared mailbox for the legal team", "ask_question", "shared-mailbox"),
        ("we need two new laptops for the interns", "open_ticket", "new-laptop"),
    ],
)
def test_a_wish_that_names_an_item_asks_for_it(text: str, intent: str, key: str) -> None:
    asked = catalog_item_asked_for(text, intent, CATALOG)
    assert asked is not None and asked.key == key


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Figma keeps crashing", "ask_question"),
        ("my vpn access stopped working", "access_request"),
        ("I need help, my new laptop won't boot", "hardware_broken"),
        ("what is figma", "ask_question"),  # names it, but wishes for nothing
        ("I need Photoshop", "software_request"),  # a wish, but not for a catalog item
    ],
)
def test_complaints_questions_and_other_wishes_ask_for_no_item(text: str, intent: str) -> None:
    assert catalog_item_asked_for(text, intent, CATALOG) is None


def test_the_most_specific_item_wins() -> None:
    catalog = [item("laptop"), item("new-laptop")]
    asked = catalog_item_asked_for("I'd like a new laptop", "ask_question", catalog)
    assert asked is not None and asked.key == "new-laptop"


def test_the_assistant_offers_the_item_instead_of_opening_a_ticket(tier0: Tier0) -> None:
    reply = tier0.assistant.respond(IncomingMessage("console:erin:1", "erin", "I need Figma"))

    assert reply.decision is Decision.CATALOG
    assert reply.catalog_item is not None and reply.catalog_item.key == "figma"
    assert "manager's approval" in reply.text
    assert tier0.tickets.list_for_requester("erin") == []


def test_without_a_catalog_the_request_is_a_ticket_as_before(tier0: Tier0) -> None:
    tier0.assistant.catalog = None
    reply = tier0.assistant.respond(IncomingMessage("console:erin:2", "erin", "I need Figma"))

    assert reply.decision is not Decision.CATALOG
