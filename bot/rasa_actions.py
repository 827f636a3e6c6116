"""tier0's abilities as Rasa custom actions, served by a rasa-sdk action server.

An existing Rasa assistant (Rasa's helpdesk-assistant, say) lists these actions in its
domain and points `endpoints.yml` at `tier0 actions serve`; its stories then search
tier0's knowledge base and open, look up and escalate tier0 tickets:

- `action_search_knowledge`: answers the user's last message from the knowledge base
  (the best article's passage and its source), says that no article fits, or that a
  person has to act, deciding exactly as tier0's assistant does (its calibrated
  answer / escalate / ticket model, Assistant.knowledge_decision); sets the slot
  `kb_article` (the article id, or null when nothing was answered).
- `action_open_ticket`: opens a ticket with the conversation as its transcript; the title
  comes from the slot `problem_description` (or `incident_title`) else the last message;
  `priority` (low / medium / high, or P1–P4) is honoured; sets `ticket_number`.
- `action_ticket_status`: the ticket named in the message (entity or slot
  `ticket_number`, or "T-1042" in the text), else the user's open tickets.
- `action_escalate_to_human`: hands the conversation to the IT team as a ticket (the same
  one each time for the same conversation) and says so; sets `ticket_number`.
- `action_article_helped` / `action_article_not_helped`: the user's answer to "did this
  help?" about the article in `kb_article`, counted once per answer (slot `kb_verdict`).

What happens in a Rasa conversation feeds the editors' figures as tier0's own chat does:
the articles shown, the verdicts, the tickets opened after an article (`tier0 kb stats`),
and the questions no article fitted (`tier0 kb gaps`).

The requester is the tracker's `sender_id`. A ticket is opened with an idempotency key
made of the conversation and the message, so Rasa retrying an action never opens it twice.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot.assistant import Assistant, describe_ticket
from bot.config import Settings
from knowledge.answerability import Outcome
from knowledge.feedback import ArticleFeedbackLog
from knowledge.index import KnowledgeIndex, SearchHit
from knowledge.records import FeedbackKind
from nlu.embedding import Embedder
from nlu.understanding import find_ticket_numbers
from tickets.models import TicketSource
from tickets.redaction import redact_secrets
from tickets.service import TicketError, TicketService, TicketView, canonical_ticket_number
from tickets.transcript import TranscriptTurn

logger = logging.getLogger(__name__)

DEFAULT_PORT = 5055
TICKET_SLOT = "ticket_number"
ARTICLE_SLOT = "kb_article"
VERDICT_SLOT = "kb_verdict"
TITLE_SLOTS = ("problem_description", "incident_title")
TICKET_ENTITIES = ("ticket_number", "ticket", "incident_number", "incident")
# Rasa's helpdesk-assistant asks for low / medium / high; tier0 ranks P1 (worst) to P4.
PRIORITIES = {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4"}
_PRIORITY_CODE = re.compile(r"p[1-4]", re.IGNORECASE)


@dataclass(frozen=True)
class DeskServices:
    """What the actions use: tier0's knowledge index and tickets, and the assistant whose
    answer-or-escalate decision the search action takes."""

    knowledge: KnowledgeIndex
    tickets: TicketService
    assistant: Assistant
    related_threshold: float
    feedback: ArticleFeedbackLog | None = None


_services: DeskServices | None = None
_services_factory: Callable[[], DeskServices] | None = None


def use_services(factory: Callable[[], DeskServices]) -> None:
    """Tell the actions how to build their services (once, on first use)."""
    global _services, _services_factory
    _services, _services_factory = None, factory


def services() -> DeskServices:
    global _services
    if _services is None:
        if _services_factory is None:
            raise RuntimeError("the action server has no services: call use_services() first")
        _services = _services_factory()
    return _services


def desk_services(settings: Settings, embedder: Embedder | None = None) -> DeskServices:
    """The knowledge index, ticket store and assistant of `settings`' home, wired exactly
    as `tier0 run` wires them: a ticket opened through an action reaches the triage
    channel through the outbox, and a fresh store gets the bundled teams and SLAs."""
    from bot.runtime import RELATED_THRESHOLD, build_tier0

    desk = build_tier0(settings, embedder)
    return DeskServices(
        knowledge=desk.knowledge,
        tickets=desk.tickets,
        assistant=desk.assistant,
        related_threshold=RELATED_THRESHOLD,
        feedback=desk.assistant.feedback,
    )


# -- reading the tracker ---------------------------------------------------------------


def _latest_text(tracker: Tracker) -> str:
    return redact_secrets(str(tracker.latest_message.get("text") or "")).strip()


def _requester(tracker: Tracker) -> str:
    return str(tracker.sender_id or "").strip() or "rasa-user"


def _transcript(tracker: Tracker) -> list[TranscriptTurn]:
    """The conversation so far, as a ticket's transcript: what the user and the bot said."""
    turns: list[TranscriptTurn] = []
    for event in tracker.events:
        kind = event.get("event")
        text = str(event.get("text") or "").strip()
        if text and kind == "user":
            turns.append({"role": "requester", "text": redact_secrets(text)})
        elif text and kind == "bot":
            turns.append({"role": "assistant", "text": text})
    latest = _latest_text(tracker)
    if latest and not any(t["role"] == "requester" and t["text"] == latest for t in turns):
        turns.append({"role": "requester", "text": latest})
    return turns


