"""Block Kit messages tier0 posts, built with slack_sdk.models.blocks."""

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
    MarkdownTextObject,
    Option,
    OptionGroup,
    SectionBlock,
    StaticSelectElement,
    UserSelectElement,
)

from bot.assistant import Reply
from bot.slack.markup import (
    MAX_SECTION_CHARS,
    article_mrkdwn,
    clip,
    escape_mrkdwn,
    quote,
    titled_link,
    user_mention,
)
from bot.slack.sla_due import NO_SLA, SlaDue, slack_time
from tickets.models import Tier
from tickets.routing import PRIORITY_MATRIX
from tickets.service import TicketView
from tickets.transcript import TranscriptTurn

SOLVED_ACTION = "feedback_solved"
NEED_HELP_ACTION = "feedback_need_help"
OPEN_TICKET_ACTION = "open_ticket"
TALK_TO_PERSON_ACTION = "talk_to_person"
CLAIM_ACTION = "claim_ticket"
RESOLVE_ACTION = "resolve_ticket"
INTERNAL_NOTE_ACTION = "internal_note"
ASSIGN_ACTION = "assign_ticket"
PRIORITY_ACTION = "set_priority"
ESCALATE_ACTION = "escalate_ticket"
# The triage post's selects carry the ticket number in their block id, "triage_controls:T-1001"
# (a users select has no value of its own).
TRIAGE_CONTROLS_BLOCK = "triage_controls"
# Priority… offers impact × urgency, grouped by the priority the desk's matrix gives.
PRIORITY_WORDS = {"P1": "critical", "P2": "high", "P3": "medium", "P4": "low"}
# One action id per score (csat_1 … csat_5): Slack wants them unique within a block.
CSAT_ACTION = "csat"
# Under the thank-you for a rating: the optional comment, in a form.
CSAT_COMMENT_ACTION = "csat_comment"
TRANSCRIPT_EXCERPT_TURNS = 8
EXCERPT_LINE_CHARS = 300


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text)))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, 1900))])


def as_payload(blocks: Sequence[Block]) -> list[dict[str, Any]]:
    return [block.to_dict() for block in blocks]


def reply_blocks(
    reply: Reply, conversation_key: str, links: Mapping[str, str] | None = None
) -> list[Block]:
    """The assistant's reply in the requester's thread; `links` (article id → URL) makes
    the titles of the articles that have one links to read them whole."""
    links = links or {}
    blocks: list[Block] = [_section(escape_mrkdwn(notice)) for notice in reply.notices]
    answer = reply.answer
    if answer is None:
        blocks.append(_section(escape_mrkdwn(reply.text)))
        if reply.offers_ticket:
            blocks.append(
                ActionsBlock(
                    block_id="escalation",
                    elements=[
                        ButtonElement(
                            text="🎫 Open a ticket",
                            action_id=OPEN_TICKET_ACTION,
                            value=conversation_key,
                            style="primary",
                        ),
                        ButtonElement(
                            text="👤 Talk to a person",
                            action_id=TALK_TO_PERSON_ACTION,
                            value=conversation_key,
                        ),
                    ],
                )
            )
        return blocks
    heading = f" › {escape_mrkdwn(answer.heading)}" if answer.heading else ""
    blocks.append(
        _section(f"*{escape_mrkdwn(answer.title)}*{heading}\n{article_mrkdwn(answer.passage)}")
    )
    blocks.append(
        _context(
            f"📄 Source: `{escape_mrkdwn(answer.article_id)}` — "
            + titled_link(answer.title, links.get(answer.article_id))
        )
    )
    related = reply.articles[1:]
    if related:
        names = " · ".join(
            f"{titled_link(hit.title, links.get(hit.article_id))} "
            f"(`{escape_mrkdwn(hit.article_id)}`)"
            for hit in related
        )
        blocks.append(_context(f"Related: {names}"))
    blocks.append(
        ActionsBlock(
            block_id="feedback",
            elements=[
                ButtonElement(
                    text="✅ That solved it",
                    action_id=SOLVED_ACTION,
                    value=conversation_key,
                    style="primary",
                ),
                ButtonElement(
                    text="🙋 I still need help", action_id=NEED_HELP_ACTION, value=conversation_key
                ),
                ButtonElement(
                    text="👤 Talk to a person",
                    action_id=TALK_TO_PERSON_ACTION,
                    value=conversation_key,
                ),
            ],
        )
    )
    return blocks


def failure_blocks(apology: str, conversation_key: str) -> list[Block]:
    """Something broke: say so, and keep the way to a person open."""
    return [
        _section(escape_mrkdwn(apology)),
        ActionsBlock(
            block_id="escalation",
            elements=[
                ButtonElement(
                    text="🎫 Open a ticket", action_id=OPEN_TICKET_ACTION, value=conversation_key
                )
            ],
        ),
    ]


