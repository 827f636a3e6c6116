"""Modals and the App Home tab, built with slack_sdk.models so Slack's limits are checked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.slack.markup import clip, escape_mrkdwn, user_mention
from bot.slack.sla_due import NO_SLA, SlaDue, due_of, due_words
from tickets.service import TicketView

NEW_REQUEST_VIEW = "new_request"
NEW_REQUEST_ACTION = "home_new_request"
BROWSE_CATALOG_ACTION = "browse_catalog"
RESOLVE_VIEW = "resolve_ticket"
INTERNAL_NOTE_VIEW = "internal_note"
RESOLUTION_MAX_CHARS = 3000

# Categories an employee can pick; the agents' teams are routed by them.
CATEGORIES = {
    "general": "Something else",
    "access": "Access and accounts",
    "hardware": "Laptop, phone or other hardware",
    "software": "Software and licences",
    "network": "Network, Wi-Fi and VPN",
    "email": "Email and calendar",
}
# The request form asks the two questions of the desk's priority matrix
# (tickets.routing.PRIORITY_MATRIX): how widely it hurts, and how soon it must be fixed.
IMPACTS = {
    "low": "Just me",
    "medium": "A few people, or my team",
    "high": "Many people: a department, a site, everyone",
}
URGENCIES = {
    "low": "It can wait a few days",
    "medium": "It slows me down",
    "high": "I cannot work, or a deadline is today",
}
TITLE_MAX_CHARS = 150
DESCRIPTION_MAX_CHARS = 3000
ASSET_MAX_CHARS = 100
HOME_TICKETS_SHOWN = 10


def _options(choices: dict[str, str]) -> list[Option]:
    return [Option(value=value, text=label) for value, label in choices.items()]


def new_request_modal(
    *, title: str = "", description: str = "", private_metadata: str = ""
) -> View:
    """The "new request" form: title, description, category, impact and urgency (the
    priority follows from them by the desk's matrix), affected asset."""
    return View(
        type="modal",
        callback_id=NEW_REQUEST_VIEW,
        title=PlainTextObject(text="New IT request"),
        submit=PlainTextObject(text="Open ticket"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private_metadata,
        blocks=[
            InputBlock(
                block_id="title",
                label="What do you need help with?",
                element=PlainTextInputElement(
                    action_id="value",
                    initial_value=clip(title, TITLE_MAX_CHARS) or None,
                    max_length=TITLE_MAX_CHARS,
                    placeholder="e.g. My laptop will not charge",
                ),
            ),
            InputBlock(
                block_id="description",
                label="Details",
                element=PlainTextInputElement(
                    action_id="value",
                    multiline=True,
                    initial_value=clip(description, DESCRIPTION_MAX_CHARS) or None,
                    max_length=DESCRIPTION_MAX_CHARS,
                    placeholder="What happened, since when, what you already tried",
                ),
            ),
            InputBlock(
                block_id="category",
                label="Category",
                element=StaticSelectElement(
                    action_id="value",
                    options=_options(CATEGORIES),
                    initial_option=Option(value="general", text=CATEGORIES["general"]),
                ),
            ),
            InputBlock(
                block_id="impact",
                label="Who is affected?",
                element=StaticSelectElement(
                    action_id="value",
                    options=_options(IMPACTS),
                    initial_option=Option(value="low", text=IMPACTS["low"]),
                ),
            ),
            InputBlock(
                block_id="urgency",
                label="How urgent is it?",
                element=StaticSelectElement(
                    action_id="value",
                    options=_options(URGENCIES),
                    initial_option=Option(value="medium", text=URGENCIES["medium"]),
                ),
            ),
            InputBlock(
                block_id="asset",
                label="Affected device or system",
                optional=True,
                element=PlainTextInputElement(
                    action_id="value",
                    max_length=ASSET_MAX_CHARS,
                    placeholder="e.g. laptop NW-0423, or Salesforce",
                ),
            ),
        ],
    )


def resolve_modal(number: str, private_metadata: str) -> View:
    """The agent's resolution note; the requester reads it with the CSAT question."""
    return View(
        type="modal",
        callback_id=RESOLVE_VIEW,
        title=PlainTextObject(text=f"Resolve {number}"),
        submit=PlainTextObject(text="Resolve"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private_metadata,
        blocks=[
            InputBlock(
                block_id="resolution",
                label="What fixed it? (the requester sees this)",
                element=PlainTextInputElement(
                    action_id="value", multiline=True, max_length=RESOLUTION_MAX_CHARS
                ),
            )
        ],
    )


CSAT_COMMENT_VIEW = "csat_comment"


def csat_comment_modal(number: str, private_metadata: str) -> View:
    """The requester's optional words on the rating they just gave."""
    return View(
        type="modal",
        callback_id=CSAT_COMMENT_VIEW,
        title=PlainTextObject(text=clip(f"Rating of {number}", 24)),
        submit=PlainTextObject(text="Send"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private_metadata,
        blocks=[
            InputBlock(
                block_id="comment",
                label="What went well, or what could we do better?",
                element=PlainTextInputElement(
                    action_id="value", multiline=True, max_length=RESOLUTION_MAX_CHARS
                ),
            )
        ],
    )


def internal_note_modal(number: str, private_metadata: str) -> View:
    """A note for the agents only; the requester never sees it."""
    return View(
        type="modal",
        callback_id=INTERNAL_NOTE_VIEW,
        title=PlainTextObject(text=f"Note on {number}"),
        submit=PlainTextObject(text="Add note"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private_metadata,
        blocks=[
            InputBlock(
                block_id="note",
                label="Internal note (agents only)",
                element=PlainTextInputElement(
                    action_id="value", multiline=True, max_length=RESOLUTION_MAX_CHARS
                ),
            )
        ],
    )


def submitted_values(view: dict[str, Any]) -> dict[str, str]:
    """A submitted modal's values by block id (text inputs and selects alike)."""
    values: dict[str, str] = {}
    for block_id, actions in (view.get("state") or {}).get("values", {}).items():
        for action in actions.values():
            if action.get("type") == "static_select":
                selected = action.get("selected_option") or {}
                values[block_id] = str(selected.get("value") or "")
            elif action.get("type") == "users_select":
                values[block_id] = str(action.get("selected_user") or "")
            else:
                values[block_id] = str(action.get("value") or "")
    return values


def ticket_line(ticket: TicketView, due: SlaDue = NO_SLA) -> str:
    """One ticket in a list: number, status, assignee, SLA due, title."""
    owner = user_mention(ticket.assignee) if ticket.assignee else "waiting for an agent"
    return (
        f"*{ticket.number}* · {ticket.status.replace('_', ' ')} · {owner} · {due_words(due)}\n"
        f"{escape_mrkdwn(clip(ticket.title, 200))}"
    )


def ticket_list_blocks(
    tickets: Sequence[TicketView], heading: str, dues: Mapping[str, SlaDue] | None = None
) -> list[Block]:
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=heading))]
    shown = tickets[:HOME_TICKETS_SHOWN]
    blocks += [
        SectionBlock(text=MarkdownTextObject(text=ticket_line(t, due_of(dues or {}, t))))
        for t in shown
    ]
    if len(tickets) > len(shown):
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=f"…and {len(tickets) - len(shown)} more")]
            )
        )
    return blocks