def _problem(tracker: Tracker) -> str:
    for slot in TITLE_SLOTS:
        value = tracker.get_slot(slot)
        if isinstance(value, str) and value.strip():
            return value.strip()
    latest = _latest_text(tracker)
    if latest:
        return latest
    requester_turns = [t["text"] for t in _transcript(tracker) if t["role"] == "requester"]
    return requester_turns[0] if requester_turns else ""


def _priority(tracker: Tracker) -> str:
    value = str(tracker.get_slot("priority") or "").strip()
    if _PRIORITY_CODE.fullmatch(value):
        return value.upper()
    return PRIORITIES.get(value.lower(), "P3")


def _message_key(tracker: Tracker) -> str:
    message_id = tracker.latest_message.get("message_id") or len(tracker.events)
    return f"{_requester(tracker)}:{message_id}"


def _ticket_numbers(tracker: Tracker) -> list[str]:
    numbers: list[str] = []
    for entity in TICKET_ENTITIES:
        for value in tracker.get_latest_entity_values(entity):
            number = canonical_ticket_number(str(value))
            if number:
                numbers.append(number)
    slot = tracker.get_slot(TICKET_SLOT)
    if isinstance(slot, str) and canonical_ticket_number(slot):
        numbers.append(str(canonical_ticket_number(slot)))
    numbers += find_ticket_numbers(_latest_text(tracker))
    return list(dict.fromkeys(numbers))


def _conversation_key(tracker: Tracker) -> str:
    return f"rasa:{_requester(tracker)}"


def _record_feedback(
    kind: FeedbackKind,
    article_ids: Iterable[str | None],
    tracker: Tracker,
    question: str,
    ticket_number: str | None = None,
) -> None:
    feedback = services().feedback
    if feedback is not None:
        feedback.record_quietly(
            kind,
            article_ids,
            conversation_key=_conversation_key(tracker),
            question=question,
            ticket_number=ticket_number,
        )


def _question_shown(tracker: Tracker, article_id: str) -> str:
    """The question the article was shown for in this conversation (the user's message
    now is their "yes" or "no"); "" if the store cannot say."""
    feedback = services().feedback
    if feedback is None:
        return ""
    try:
        return feedback.question_shown(_conversation_key(tracker), article_id)
    except Exception:
        logger.exception("could not read the question %s was shown for", article_id)
        return ""


def _ticket_opened_text(ticket: TicketView) -> str:
    return (
        f"I've opened ticket {ticket.number} for the IT team: “{ticket.title}”. "
        "An agent will pick it up and get back to you."
    )


# -- the actions -------------------------------------------------------------------------