def feedback_given_blocks(original: Sequence[dict[str, Any]], outcome: str) -> list[dict[str, Any]]:
    """The answer message with its buttons replaced by what the requester chose."""
    kept = [block for block in original if block.get("type") != "actions"]
    return [*kept, _context(escape_mrkdwn(outcome)).to_dict()]


def ticket_opened_text(ticket: TicketView, due: SlaDue = NO_SLA) -> str:
    target = (
        f" It is {ticket.priority}: we aim to resolve it by {slack_time(due.resolution)}."
        if due.resolution is not None
        else ""
    )
    return (
        f"🎫 I've opened ticket *{ticket.number}* for the IT team: "
        f"“{escape_mrkdwn(ticket.title)}”.{target} "
        "An agent will pick it up and reply in this thread."
    )


def triage_blocks(ticket: TicketView, due: SlaDue = NO_SLA) -> list[Block]:
    """The ticket's message in the agents' triage channel."""
    blocks: list[Block] = [
        # Slack decodes &lt; &gt; &amp; in plain_text too, so user text is escaped here as well.
        HeaderBlock(
            text=clip(f"{ticket.number} · {ticket.priority} · {escape_mrkdwn(ticket.title)}", 150)
        ),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Requester*\n{user_mention(ticket.requester)}"),
                MarkdownTextObject(text=f"*Status*\n{ticket.status.replace('_', ' ')}"),
                MarkdownTextObject(text=f"*Category*\n{escape_mrkdwn(ticket.category)}"),
                MarkdownTextObject(text=f"*Assignee*\n{user_mention(ticket.assignee)}"),
                MarkdownTextObject(text=f"*Team*\n{_team_words(ticket)}"),
                MarkdownTextObject(text=f"*SLA due*\n{_sla_words(ticket, due)}"),
                MarkdownTextObject(text=f"*Priority*\n{impact_urgency_words(ticket)}"),
            ]
        ),
        _section(f"*Summary*\n{quote(ticket.title, 600)}"),
    ]
    if ticket.articles_tried:
        tried = "\n".join(
            f"• {escape_mrkdwn(str(item['title']))} (`{escape_mrkdwn(str(item['id']))}`)"
            for item in ticket.articles_tried
        )
        blocks.append(_section(f"*Articles already tried*\n{tried}"))
    else:
        blocks.append(_section("*Articles already tried*\nnone — no article fitted"))
    if ticket.transcript:
        blocks.append(_section(conversation_excerpt(ticket.transcript)))
    blocks.append(DividerBlock())
    if ticket.assignee is not None:
        blocks.append(_context(f"Claimed by {user_mention(ticket.assignee)}"))
    if ticket.is_open:
        buttons = [
            ButtonElement(text="✅ Resolve…", action_id=RESOLVE_ACTION, value=ticket.number),
            ButtonElement(
                text="🔒 Internal note…", action_id=INTERNAL_NOTE_ACTION, value=ticket.number
            ),
        ]
        if ticket.assignee is None:
            buttons.insert(
                0,
                ButtonElement(
                    text="🙋 Claim", action_id=CLAIM_ACTION, value=ticket.number, style="primary"
                ),
            )
        if ticket.tier is Tier.L1:
            buttons.append(
                ButtonElement(
                    text="⬆️ Escalate to L2", action_id=ESCALATE_ACTION, value=ticket.number
                )
            )
        blocks.append(ActionsBlock(block_id="triage", elements=buttons))
        blocks.append(triage_controls(ticket))
    elif ticket.resolution:
        blocks.append(_section(f"*Resolution*\n{quote(ticket.resolution, 1500)}"))
    return blocks


def conversation_excerpt(
    transcript: Sequence[TranscriptTurn],
    *,
    turns: int = TRANSCRIPT_EXCERPT_TURNS,
    limit: int = MAX_SECTION_CHARS,
) -> str:
    """The end of the conversation for the triage card: the newest turns that fit one
    section (at most `turns`, each cut to a line), with a note saying how many earlier
    messages are left out, so agents know to read the ticket for the rest."""
    heading = "*Conversation*"
    # Room for the heading and the note, so neither pushes the newest turn out.
    budget = limit - len(heading) - 60
    lines: list[str] = []
    for turn in reversed(transcript[-turns:]):
        line = _excerpt_line(turn)
        if len(line) + 1 > budget:
            break
        lines.append(line)
        budget -= len(line) + 1
    lines.reverse()
    left_out = len(transcript) - len(lines)
    if left_out:
        noun = "message" if left_out == 1 else "messages"
        lines.insert(0, f"_… {left_out} earlier {noun} not shown_")
    return "\n".join([heading, *lines])