def home_view(
    user: str,
    tickets: Sequence[TicketView],
    popular: Sequence[tuple[str, str]],
    dues: Mapping[str, SlaDue] | None = None,
) -> View:
    """App Home: what I have open, what others read most, and the ways to ask."""
    blocks: list[Block] = [
        HeaderBlock(text="IT help desk"),
        SectionBlock(
            text=MarkdownTextObject(
                text=f"Hi {user_mention(user)}! Ask me anything in the *Messages* tab, "
                "or open a request here."
            )
        ),
        ActionsBlock(
            block_id="home",
            elements=[
                ButtonElement(text="📝 New request", action_id=NEW_REQUEST_ACTION, style="primary"),
                ButtonElement(text="🛒 Browse catalog", action_id=BROWSE_CATALOG_ACTION),
            ],
        ),
        DividerBlock(),
    ]
    if tickets:
        blocks += ticket_list_blocks(tickets, "*Your open tickets*", dues)
    else:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text="*Your open tickets*\nNone — all good."))
        )
    blocks.append(DividerBlock())
    if popular:
        lines = "\n".join(
            f"• {escape_mrkdwn(title)} (`{escape_mrkdwn(article_id)}`)"
            for article_id, title in popular
        )
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"*Popular articles*\n{lines}")))
    return View(type="home", blocks=blocks)


# -- agents: escalation, the queue, today's figures ----------------------------------------

ESCALATE_VIEW = "escalate_ticket"
ESCALATION_REASON_MAX_CHARS = 2000
QUEUE_SHOWN = 20


def escalate_modal(number: str, to_team: str, private_metadata: str) -> View:
    """Why the ticket goes to the next tier: the service keeps it as an internal note."""
    return View(
        type="modal",
        callback_id=ESCALATE_VIEW,
        title=PlainTextObject(text=clip(f"Escalate {number}", 24)),
        submit=PlainTextObject(text="Escalate"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private_metadata,
        blocks=[
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"*{number}* goes to *{escape_mrkdwn(to_team)}*; its owner is cleared."
                )
            ),
            InputBlock(
                block_id="reason",
                label="Why does it need the next tier? (agents only)",
                element=PlainTextInputElement(
                    action_id="value", multiline=True, max_length=ESCALATION_REASON_MAX_CHARS
                ),
            ),
        ],
    )


def queue_blocks(
    tickets: Sequence[TicketView], heading: str, dues: Mapping[str, SlaDue]
) -> list[Block]:
    """A team's open tickets, most urgent first: priority, status, assignee, SLA due."""
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=heading))]
    shown = tickets[:QUEUE_SHOWN]
    for ticket in shown:
        owner = user_mention(ticket.assignee) if ticket.assignee else "unassigned"
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"*{ticket.number}* · {ticket.priority} · "
                    f"{ticket.status.replace('_', ' ')} · {owner} · "
                    f"{due_words(due_of(dues, ticket))}\n"
                    f"{escape_mrkdwn(clip(ticket.title, 200))}"
                )
            )
        )
    if len(tickets) > len(shown):
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"…and {len(tickets) - len(shown)} more; "
                        "`tier0 ticket queue` lists them all."
                    )
                ]
            )
        )
    return blocks


def stats_blocks(
    *,
    day: str,
    opened: int,
    resolved: int,
    backlog: int,
    sla_breaches: int,
    questions: int,
    deflected: int,
) -> list[Block]:
    """Today's figures for the desk, as `tier0 report` counts them."""
    deflection = (
        f"{deflected / questions:.0%} ({deflected} of {questions} questions)"
        if questions
        else "no questions yet"
    )
    figures = {
        "Opened": str(opened),
        "Resolved": str(resolved),
        "Backlog (open now)": str(backlog),
        "SLA breaches": str(sla_breaches),
        "Deflection": deflection,
    }
    return [
        HeaderBlock(text=f"IT desk today · {day}"),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*{name}*\n{value}") for name, value in figures.items()
            ]
        ),
    ]