class _DeskAction(Action):  # type: ignore[misc]  # rasa-sdk ships no type hints
    """A tier0 action: its work runs in a thread, off the action server's event loop."""

    action_name: ClassVar[str]

    def name(self) -> str:
        return self.action_name

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.work, dispatcher, tracker)

    def work(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict[str, Any]]:
        raise NotImplementedError


class ActionSearchKnowledge(_DeskAction):
    action_name = "action_search_knowledge"

    def work(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict[str, Any]]:
        desk = services()
        question = tracker.get_slot("search_query") or _latest_text(tracker)
        if not isinstance(question, str) or not question.strip():
            dispatcher.utter_message(text="What would you like me to look up?")
            return [SlotSet(ARTICLE_SLOT, None)]
        # Searched, ranked and decided as tier0's own assistant decides: the calibrated
        # model weighs the scores, the intents and the wording together.
        # Internal articles (audience: agents) only for a sender who is an IT agent.
        outcome, hits = desk.assistant.knowledge_decision(question, _requester(tracker))
        if outcome is Outcome.TICKET:
            dispatcher.utter_message(
                text="This needs someone from the IT team rather than an article. "
                "I can open a ticket for you."
            )
            return [SlotSet(ARTICLE_SLOT, None)]
        if outcome is not Outcome.ANSWER or not hits:
            _record_feedback(FeedbackKind.UNANSWERED, [None], tracker, question)  # a gap
            dispatcher.utter_message(
                text="I couldn't find an article that answers this. "
                "I can open a ticket so the IT team can help."
            )
            return [SlotSet(ARTICLE_SLOT, None)]
        best = hits[0]
        related = [hit for hit in hits[1:] if hit.dense_score >= desk.related_threshold]
        shown = [hit.article_id for hit in (best, *related)]
        _record_feedback(FeedbackKind.SHOWN, shown, tracker, question)
        dispatcher.utter_message(
            text=_answer_text(best, related),
            json_message={
                "tier0_articles": [
                    {"id": hit.article_id, "title": hit.title, "score": round(hit.score, 4)}
                    for hit in (best, *related)
                ]
            },
        )
        # A new answer waits for its own verdict.
        return [SlotSet(ARTICLE_SLOT, best.article_id), SlotSet(VERDICT_SLOT, None)]


class _ArticleVerdict(_DeskAction):
    """The user's "did this help?" about the article `action_search_knowledge` cited."""

    helped: ClassVar[bool]

    def work(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict[str, Any]]:
        article_id = tracker.get_slot(ARTICLE_SLOT)
        if not isinstance(article_id, str) or not article_id:
            return []  # no article was cited: nothing to judge
        if tracker.get_slot(VERDICT_SLOT):
            return []  # this answer was judged already (a second click, a retry)
        kind = FeedbackKind.HELPFUL if self.helped else FeedbackKind.NOT_HELPFUL
        _record_feedback(kind, [article_id], tracker, _question_shown(tracker, article_id))
        return [SlotSet(VERDICT_SLOT, kind.value)]


class ActionArticleHelped(_ArticleVerdict):
    action_name = "action_article_helped"
    helped = True


class ActionArticleNotHelped(_ArticleVerdict):
    action_name = "action_article_not_helped"
    helped = False


def _answer_text(best: SearchHit, related: Iterable[SearchHit]) -> str:
    lines = [best.title, "", best.passage, "", f"Source: {best.article_id}"]
    also = [f"{hit.title} ({hit.article_id})" for hit in related]
    if also:
        lines.append("Related: " + "; ".join(also))
    return "\n".join(lines)