def _excerpt_line(turn: TranscriptTurn, width: int = EXCERPT_LINE_CHARS) -> str:
    who = "Requester" if turn["role"] == "requester" else "tier0"
    text = " ".join(turn["text"].split())
    shown = escape_mrkdwn(clip(text, width))
    while len(shown) > 2 * width and width > 20:
        # Escaping (&amp; …) can multiply the length: cut the text, never an entity.
        width //= 2
        shown = escape_mrkdwn(clip(text, width))
    return f"*{who}:* {shown}"


def resolved_blocks(ticket: TicketView, agent: str) -> list[Block]:
    """What the requester reads when their ticket is resolved, and the CSAT question."""
    return [
        _section(
            f"✅ {user_mention(agent)} resolved *{ticket.number}*:\n"
            f"{quote(ticket.resolution or '', 2000)}"
        ),
        _section("How did we do? 1 is very unhappy, 5 very happy."),
        ActionsBlock(
            block_id="csat",
            elements=[
                ButtonElement(
                    text=str(score),
                    action_id=f"{CSAT_ACTION}_{score}",
                    value=f"{ticket.number}:{score}",
                )
                for score in range(1, 6)
            ],
        ),
    ]


def triage_text(ticket: TicketView) -> str:
    """The notification text shown where blocks cannot be (push notifications, search)."""
    return f"New ticket {ticket.number}: {escape_mrkdwn(ticket.title)}"


def priority_option_groups(number: str) -> list[OptionGroup]:
    """Every impact × urgency pair, under the priority the desk's matrix gives it."""
    groups: dict[str, list[Option]] = {}
    for (impact, urgency), priority in PRIORITY_MATRIX.items():
        groups.setdefault(priority, []).append(
            Option(
                value=f"{number}:{impact.value}:{urgency.value}",
                text=f"{impact.value.capitalize()} impact · {urgency.value} urgency",
            )
        )
    return [
        OptionGroup(label=f"{priority} · {PRIORITY_WORDS[priority]}", options=groups[priority])
        for priority in sorted(groups)
    ]


def impact_urgency_words(ticket: TicketView) -> str:
    """How the ticket's priority came about, for the card."""
    if ticket.impact and ticket.urgency:
        return f"{ticket.priority}: {ticket.impact} impact × {ticket.urgency} urgency"
    return f"{ticket.priority}: impact and urgency not assessed yet"


def triage_controls(ticket: TicketView) -> ActionsBlock:
    """The triage post's second row: give the ticket to an agent, change its priority."""
    groups = priority_option_groups(ticket.number)
    chosen = f"{ticket.number}:{ticket.impact}:{ticket.urgency}"
    current = next((o for g in groups for o in g.options or [] if o.value == chosen), None)
    return ActionsBlock(
        block_id=f"{TRIAGE_CONTROLS_BLOCK}:{ticket.number}",
        elements=[
            UserSelectElement(
                action_id=ASSIGN_ACTION,
                placeholder="👤 Assign…",
                initial_user=ticket.assignee
                if ticket.assignee and user_mention(ticket.assignee).startswith("<@")
                else None,
            ),
            StaticSelectElement(
                action_id=PRIORITY_ACTION,
                placeholder=f"Priority {ticket.priority}: impact × urgency…",
                option_groups=groups,
                initial_option=current,
            ),
        ],
    )


def ticket_of_controls(block_id: str) -> str:
    """The ticket number a triage control's block id carries ("" if it carries none)."""
    prefix, _, number = block_id.partition(":")
    return number if prefix == TRIAGE_CONTROLS_BLOCK else ""


def _team_words(ticket: TicketView) -> str:
    if ticket.team is None:
        return f"not routed yet ({ticket.tier.value})"
    return f"{escape_mrkdwn(ticket.team)} ({ticket.tier.value})"


def _sla_words(ticket: TicketView, due: SlaDue) -> str:
    if not ticket.is_open:
        return "stopped"
    lines = []
    if due.first_response is not None:
        lines.append(f"respond by {slack_time(due.first_response)}")
    if due.resolution is not None:
        lines.append(f"resolve by {slack_time(due.resolution)}")
    elif due.paused:
        lines.append("paused: waiting on the requester")
    return "\n".join(lines) or "no target"


def handed_over_blocks(card: Sequence[Block], outcome: str) -> list[Block]:
    """A triage post whose ticket moved to another team: the card, no buttons, where it went."""
    kept = [block for block in card if not isinstance(block, ActionsBlock)]
    return [*kept, _context(outcome)]


def rated_blocks(
    original: Sequence[dict[str, Any]], outcome: str, number: str
) -> list[dict[str, Any]]:
    """The resolution message once rated: the thank-you, and a button for the optional
    comment."""
    comment = ActionsBlock(
        block_id="csat_comment",
        elements=[
            ButtonElement(text="💬 Add a comment…", action_id=CSAT_COMMENT_ACTION, value=number)
        ],
    )
    return [*feedback_given_blocks(original, outcome), comment.to_dict()]
