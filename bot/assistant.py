"""The assistant: a message and the conversation so far in; a reply and its side effects out.

It knows nothing about Slack or the console; both front ends drive it the same way.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from bot.catalog_match import catalog_item_asked_for, reads_as_a_wish
from knowledge.answerability import AnswerCalibration, Outcome, decision_features
from knowledge.feedback import ArticleFeedbackLog
from knowledge.index import KnowledgeIndex, RetrievalMode, SearchHit
from knowledge.lexical import expand_query
from knowledge.ranking import RERANK_DEPTH, TitleMeanings, rerank
from knowledge.records import FeedbackKind
from nlu.classifier import FALLBACK_INTENT, OUT_OF_SCOPE_INTENTS
from nlu.understanding import Interpreter, Understanding
from tickets.catalog import CatalogItemView
from tickets.conversations import ConversationRecord, ConversationStore
from tickets.metrics import record_feedback, record_question
from tickets.redaction import redact_secrets
from tickets.service import TicketError, TicketService, TicketView
from tickets.transcript import TranscriptTurn

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 4000
# A message longer than this is still kept whole in the transcript; only what is
# classified and searched is cut, since the embedder reads ~256 tokens anyway.

YES_NO_THRESHOLD = 0.5
SMALLTALK_INTENTS = {"greet", "goodbye", "thanks", "affirm", "deny"}
TICKET_INTENTS = {
    "open_ticket": "general",
    "talk_to_human": "general",
    "hardware_broken": "hardware",
    "access_request": "access",
    "software_request": "software",
}
# Not sure what the message asks (low confidence, two intents too close to call, or out of
# scope): the knowledge base is searched, and a ticket offered if nothing fits, rather
# than acting on a guess.
SEARCH_INTENTS = {"ask_question", FALLBACK_INTENT, *OUT_OF_SCOPE_INTENTS}
# A status request names a ticket, or is read as one with at least this confidence;
# below it the message is searched like any question.
UNSURE_STATUS_CONFIDENCE = 0.5
# Small talk is short: a longer message read as small talk, and not surely, is a question
# sharing a phrase with it ("can i postpone the forced reboot, i have a demo" was a
# goodbye at 0.14, from "have a nice day"), and is searched. The bundled small-talk
# examples run to 5 words but one; such misreads came at 0.1-0.2 confidence, longer real
# small talk ("thank you so much, that fixed my vpn problem") at 0.47 and up.
SMALLTALK_MAX_WORDS = 6
SURE_SMALLTALK_CONFIDENCE = 0.4
# Requests that self-service can often settle (the access portal, the software centre):
# a strong article match is offered first, and the ticket is one "no" away.
SELF_SERVICE_REQUESTS = {"access_request", "software_request"}

SMALLTALK_REPLIES = {
    "greet": "Hi! I'm the IT help desk assistant. Ask me an IT question, for example "
    "“how do I reset my password?”, or ask me to open a ticket.",
    "goodbye": "Bye! Come back any time you need IT help.",
    "thanks": "You're welcome! Anything else I can help with?",
    "affirm": "Great. What can I help you with?",
    "deny": "OK. Ask me an IT question whenever you need to.",
}


class Decision(StrEnum):
    ANSWER = "answer"
    ESCALATE = "escalate"
    TICKET = "ticket"
    SMALLTALK = "smalltalk"
    STATUS = "status"
    CATALOG = "catalog"  # the message asks for a service-catalog item: offer its form


class Awaiting(StrEnum):
    NOTHING = ""
    FEEDBACK = "feedback"  # an answer was given: did it help?
    TICKET_CONFIRMATION = "ticket_confirmation"  # a ticket was offered: open it?
    DESCRIPTION = "description"  # asked to open a ticket without saying what is wrong


@dataclass(frozen=True)
class IncomingMessage:
    conversation_key: str
    requester: str
    text: str
    source: str = "console"
    requester_channel: str | None = None
    requester_thread_ts: str | None = None


@dataclass(frozen=True)
class Reply:
    text: str
    decision: Decision
    intent: str = ""
    confidence: float = 0.0
    articles: tuple[SearchHit, ...] = ()
    ticket: TicketView | None = None
    tickets: tuple[TicketView, ...] = ()
    asks_feedback: bool = False
    offers_ticket: bool = False
    notices: tuple[str, ...] = ()
    catalog_item: CatalogItemView | None = None

    @property
    def answer(self) -> SearchHit | None:
        return self.articles[0] if self.decision is Decision.ANSWER and self.articles else None


@dataclass
class ConversationState:
    """What the assistant remembers between turns of one conversation."""

    awaiting: Awaiting = Awaiting.NOTHING
    question: str = ""
    articles_tried: list[dict[str, Any]] = field(default_factory=list)
    ticket_number: str | None = None
    category: str = "general"
    # The article the last answer cited, until the requester says whether it helped.
    answered: list[str] = field(default_factory=list)
    # The desk metrics' record of the last IT question (tickets.metrics.record_question),
    # which the "did this help?" verdict completes.
    question_id: int | None = None

    @classmethod
    def from_record(cls, record: ConversationRecord | None) -> ConversationState:
        state = record.state if record is not None else {}
        return cls(
            awaiting=Awaiting(state.get("awaiting", "")),
            question=str(state.get("question", "")),
            articles_tried=list(state.get("articles_tried", [])),
            ticket_number=state.get("ticket_number"),
            category=str(state.get("category", "general")),
            answered=[str(article_id) for article_id in state.get("answered", [])],
            question_id=state.get("question_id"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "awaiting": self.awaiting.value,
            "question": self.question,
            "articles_tried": self.articles_tried,
            "ticket_number": self.ticket_number,
            "category": self.category,
            "answered": self.answered,
            "question_id": self.question_id,
        }

    def remember_articles(self, hits: tuple[SearchHit, ...]) -> None:
        known = {item["id"] for item in self.articles_tried}
        for hit in hits:
            if hit.article_id not in known:
                self.articles_tried.append(
                    {"id": hit.article_id, "title": hit.title, "score": hit.score}
                )


class Assistant:
    def __init__(
        self,
        interpreter: Interpreter,
        knowledge: KnowledgeIndex,
        tickets: TicketService,
        conversations: ConversationStore,
        *,
        answer_threshold: float,
        related_threshold: float,
        self_service_threshold: float | None = None,
        dry_run: bool = False,
        feedback: ArticleFeedbackLog | None = None,
        calibration: AnswerCalibration | None = None,
        catalog: Callable[[], Sequence[CatalogItemView]] | None = None,
        title_meanings: TitleMeanings | None = None,
        agents: frozenset[str] = frozenset(),
    ) -> None:
        self.interpreter = interpreter
        self.knowledge = knowledge
        self.tickets = tickets
        self.conversations = conversations
        self.answer_threshold = answer_threshold
        self.related_threshold = related_threshold
        self.self_service_threshold = (
            answer_threshold if self_service_threshold is None else self_service_threshold
        )
        # A dry run decides exactly as a live one but writes nothing: for evaluations.
        self.dry_run = dry_run
        # Per-article counts for editors (kb stats) and the questions behind kb gaps.
        self.feedback = feedback
        # With a calibration (tuned on the dev questions, kept with the index) the
        # answer-or-escalate decision weighs the search scores and the intents together;
        # without one, the best article's score is compared with the thresholds.
        self.calibration = calibration
        # The stored model it came from: when a sync elsewhere brings a new index with
        # another model, the decision follows it (see _current_calibration).
        self._calibration_source = knowledge.calibration
        # The service catalog's items: "I need Figma" is offered the Figma item's form
        # rather than a ticket an agent would have to turn into a request by hand.
        self.catalog = catalog
        # The articles' titles, embedded once, for the re-rank of the best few hits.
        self.title_meanings = title_meanings
        # The IT agents (TIER0_AGENTS): only they get internal articles (audience: agents).
        self.agents = agents

    # -- the conversation ---------------------------------------------------------------

    def respond(self, message: IncomingMessage) -> Reply:
        # A pasted password or token goes no further than this line: not into the
        # model, the store, a ticket or the triage channel.
        text = redact_secrets(message.text).strip()
        if not text:
            return Reply(
                text="I didn't get any text. Type your IT question, for example "
                "“my VPN keeps disconnecting”.",
                decision=Decision.SMALLTALK,
            )
        notices: tuple[str, ...] = ()
        if len(text) > MAX_MESSAGE_CHARS:
            notices = (
                f"Your message is {len(text):,} characters; I read the first "
                f"{MAX_MESSAGE_CHARS:,} to find an answer. The whole message is kept "
                "and goes into any ticket.",
            )
        state, transcript = self._conversation(message.conversation_key)
        transcript.append({"role": "requester", "text": text})

        understanding = self.interpreter.understand(text[:MAX_MESSAGE_CHARS])
        awaiting_before = state.awaiting
        reply = replace(
            self._decide(message, text, understanding, state, transcript),
            intent=understanding.intent.name,
            confidence=understanding.intent.confidence,
            notices=notices,
        )
        self._record_question(message, state, reply, asked_anew=awaiting_before)
        transcript.append({"role": "assistant", "text": reply.text})
        self._save(message, state, transcript)
        return reply

    def _decide(
        self,
        message: IncomingMessage,
        text: str,
        understanding: Understanding,
        state: ConversationState,
        transcript: list[TranscriptTurn],
    ) -> Reply:
        intent = understanding.intent.name
        if (
            intent == "ticket_status"
            and not understanding.ticket_numbers
            and understanding.intent.confidence < UNSURE_STATUS_CONFIDENCE
        ):
            # "You have no open tickets" to a question the model barely read as a status
            # request is a confident wrong answer: search the articles instead.
            intent = FALLBACK_INTENT
        if intent in SMALLTALK_INTENTS and _unsure_small_talk(text, understanding):
            intent = FALLBACK_INTENT
        # Said in so many words: no article is offered instead of the ticket asked for.
        forced_ticket = False
        if intent in SEARCH_INTENTS and _asks_for_a_ticket(text):
            intent = "open_ticket"  # "open a ticket: <the problem>" is a wish, not a question
            forced_ticket = True

        said_yes = _yes_or_no(understanding) if state.awaiting is not Awaiting.NOTHING else None
        if state.awaiting is Awaiting.DESCRIPTION and said_yes is not False:
            state.question = text
            state.category = TICKET_INTENTS.get(intent, state.category)
            return self._ticket_opened_reply(self._open_ticket(message, state, transcript))
        if said_yes is not None:
            return self._follow_up(message, said_yes, state, transcript)
        if intent in SMALLTALK_INTENTS:
            return Reply(SMALLTALK_REPLIES[intent], Decision.SMALLTALK)
        if intent == "ticket_status" or (understanding.ticket_numbers and intent in SEARCH_INTENTS):
            return self._status(message.requester, understanding.ticket_numbers)
        if intent in SEARCH_INTENTS and _reports_an_outage(text):
            intent = "open_ticket"  # many people affected: an agent must act, no article will
            forced_ticket = True
        item = self._catalog_item(text, intent)
        if item is not None:
            return _catalog_reply(item)
        if intent == "open_ticket" and not state.question and not _describes_a_problem(text):
            state.awaiting = Awaiting.DESCRIPTION
            return Reply(
                "Sure. What's the problem? Describe it in a sentence or two "
                "and I'll open the ticket.",
                Decision.ESCALATE,
            )
        if intent in TICKET_INTENTS:
            state.category = TICKET_INTENTS[intent]
        outcome, hits = self._choose(
            intent, understanding, forced_ticket, include_internal=message.requester in self.agents
        )
        if outcome is Outcome.TICKET:
            if not state.question and intent not in {"open_ticket", "talk_to_human"}:
                state.question = text
            ticket = self._open_ticket(message, state, transcript)
            return self._ticket_opened_reply(ticket)
        state.question = state.question or text
        if outcome is Outcome.ANSWER:
            return self._answer(hits, state, message.conversation_key)
        self._record_feedback(FeedbackKind.UNANSWERED, [None], message.conversation_key, text)
        state.awaiting = Awaiting.TICKET_CONFIRMATION
        return Reply(
            text="I couldn't find an article that answers this. "
            "Shall I open a ticket so the IT team can help?",
            decision=Decision.ESCALATE,
            offers_ticket=True,
        )

    def _catalog_item(self, text: str, intent: str) -> CatalogItemView | None:
        if self.catalog is None or not reads_as_a_wish(text, intent):
            return None
        try:
            items = self.catalog()
        except Exception:
            # Without the catalog the request still reaches a person as a ticket.
            logger.exception("could not read the service catalog")
            return None
        return catalog_item_asked_for(text, intent, items)

    def search_knowledge(self, question: str, limit: int = 3) -> tuple[SearchHit, ...]:
        """The articles this assistant finds for a question, best first, exactly as it
        searches when answering (for editors' checks: golden questions, gaps), internal
        articles included."""
        understanding = self.interpreter.understand(question[:MAX_MESSAGE_CHARS])
        return self.search_understood(understanding, limit)

    def search_understood(
        self, understanding: Understanding, limit: int = 3, *, include_internal: bool = True
    ) -> tuple[SearchHit, ...]:
        """The articles for a message already understood, best first, as when answering;
        without `include_internal`, as an employee (not an agent) is answered."""
        # Hybrid: the meaning (dense) and the words, with the synonyms' canonical
        # spellings added, so "2fa" finds an article that only says "MFA".
        query_text = expand_query(understanding.text, understanding.normalized_text)
        if self.knowledge.text_mode is not RetrievalMode.HYBRID:  # evaluations of one signal
            hits = self.knowledge.search(
                understanding.vector,
                limit,
                query_text=query_text,
                include_internal=include_internal,
            )
            return tuple(self.knowledge.with_coverage(hits, query_text))
        # Then the titles of the best few have their say, by their words and their
        # meaning (knowledge/ranking.py).
        hits = self.knowledge.search(
            understanding.vector,
            max(limit, RERANK_DEPTH),
            query_text=query_text,
            include_internal=include_internal,
        )
        reranked = rerank(hits, query_text, understanding.vector, self.title_meanings)
        # Whether each article found covers the question's words: the decision weighs it.
        return tuple(self.knowledge.with_coverage(reranked[:limit], query_text))

    def knowledge_decision(
        self, question: str, requester: str = ""
    ) -> tuple[Outcome, tuple[SearchHit, ...]]:
        """What `respond` decides for a question put to the knowledge base, without the
        conversation around it: answer with the best article, escalate (no article
        fits), or a ticket (a person has to act), with the hits searched. The same
        search, re-rank and calibrated model; the same rules for a message that asks for
        a ticket in so many words or reports an outage; internal articles for agents only.
        For front ends that keep their own dialogue, such as Rasa's
        action_search_knowledge."""
        text = redact_secrets(question).strip()[:MAX_MESSAGE_CHARS]
        understanding = self.interpreter.understand(text)
        intent = understanding.intent.name
        forced_ticket = intent in SEARCH_INTENTS and bool(
            _asks_for_a_ticket(text) or _reports_an_outage(text)
        )
        return self._choose(
            intent, understanding, forced_ticket, include_internal=requester in self.agents
        )

    def _choose(
        self,
        intent: str,
        understanding: Understanding,
        forced_ticket: bool,
        *,
        include_internal: bool,
    ) -> tuple[Outcome, tuple[SearchHit, ...]]:
        """Answer with the best article, escalate (offer a ticket), or open a ticket; with
        the hits searched, if any."""
        if forced_ticket:
            return Outcome.TICKET, ()
        hits = self.search_understood(understanding, include_internal=include_internal)
        calibration = self._current_calibration()
        if calibration is not None:
            # The calibrated model weighs the intents, the wording and the search together:
            # a request intent alone ("my work phone got stolen") may still have its article.
            if not hits:
                return (Outcome.TICKET if intent in TICKET_INTENTS else Outcome.ESCALATE), hits
            return calibration.decide(message_features(hits, understanding)), hits
        # Without one, the best article's cosine is compared with the thresholds, and a
        # request intent opens a ticket unless self-service may settle it.
        if intent in TICKET_INTENTS and intent not in SELF_SERVICE_REQUESTS:
            return Outcome.TICKET, hits
        threshold = (
            self.self_service_threshold
            if intent in SELF_SERVICE_REQUESTS
            else self.answer_threshold
        )
        if hits and hits[0].dense_score >= threshold:
            return Outcome.ANSWER, hits
        return (Outcome.TICKET if intent in TICKET_INTENTS else Outcome.ESCALATE), hits

    def _current_calibration(self) -> AnswerCalibration | None:
        stored = self.knowledge.calibration
        if stored is not self._calibration_source:  # the index was swapped for a newer build
            self._calibration_source = stored
            # An unreadable model is passed over: the decision stays as it was.
            if stored is not None:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    self.calibration = AnswerCalibration.from_dict(stored)
        return self.calibration

    def _answer(
        self, hits: tuple[SearchHit, ...], state: ConversationState, conversation_key: str = ""
    ) -> Reply:
        # Related articles must be close in meaning to the question on their own.
        best, related = hits[0], [h for h in hits[1:] if h.dense_score >= self.related_threshold]
        answer = (best, *related)
        state.remember_articles(answer)
        shown = [hit.article_id for hit in answer]
        self._record_feedback(FeedbackKind.SHOWN, shown, conversation_key, state.question)
        # "Did this help?" follows the cited article's text: the verdict is on it alone,
        # not on the related links below it, which were shown but maybe never opened.
        state.answered = [best.article_id]
        state.awaiting = Awaiting.FEEDBACK
        return Reply(
            text=f"{best.title}\n\n{best.passage}\n\nDid this help?",
            decision=Decision.ANSWER,
            articles=answer,
            asks_feedback=True,
        )

    def _follow_up(
        self,
        message: IncomingMessage,
        affirmed: bool,
        state: ConversationState,
        transcript: list[TranscriptTurn],
    ) -> Reply:
        awaiting, state.awaiting = state.awaiting, Awaiting.NOTHING
        if awaiting is Awaiting.FEEDBACK:
            self._record_verdict(state, message.conversation_key, helped=affirmed)
        if awaiting is Awaiting.FEEDBACK and affirmed:
            return Reply("Glad that solved it!", Decision.SMALLTALK)
        if awaiting is Awaiting.FEEDBACK:
            state.awaiting = Awaiting.TICKET_CONFIRMATION
            return Reply(
                "Sorry that didn't help. Shall I open a ticket for the IT team? "
                "It will include this conversation and the articles you already tried.",
                Decision.ESCALATE,
                offers_ticket=True,
            )
        if affirmed:
            ticket = self._open_ticket(message, state, transcript)
            return self._ticket_opened_reply(ticket)
        return Reply("OK, no ticket. Ask me anything else whenever you need.", Decision.SMALLTALK)

    def _status(self, requester: str, numbers: tuple[str, ...]) -> Reply:
        if numbers:
            found: list[TicketView] = []
            missing: list[str] = []
            for number in numbers:
                try:
                    ticket: TicketView | None = self.tickets.get(number)
                except TicketError:
                    ticket = None
                # An employee sees their own tickets only; agents work in the triage channel.
                if ticket is not None and ticket.requester == requester:
                    found.append(ticket)
                else:
                    missing.append(number)
            lines = [describe_ticket(ticket) for ticket in found]
            lines += [f"I can't find a ticket {number} of yours." for number in missing]
            return Reply("\n".join(lines), Decision.STATUS, tickets=tuple(found))
        mine = self.tickets.list_for_requester(requester)
        if not mine:
            return Reply("You have no open tickets.", Decision.STATUS)
        lines = ["Your open tickets:"] + [describe_ticket(ticket) for ticket in mine]
        return Reply("\n".join(lines), Decision.STATUS, tickets=tuple(mine))

    # -- feedback and escalation (also driven by buttons) -------------------------------

    def mark_helpful(
        self,
        conversation_key: str,
        requester: str,
        *,
        then: Callable[[Session], None] | None = None,
    ) -> Reply:
        """The requester said the answer solved it (a button or a "yes"); ``then`` (the
        front end's edit of the answer) commits with the conversation."""
        state, transcript = self._conversation(conversation_key)
        state.awaiting = Awaiting.NOTHING
        self._record_verdict(state, conversation_key, helped=True)
        transcript.append({"role": "requester", "text": "✅ That solved it"})
        reply = Reply("Glad that solved it!", Decision.SMALLTALK)
        transcript.append({"role": "assistant", "text": reply.text})
        self._save_record(conversation_key, requester, state, transcript, then=then)
        return reply

    def escalate(
        self,
        message: IncomingMessage,
        *,
        idempotency_key: str | None = None,
    ) -> Reply:
        """Open (or return the already opened) ticket for a conversation, e.g. from
        "I still need help"; the message's text, if any, is the requester's last word."""
        state, transcript = self._conversation(message.conversation_key)
        if message.text.strip():
            transcript.append({"role": "requester", "text": message.text.strip()})
        # "I still need help" after an answer is that answer's "no".
        self._record_verdict(state, message.conversation_key, helped=False)
        ticket = self._open_ticket(message, state, transcript, idempotency_key)
        reply = self._ticket_opened_reply(ticket)
        transcript.append({"role": "assistant", "text": reply.text})
        self._save(message, state, transcript)
        return reply

    # -- helpers --------------------------------------------------------------------------

    def _record_verdict(self, state: ConversationState, key: str, *, helped: bool) -> None:
        """Count "did this help?" once per answer, for the article that answer cited."""
        if not state.answered:
            return
        kind = FeedbackKind.HELPFUL if helped else FeedbackKind.NOT_HELPFUL
        self._record_feedback(kind, state.answered, key, state.question)
        state.answered = []
        if state.question_id is not None and not self.dry_run:
            try:
                record_feedback(self.tickets.session_factory, state.question_id, helped)
            except Exception:
                logger.exception("could not record the verdict on question %s", state.question_id)
            state.question_id = None

    def _record_question(
        self, message: IncomingMessage, state: ConversationState, reply: Reply, asked_anew: Awaiting
    ) -> None:
        """Log an IT question for the desk metrics (deflection, verified deflection): one
        that was answered, one no article fitted, or one that went straight to a person.

        ``asked_anew`` is what the conversation awaited before this message: a "yes" or
        "no" to a follow-up asks nothing new. The ``questions`` table is the desk
        metrics' source (one row per question); ``article_feedback`` stays the editors'
        per-article log, and the two share the conversation key.
        """
        if self.dry_run:
            return
        if reply.decision is Decision.ANSWER:
            answered, article_id = True, reply.articles[0].article_id
        elif (reply.decision is Decision.ESCALATE and reply.offers_ticket) or (
            reply.decision is Decision.TICKET
        ):
            if asked_anew not in (Awaiting.NOTHING, Awaiting.DESCRIPTION):
                return
            answered, article_id = False, None
        else:
            return
        try:
            state.question_id = record_question(
                self.tickets.session_factory,
                asker=message.requester,
                text=state.question or message.text,
                intent=reply.intent or None,
                article_id=article_id,
                answered=answered,
                at=self.tickets.now(),
                conversation_key=message.conversation_key,
                ticket_number=None if reply.ticket is None else reply.ticket.number,
            )
        except Exception:
            # The figures must never cost an employee their answer.
            logger.exception("could not record the question of %s", message.conversation_key)

    def _record_feedback(
        self,
        kind: FeedbackKind,
        article_ids: Iterable[str | None],
        conversation_key: str,
        question: str,
        ticket_number: str | None = None,
    ) -> None:
        if self.feedback is None or self.dry_run:
            return
        self.feedback.record_quietly(
            kind,
            article_ids,
            conversation_key=conversation_key,
            question=question,
            ticket_number=ticket_number,
        )

    def _conversation(self, key: str) -> tuple[ConversationState, list[TranscriptTurn]]:
        record = self.conversations.load(key)
        return ConversationState.from_record(record), list(record.transcript if record else [])

    def _open_ticket(
        self,
        message: IncomingMessage,
        state: ConversationState,
        transcript: list[TranscriptTurn],
        idempotency_key: str | None = None,
    ) -> TicketView | None:
        state.awaiting = Awaiting.NOTHING
        title = state.question or _first_requester_text(transcript) or "Help requested"
        if self.dry_run:
            return None
        if state.ticket_number is not None:
            # One conversation, one ticket: asking again returns the ticket already open.
            try:
                existing = self.tickets.get(state.ticket_number)
            except TicketError:
                existing = None
            if existing is not None and existing.status != "resolved":
                return existing
        ticket = self.tickets.open_ticket(
            requester=message.requester,
            title=title,
            description="\n".join(
                turn["text"] for turn in transcript if turn["role"] == "requester"
            ),
            transcript=transcript,
            articles_tried=state.articles_tried,
            category=state.category,
            source=message.source,
            idempotency_key=idempotency_key,
            requester_channel=message.requester_channel,
            requester_thread_ts=message.requester_thread_ts,
        )
        state.ticket_number = ticket.number
        tried: list[str | None] = [str(item["id"]) for item in state.articles_tried]
        if not tried and state.category == "general":
            tried = [None]  # a question that went straight to a person: a gap for editors
        if tried:
            self._record_feedback(
                FeedbackKind.TICKET, tried, message.conversation_key, title, ticket.number
            )
        return ticket

    def _ticket_opened_reply(self, ticket: TicketView | None) -> Reply:
        if ticket is None:
            return Reply("(dry run) I would open a ticket for the IT team.", Decision.TICKET)
        return Reply(
            f"I've opened ticket {ticket.number} for the IT team: “{ticket.title}”. "
            "An agent will pick it up and reply here.",
            Decision.TICKET,
            ticket=ticket,
        )

    def _save(
        self, message: IncomingMessage, state: ConversationState, transcript: list[TranscriptTurn]
    ) -> None:
        self._save_record(message.conversation_key, message.requester, state, transcript)

    def _save_record(
        self,
        key: str,
        requester: str,
        state: ConversationState,
        transcript: list[TranscriptTurn],
        *,
        then: Callable[[Session], None] | None = None,
    ) -> None:
        if self.dry_run:
            if then is not None:  # nothing of ours to store, but the caller's writes are
                with self.tickets.session_factory.begin() as session:
                    then(session)
            return
        self.conversations.save(
            ConversationRecord(
                key=key, requester=requester, transcript=transcript, state=state.as_dict()
            ),
            then=then,
        )


# Words of "please open a ticket" itself; what is left over describes the problem.
_TICKET_REQUEST_VOCABULARY = (
    "a an the i i'd id me my we our you your can could would will please pls plz want need "
    "like to for this that it open create raise file log make submit start new ticket "
    "tickets incident case request support help hi hello hey just now asap quickly"
)
_TICKET_REQUEST_WORDS = frozenset(_TICKET_REQUEST_VOCABULARY.split())


_EXPLICIT_TICKET_REQUEST = re.compile(
    r"\b(open|create|raise|file|log|submit|make)\b[\w\s]{0,15}?\b(ticket|incident|case)\b",
    re.IGNORECASE,
)


# "how do I open a ticket in ServiceNow?" asks about the desk's process (an article may
# answer it); "open a ticket: the printer is jammed" asks for one.
_ASKS_HOW = re.compile(r"^\s*(how|where|what|when|who|which)\b", re.IGNORECASE)


def _unsure_small_talk(text: str, understanding: Understanding) -> bool:
    return (
        understanding.intent.confidence < SURE_SMALLTALK_CONFIDENCE
        and len(text.split()) > SMALLTALK_MAX_WORDS
    )


def _asks_for_a_ticket(text: str) -> bool:
    return bool(_EXPLICIT_TICKET_REQUEST.search(text)) and not _ASKS_HOW.search(text)


# "for everyone", "the whole office", "nobody on the 4th floor": a problem many people
# share is an incident for an agent, however well an article matches the symptom.
_MANY_PEOPLE = re.compile(
    r"\b(every(one|body)|no ?(one|body)|whole|entire|all (of )?(us|users|staff|the)|"
    r"(whole|entire|our|the) (team|floor|office|building|site|region|company|department))\b",
    re.IGNORECASE,
)
_NOTHING_WORKS = re.compile(
    r"\b(down|outage|offline|not working|isn'?t working|aren'?t working|stopped working|"
    r"can'?t (connect|access|log ?in|sign ?in|reach|print|send)|(has|have|got) no "
    r"(internet|network|wifi|wi-fi|email|connection))\b",
    re.IGNORECASE,
)
_NOBODY_HAS = re.compile(
    r"\bno ?(one|body)\b[^.?!]{0,40}\b(has|have|gets?|can (get|reach|connect))\b", re.IGNORECASE
)


def _reports_an_outage(text: str) -> bool:
    if _NOBODY_HAS.search(text):
        return True
    return bool(_MANY_PEOPLE.search(text) and _NOTHING_WORKS.search(text))


def message_features(
    hits: tuple[SearchHit, ...] | list[SearchHit], understanding: Understanding
) -> dict[str, float]:
    """What the calibrated decision weighs for this message and its best hits."""
    return decision_features(
        hits,
        intent_confidences(understanding),
        understanding.text,
        (entity.entity for entity in understanding.entities),
    )


def intent_confidences(understanding: Understanding) -> dict[str, float]:
    confidences = {ranked.name: ranked.confidence for ranked in understanding.intent.ranking}
    confidences[FALLBACK_INTENT] = 1.0 if understanding.intent.is_fallback else 0.0
    return confidences


def _describes_a_problem(text: str) -> bool:
    words = [word.strip(".,!?:;'\"()") for word in text.lower().split()]
    return sum(1 for word in words if word and word not in _TICKET_REQUEST_WORDS) >= 2


def _yes_or_no(understanding: Understanding) -> bool | None:
    """Read a reply to a yes/no question: True, False, or None when it is something else.

    After "Did this help?" a thanks means yes; a short "yes that worked" can split its
    confidence between affirm and thanks, so their confidences count together.
    """
    confidences = {ranked.name: ranked.confidence for ranked in understanding.intent.ranking}
    yes = confidences.get("affirm", 0.0) + confidences.get("thanks", 0.0)
    no = confidences.get("deny", 0.0)
    others = max(
        (c for name, c in confidences.items() if name not in {"affirm", "thanks", "deny"}),
        default=0.0,
    )
    if max(yes, no) < YES_NO_THRESHOLD or max(yes, no) <= others:
        return None
    return yes > no


def _catalog_reply(item: CatalogItemView) -> Reply:
    approval = ""
    if item.needs_approval:
        whose = "your manager's " if "manager" in item.approvers else ""
        approval = f" It needs {whose}approval first."
    return Reply(
        f"{item.name} is in the IT service catalog: {item.description}{approval} "
        "Fill in its short form to request it.",
        Decision.CATALOG,
        catalog_item=item,
    )


def describe_ticket(ticket: TicketView) -> str:
    owner = f", with {ticket.assignee}" if ticket.assignee else ", waiting for an agent"
    return f"{ticket.number} · {ticket.status.replace('_', ' ')}{owner} · {ticket.title}"


def _first_requester_text(transcript: list[TranscriptTurn]) -> str:
    for turn in transcript:
        if turn["role"] == "requester" and turn["text"].strip():
            return turn["text"]
    return ""