def _open_ticket(
    tracker: Tracker, *, idempotency_key: str, category: str = "general"
) -> TicketView:
    desk = services()
    transcript = _transcript(tracker)
    problem = _problem(tracker) or "Help requested"
    description = "\n".join(t["text"] for t in transcript if t["role"] == "requester")
    email = tracker.get_slot("email")
    if isinstance(email, str) and email.strip():
        description = f"{description}\nContact: {email.strip()}".strip()
    ticket = desk.tickets.open_ticket(
        requester=_requester(tracker),
        title=problem,
        description=description or problem,
        transcript=transcript,
        category=category,
        priority=_priority(tracker),
        source=TicketSource.API,
        idempotency_key=idempotency_key,
    )
    # The article cited before the ticket did not settle the question, unless the user
    # said it helped (the ticket is then about something else); with no such article, the
    # question went straight to a person: a gap for editors. (A retry returns the same
    # ticket, and the log counts a ticket once.)
    cited = tracker.get_slot(ARTICLE_SLOT)
    settled = tracker.get_slot(VERDICT_SLOT) == FeedbackKind.HELPFUL.value
    tried: list[str | None] = [cited] if isinstance(cited, str) and cited and not settled else []
    if not tried and category == "general":
        tried = [None]
    if tried:
        _record_feedback(FeedbackKind.TICKET, tried, tracker, problem, ticket.number)
    return ticket


class ActionOpenTicket(_DeskAction):
    action_name = "action_open_ticket"

    def work(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict[str, Any]]:
        try:
            ticket = _open_ticket(tracker, idempotency_key=f"rasa:open:{_message_key(tracker)}")
        except ValueError as error:  # e.g. nothing said yet to make a title of
            dispatcher.utter_message(text=f"I couldn't open a ticket: {error}")
            return []
        dispatcher.utter_message(text=_ticket_opened_text(ticket))
        return [SlotSet(TICKET_SLOT, ticket.number)]


class ActionTicketStatus(_DeskAction):
    action_name = "action_ticket_status"

    def work(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict[str, Any]]:
        desk = services()
        requester = _requester(tracker)
        numbers = _ticket_numbers(tracker)
        if not numbers:
            mine = desk.tickets.list_for_requester(requester)
            if not mine:
                dispatcher.utter_message(text="You have no open tickets.")
            else:
                lines = ["Your open tickets:", *(describe_ticket(t) for t in mine)]
                dispatcher.utter_message(text="\n".join(lines))
            return []
        lines = []
        for number in numbers:
            try:
                ticket: TicketView | None = desk.tickets.get(number)
            except TicketError:
                ticket = None
            # A requester sees their own tickets only, as in tier0's own chat.
            if ticket is not None and ticket.requester == requester:
                lines.append(describe_ticket(ticket))
            else:
                lines.append(f"I can't find a ticket {number} of yours.")
        dispatcher.utter_message(text="\n".join(lines))
        return [SlotSet(TICKET_SLOT, numbers[0])]


def _open_ticket_of(tracker: Tracker) -> TicketView | None:
    """The still-open ticket this conversation already has (slot `ticket_number`)."""
    number = tracker.get_slot(TICKET_SLOT)
    if not isinstance(number, str) or not number.strip():
        return None
    try:
        ticket = services().tickets.get(number)
    except TicketError:
        return None
    return ticket if ticket.is_open and ticket.requester == _requester(tracker) else None


class ActionEscalateToHuman(_DeskAction):
    action_name = "action_escalate_to_human"

    def work(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict[str, Any]]:
        # The conversation's ticket, while it is open, is the hand-over: asking twice
        # does not give the IT team two tickets to work.
        ticket = _open_ticket_of(tracker)
        if ticket is None:
            try:
                ticket = _open_ticket(
                    tracker, idempotency_key=f"rasa:escalate:{_message_key(tracker)}"
                )
            except ValueError as error:
                dispatcher.utter_message(text=f"I couldn't hand this over: {error}")
                return []
        dispatcher.utter_message(
            text=f"I've handed this to the IT team as ticket {ticket.number}. "
            "A person will pick it up and get back to you."
        )
        return [SlotSet(TICKET_SLOT, ticket.number)]


ACTIONS: tuple[type[_DeskAction], ...] = (
    ActionSearchKnowledge,
    ActionOpenTicket,
    ActionTicketStatus,
    ActionEscalateToHuman,
    ActionArticleHelped,
    ActionArticleNotHelped,
)
