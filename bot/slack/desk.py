"""What tier0 does in Slack: answer in the requester's thread, post tickets to triage, relay claims.

The listeners are thin; they hand each request here with the bolt `WebClient`.
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.assistant import Decision, IncomingMessage, Reply
from bot.runtime import Tier0
from bot.slack.article_owners import ArticleOwners, KnowledgeFolder
from bot.slack.blocks import (
    as_payload,
    failure_blocks,
    feedback_given_blocks,
    handed_over_blocks,
    rated_blocks,
    reply_blocks,
    resolved_blocks,
    ticket_of_controls,
    ticket_opened_text,
    triage_blocks,
    triage_text,
)
from bot.slack.catalog import offer_blocks
from bot.slack.inbox import SlackInbox
from bot.slack.markup import clip, escape_mrkdwn, quote, user_mention
from bot.slack.popular import popular_articles
from bot.slack.sends import SlackSends
from bot.slack.sla_due import NO_SLA, SlaDue, sla_due_in
from bot.slack.sla_due import sla_due as read_sla_due
from bot.slack.threads import is_requester, ticket_of_thread
from bot.slack.views import (
    CATEGORIES,
    IMPACTS,
    URGENCIES,
    csat_comment_modal,
    escalate_modal,
    home_view,
    internal_note_modal,
    new_request_modal,
    queue_blocks,
    resolve_modal,
    stats_blocks,
    submitted_values,
    ticket_list_blocks,
)
from bot.slack.workers import Job, WorkerPool
from tickets.directory import find_user
from tickets.directory import is_agent as has_agent_role
from tickets.idempotency import first_delivery
from tickets.metrics import desk_report
from tickets.models import Team, TicketEventKind
from tickets.outbox import Delivery, OutboxEntry, on_delivered
from tickets.service import TicketAlreadyClaimed, TicketError, TicketView
from tickets.steps import BOT_ACTOR, record_event, ticket_by_number

logger = logging.getLogger(__name__)
# In a request's bolt context: the sweeper has already claimed this event id for it.
REDRIVE_CLAIMED = "tier0_redrive_claimed"
_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+>\s*")
SORRY = (
    "Sorry, something went wrong on my side and I couldn't finish that. "
    "Please try again in a minute; if it keeps failing, ask in the IT help channel."
)
AGENTS_ONLY = "Only IT agents can do that. If you need help, ask me in a direct message."


Respond = Callable[..., Any]
MY_TICKETS = re.compile(r"^\s*(my\s+)?(open\s+)?tickets?\s*$", re.IGNORECASE)
AGENTS_CACHE_SECONDS = 60.0
HELPDESK_USAGE = (
    "*/helpdesk* opens a new request form.\n"
    "*/helpdesk your question* answers it in our direct messages.\n"
    "*/helpdesk my tickets* lists your open tickets.\n"
    "*/helpdesk catalog* lets you request something from the service catalog.\n"
    "IT agents: *queue* lists your team's open tickets, *stats* today's figures."
)
QUEUE = re.compile(r"^\s*(team\s+)?queue\s*$", re.IGNORECASE)
STATS = re.compile(r"^\s*stats(\s+today)?\s*$", re.IGNORECASE)


def conversation_key(channel: str, thread_ts: str) -> str:
    return f"slack:{channel}:{thread_ts}"


def readable_text(slack_text: str) -> str:
    """Slack sends `&lt;` for `<`; the assistant reads what the person actually typed."""
    return html.unescape(_LEADING_MENTION.sub("", slack_text))


class SlackDesk:
    def __init__(
        self, tier0: Tier0, *, inbox: SlackInbox, workers: WorkerPool, sends: SlackSends
    ) -> None:
        self.tier0 = tier0
        self.assistant = tier0.assistant
        self.triage_channel = tier0.settings.triage_channel
        self.inbox = inbox
        self.workers = workers
        # Every message and update goes out through here (the outbox); see bot.slack.sends.
        self.sends = sends
        self.knowledge_folder = KnowledgeFolder(
            tier0.settings.resolved_kb_dir, tier0.settings.kb_base_url
        )
        self.article_owners = ArticleOwners(self.knowledge_folder, sends)

    def first_delivery(self, delivery_id: str) -> bool:
        return first_delivery(self.tier0.session_factory, delivery_id)

    # -- running work after the ack --------------------------------------------------

    def handle_event(self, context: dict[str, Any], event_id: str | None, work: Job) -> None:
        """Run an event's work on the pool, once: the inbox claim decides who runs it."""
        if not event_id:
            self.later(work)
            return
        already_claimed = context.get(REDRIVE_CLAIMED) == event_id

        def job() -> None:
            if not already_claimed and not self.inbox.claim(event_id):
                return
            try:
                work()
            except Exception:
                self.inbox.fail(event_id)
                raise
            self.inbox.finish(event_id)

        if not self.workers.submit(job):
            logger.warning("worker queue full: event %s waits in the inbox", event_id)

    def skip_event(self, event_id: str | None) -> None:
        """An event tier0 has nothing to do for (its own post, an edit) is settled at once."""
        if event_id:
            self.inbox.finish(event_id)

    def later(self, work: Job) -> None:
        """Interaction work after its ack; with the queue full, run it here rather than drop it."""
        if not self.workers.submit(work):
            work()

    def later_logged(self, step: Callable[[], None], failing_to: str) -> None:
        """`later`, for a step whose failure has no one left to tell (the form or the
        click was already acknowledged): the failure is logged, never lost silently."""

        def work() -> None:
            try:
                step()
            except Exception:
                logger.exception("failed to %s", failing_to)

        self.later(work)

    # -- employees ---------------------------------------------------------------------

    def answer_message(self, client: WebClient, event: dict[str, Any]) -> None:
        """A DM or an @mention: answer in its thread."""
        channel, user = event["channel"], event.get("user", "")
        thread_ts = event.get("thread_ts") or event["ts"]
        key = conversation_key(channel, thread_ts)
        message = IncomingMessage(
            conversation_key=key,
            requester=user,
            text=readable_text(event.get("text") or ""),
            source="slack",
            requester_channel=channel,
            requester_thread_ts=thread_ts,
        )
        try:
            reply = self.assistant.respond(message)
        except Exception:
            logger.exception("could not answer a message in %s", key)
            self._keep_unanswered(message)
            self.sends.post(
                channel,
                SORRY,
                thread_ts=thread_ts,
                blocks=as_payload(failure_blocks(SORRY, key)),
                key=f"sorry:{channel}:{event['ts']}",
            )
            return
        self.post_reply(
            client, channel, thread_ts, reply, key, send_key=f"reply:{channel}:{event['ts']}"
        )

    def on_direct_message(self, client: WebClient, event: dict[str, Any]) -> None:
        """A reply in a DM thread that holds a ticket goes to the agents; the rest is a question."""
        if self._is_thread_reply(event) and self.relay_thread_message(client, event):
            return
        self.answer_message(client, event)

    def on_channel_reply(self, client: WebClient, event: dict[str, Any]) -> None:
        """A thread reply in a channel: relayed if the thread is a ticket's, else not ours."""
        self.relay_thread_message(client, event)

    @staticmethod
    def _is_thread_reply(event: dict[str, Any]) -> bool:
        thread_ts = event.get("thread_ts")
        return bool(thread_ts) and thread_ts != event.get("ts")

    def relay_thread_message(self, client: WebClient, event: dict[str, Any]) -> bool:
        """Carry a message between a ticket's two threads; False if it is in neither.

        In the triage thread an agent's message becomes a public comment relayed to the
        requester, unless it starts with `//` (an internal note, kept from the requester).
        In the requester's thread their reply becomes a comment posted to the agents.
        """
        channel, user, ts = event["channel"], event.get("user", ""), event["ts"]
        ticket = ticket_of_thread(self.tier0.session_factory, channel, event["thread_ts"])
        text = readable_text(event.get("text") or "").strip()
        if ticket is None or not text:
            return False
        from_triage = (channel, event["thread_ts"]) == (ticket.triage_channel, ticket.triage_ts)
        if not from_triage and not is_requester(self.tier0.session_factory, ticket, user):
            return False  # a colleague chiming in under someone else's request
        # The requester writes as the ticket's requester (a catalog request names them by
        # their directory handle), so the service sees the reply as theirs.
        author = user if from_triage else ticket.requester
        internal = from_triage and text.startswith("//")
        body = text.removeprefix("//").strip() if internal else text
        if from_triage:
            target = (ticket.requester_channel, ticket.requester_thread_ts)
        else:
            target = (ticket.triage_channel, ticket.triage_ts)
        if from_triage:
            relayed = f"{user_mention(user)} (IT): {escape_mrkdwn(body)}"
        else:
            relayed = f"💬 {user_mention(user)} on {ticket.number}: {escape_mrkdwn(body)}"

        def relay(session: Session, _ticket: TicketView) -> None:
            # In the comment's transaction; keyed by the message, so a redelivered event
            # (the comment already stored) relays it once.
            if not internal and target[0] and target[1]:
                self.sends.post(
                    target[0],
                    clip(relayed),
                    thread_ts=target[1],
                    key=f"relay:{channel}:{ts}",
                    session=session,
                )

        try:
            self.tier0.tickets.comment(
                ticket.number,
                body,
                as_user=author,
                internal=internal,
                via="slack",
                idempotency_key=f"slack-message:{channel}:{ts}",
                relayed=bool(target[0] and target[1]),
                then=relay,
            )
        except (TicketError, ValueError) as error:
            message = error.message if isinstance(error, TicketError) else str(error)
            client.chat_postEphemeral(channel=channel, user=user, text=escape_mrkdwn(message))
        return True

    def _keep_unanswered(self, message: IncomingMessage) -> None:
        """A message tier0 failed to answer still goes into its conversation, when the
        store is up, so "Open a ticket" carries it to the agents."""
        try:
            self.assistant.conversations.append_turn(
                message.conversation_key, message.requester, "requester", message.text
            )
        except Exception:
            logger.exception(
                "could not record the unanswered message in %s", message.conversation_key
            )

    def post_reply(
        self,
        client: WebClient,
        channel: str,
        thread_ts: str,
        reply: Reply,
        key: str,
        *,
        send_key: str | None = None,
    ) -> None:
        """The assistant's reply in the thread; `send_key` names it once (a redelivered
        event's reply is the same outbox message)."""
        if reply.decision is Decision.TICKET and reply.ticket is not None:
            self.announce_ticket(client, reply.ticket, channel, thread_ts)
            return
        if reply.decision is Decision.CATALOG and reply.catalog_item is not None:
            blocks = offer_blocks(reply.text, reply.catalog_item)
        elif reply.decision is Decision.STATUS and reply.tickets:
            blocks = ticket_list_blocks(
                reply.tickets, "*Your tickets*", self.sla_due(reply.tickets)
            )
            not_found = [line for line in reply.text.splitlines() if line.startswith("I can't")]
            if not_found:
                blocks.append(
                    SectionBlock(text=MarkdownTextObject(text=escape_mrkdwn("\n".join(not_found))))
                )
        else:
            links = self.knowledge_folder.links([hit.article_id for hit in reply.articles])
            blocks = reply_blocks(reply, key, links)
        self.sends.post(
            channel,
            escape_mrkdwn(reply.text),
            thread_ts=thread_ts,
            blocks=as_payload(blocks),
            key=send_key,
        )

    def mark_solved(self, client: WebClient, body: dict[str, Any]) -> None:
        user, key = body["user"]["id"], body["actions"][0]["value"]
        outcome = f"✅ Marked as solved by {user_mention(user)}. Thanks!"
        # The edit is written with the conversation: a crash after it commits cannot
        # leave the buttons under an answer already marked solved.
        self.assistant.mark_helpful(
            key, user, then=lambda session: self._close_feedback(client, body, outcome, session)
        )

    def talk_to_a_person(self, client: WebClient, body: dict[str, Any]) -> None:
        """ "Talk to a person": a ticket at once, and the on-duty agents pinged."""
        self.escalate_from_button(client, body, wants_a_person=True)

    def escalate_from_button(
        self, client: WebClient, body: dict[str, Any], *, wants_a_person: bool = False
    ) -> None:
        """ "I still need help" or "Open a ticket": the conversation becomes a ticket."""
        user, key = body["user"]["id"], body["actions"][0]["value"]
        channel = body["channel"]["id"]
        thread_ts = body["message"].get("thread_ts") or body["message"]["ts"]
        message = IncomingMessage(
            conversation_key=key,
            requester=user,
            text="🙋 I want to talk to a person" if wants_a_person else "🙋 I still need help",
            source="slack",
            requester_channel=channel,
            requester_thread_ts=thread_ts,
        )
        reply = self.assistant.escalate(message, idempotency_key=f"slack-escalation:{key}")
        if reply.ticket is None:
            return
        self._close_feedback(client, body, f"🙋 Passed to the IT team as {reply.ticket.number}.")
        self.announce_ticket(client, reply.ticket, channel, thread_ts)
        if wants_a_person:
            # Keyed by the ticket: pinged once however often it is asked, and a click
            # after a crash half-way still pings (no gate committed before the ping).
            self.ping_agents(
                client, reply.ticket, f"{user_mention(user)} asked to talk to a person"
            )

    def announce_ticket(
        self, client: WebClient, ticket: TicketView, channel: str, thread_ts: str
    ) -> None:
        """Tell the requester the ticket number and put the ticket in front of the agents, once."""
        # Keyed by the ticket: announcing it again (a retried event) sends nothing more.
        self.sends.post(
            channel,
            ticket_opened_text(ticket, self.sla_due([ticket]).get(ticket.number, NO_SLA)),
            thread_ts=thread_ts or None,
            key=f"ticket-opened:{ticket.number}",
            ticket_number=ticket.number,
        )
        self.post_to_triage(client, ticket)
        if ticket.articles_tried:
            try:
                self.article_owners.tell_owners(client, ticket)
            except Exception:  # the owners' news must not cost the requester their ticket
                logger.exception("could not tell the article owners about %s", ticket.number)

    def post_to_triage(self, client: WebClient, ticket: TicketView) -> OutboxEntry:
        """The ticket's card in the triage channel; where it landed is kept on the ticket
        when it is delivered (`TRIAGE_POST`)."""
        return self.sends.post(
            self.triage_channel,
            triage_text(ticket),
            blocks=as_payload(self.triage_card(ticket)),
            key=f"triage-post:{ticket.number}",
            purpose=TRIAGE_POST,
            ticket_number=ticket.number,
        )

    def ping_agents(self, client: WebClient, ticket: TicketView, why: str) -> None:
        """Mention the on-duty agents in the ticket's triage thread (in the channel, if the
        triage post has not reached Slack in a few seconds)."""
        self.sends.wait_for(self.post_to_triage(client, ticket), timeout=5.0)
        current = self.tier0.tickets.get(ticket.number)
        agents = sorted(self.tier0.settings.agent_ids)
        who = " ".join(f"<@{agent}>" for agent in agents) if agents else "<!here>"
        self.sends.post(
            current.triage_channel or self.triage_channel,
            f"🚨 {who} {why}: {current.number} needs someone now.",
            thread_ts=current.triage_ts,
            reply_broadcast=True,
            key=f"agents-pinged:{ticket.number}",
            ticket_number=ticket.number,
        )

    # -- employees: /helpdesk, the request form, App Home --------------------------------

    def helpdesk_command(
        self, client: WebClient, command: dict[str, Any], respond: Respond
    ) -> None:
        """`/helpdesk [question | my tickets | help]` after its ack."""
        text = readable_text(command.get("text") or "").strip()
        user = command["user_id"]
        if text.lower() in ("help", "?"):
            respond(text=HELPDESK_USAGE, response_type="ephemeral")
        elif QUEUE.match(text):
            self.show_queue(client, user, respond)
        elif STATS.match(text):
            self.show_stats(client, user, respond)
        elif MY_TICKETS.match(text):
            mine = self.tier0.tickets.list_for_requester(user)
            if not mine:
                respond(text="You have no open tickets.", response_type="ephemeral")
                return
            respond(
                text=f"You have {len(mine)} open ticket(s).",
                blocks=as_payload(
                    ticket_list_blocks(mine, "*Your open tickets*", self.sla_due(mine))
                ),
                response_type="ephemeral",
            )
        else:
            self.answer_in_direct_message(
                client, user, text, asked_as=str(command.get("trigger_id") or "")
            )

    def answer_in_direct_message(
        self, client: WebClient, user: str, question: str, *, asked_as: str = ""
    ) -> None:
        """A question asked with /helpdesk is answered in tier0's DM with the person, in a
        thread under it, where the conversation can go on like any other.

        The answer needs the thread's ts, so the question is posted and waited for; if
        Slack does not take it in time, it still goes out later (it is in the outbox), and
        the person is told to ask again, rather than answered somewhere else.
        """
        channel = client.conversations_open(users=user)["channel"]["id"]
        asked = self.sends.post_and_wait(
            channel,
            f"You asked with /helpdesk:\n{quote(question, 2000)}",
            key=f"helpdesk-asked:{asked_as}" if asked_as else None,
        )
        if asked is None or not asked.ref:
            raise SlackUnavailable("Slack did not take the /helpdesk question in time")
        ts = asked.ref
        self.answer_message(
            client, {"channel": channel, "user": user, "text": question, "ts": ts, "thread_ts": ts}
        )

    def open_new_request(self, client: WebClient, trigger_id: str, **prefill: str) -> None:
        client.views_open(trigger_id=trigger_id, view=new_request_modal(**prefill).to_dict())

    def request_errors(self, view: dict[str, Any]) -> dict[str, str]:
        """What is wrong with a submitted request form, by block (Slack shows it inline)."""
        values = submitted_values(view)
        errors: dict[str, str] = {}
        if not values.get("title", "").strip():
            errors["title"] = "Say in a few words what you need."
        if values.get("category") not in CATEGORIES:
            errors["category"] = "Pick a category."
        if values.get("impact") not in IMPACTS:
            errors["impact"] = "Pick who is affected."
        if values.get("urgency") not in URGENCIES:
            errors["urgency"] = "Pick how urgent it is."
        return errors

    def submit_new_request(self, client: WebClient, body: dict[str, Any]) -> None:
        """The request form, submitted: a ticket, its number in a DM thread, the triage post."""
        view, user = body["view"], body["user"]["id"]
        values = submitted_values(view)
        title = values["title"].strip()
        details = values.get("description", "").strip()
        asset = values.get("asset", "").strip()
        description = "\n\n".join(
            part
            for part in (details, f"Affected device or system: {asset}" if asset else "")
            if part
        )
        channel, thread_ts = self._request_thread(client, user, title, view["id"])
        ticket = self.tier0.tickets.open_ticket(
            requester=user,
            title=title,
            description=description or title,
            transcript=[{"role": "requester", "text": description or title}],
            category=values["category"],
            # The priority follows from these two by the desk's impact × urgency matrix.
            impact=values["impact"],
            urgency=values["urgency"],
            source="slack",
            idempotency_key=f"slack-view:{view['id']}",
            requester_channel=channel,
            requester_thread_ts=thread_ts,
        )
        self.announce_ticket(client, ticket, channel or user, thread_ts or "")

    def _request_thread(
        self, client: WebClient, user: str, title: str, view_id: str
    ) -> tuple[str | None, str | None]:
        """The DM thread a form's ticket is told about: its channel and root ts. When
        Slack is down the ticket is opened all the same and announced in the DM later."""
        try:
            channel = client.conversations_open(users=user)["channel"]["id"]
        except SlackApiError:
            logger.warning("cannot open the DM with %s; the ticket is announced later", user)
            return None, None
        root = self.sends.post_and_wait(
            channel,
            f"📝 Your request: *{escape_mrkdwn(clip(title, 150))}*",
            key=f"request-root:{view_id}",
        )
        return channel, (root.ref if root is not None else None)

    def publish_home(self, client: WebClient, user: str) -> None:
        mine = self.tier0.tickets.list_for_requester(user)
        titles = self.tier0.knowledge.titles()
        if user not in self.tier0.settings.agent_ids:  # internal articles are for agents only
            internal = self.tier0.knowledge.internal_articles
            titles = {key: title for key, title in titles.items() if key not in internal}
        popular = popular_articles(self.tier0.session_factory, titles)
        view = home_view(user, mine, popular, self.sla_due(mine))
        client.views_publish(user_id=user, view=view.to_dict())

    # -- employees: a message in a help channel becomes a ticket --------------------------

    def ticket_from_message(
        self,
        client: WebClient,
        *,
        channel: str,
        ts: str,
        reported_by: str,
        message: dict[str, Any] | None = None,
    ) -> None:
        """The 🎫 reaction or the "Create ticket" shortcut: the message's author is the
        requester, the ticket is announced in the message's thread."""
        if message is None:
            found = client.conversations_replies(channel=channel, ts=ts, limit=1, inclusive=True)
            messages = found.get("messages") or []
            if not messages:
                logger.info("no message %s in %s to open a ticket from", ts, channel)
                return
            message = messages[0]
        author = message.get("user")
        text = readable_text(message.get("text") or "").strip()
        if not author or message.get("bot_id") or not text:
            client.chat_postEphemeral(
                channel=channel,
                user=reported_by,
                text="I can only open a ticket from a message a person wrote.",
            )
            return
        thread_ts = message.get("thread_ts") or message.get("ts") or ts
        transcript = [{"role": "requester", "text": text}]
        if reported_by != author:
            transcript.append(
                {
                    "role": "assistant",
                    "text": f"Ticket requested by {reported_by} for this message.",
                }
            )
        ticket = self.tier0.tickets.open_ticket(
            requester=author,
            title=text,
            description=text,
            transcript=transcript,
            source="slack",
            idempotency_key=f"slack-message:{channel}:{message.get('ts') or ts}",
            requester_channel=channel,
            requester_thread_ts=thread_ts,
        )
        self.announce_ticket(client, ticket, channel, thread_ts)

    # -- agents: resolving, and the requester's rating ----------------------------------

    def open_resolve_form(self, client: WebClient, body: dict[str, Any]) -> None:
        self._open_agent_form(client, body, resolve_modal)

    def open_internal_note_form(self, client: WebClient, body: dict[str, Any]) -> None:
        self._open_agent_form(client, body, internal_note_modal)

    def _open_agent_form(
        self, client: WebClient, body: dict[str, Any], form: Callable[[str, str], Any]
    ) -> None:
        agent, number = body["user"]["id"], body["actions"][0]["value"]
        channel = body["channel"]["id"]
        if self.refuse_non_agent(client, channel, agent):
            return
        where = json.dumps({"number": number, "channel": channel, "ts": body["message"]["ts"]})
        client.views_open(trigger_id=body["trigger_id"], view=form(number, where).to_dict())

    def add_internal_note(self, client: WebClient, body: dict[str, Any]) -> None:
        """The internal note form, submitted: a comment agents see, posted in the triage thread."""
        agent = body["user"]["id"]
        where = json.loads(body["view"]["private_metadata"])
        note = submitted_values(body["view"]).get("note", "").strip()

        def show(session: Session, ticket: TicketView) -> None:
            self.sends.post(
                where["channel"],
                f"🔒 Internal note by {user_mention(agent)}:\n{quote(note, 2500)}",
                thread_ts=where["ts"],
                key=f"internal-note:{body['view']['id']}",
                ticket_number=ticket.number,
                session=session,
            )

        try:
            self.tier0.tickets.comment(
                where["number"],
                note,
                as_user=agent,
                internal=True,
                via="slack",
                idempotency_key=f"slack-view:{body['view']['id']}",
                then=show,
            )
        except (TicketError, ValueError) as error:
            message = error.message if isinstance(error, TicketError) else str(error)
            client.chat_postEphemeral(
                channel=where["channel"], user=agent, text=escape_mrkdwn(message)
            )

    def resolve_from_form(self, client: WebClient, body: dict[str, Any]) -> None:
        """The resolution note submitted: resolve, update the triage post, tell the requester."""
        agent = body["user"]["id"]
        where = json.loads(body["view"]["private_metadata"])
        note = submitted_values(body["view"]).get("resolution", "")
        view_id = body["view"]["id"]

        def tell(session: Session, ticket: TicketView) -> None:
            """In the resolution's transaction: the card, and the requester's note and
            CSAT question (a crash after the commit cannot lose them)."""
            self.update_triage_card(
                ticket, where["channel"], where["ts"], session=session, key=view_id
            )
            if ticket.requester_channel and ticket.requester_thread_ts:
                self.sends.post(
                    ticket.requester_channel,
                    f"{ticket.number} is resolved: {escape_mrkdwn(ticket.resolution or '')}",
                    thread_ts=ticket.requester_thread_ts,
                    blocks=as_payload(resolved_blocks(ticket, agent)),
                    key=f"resolved-told:{view_id}",
                    ticket_number=ticket.number,
                    session=session,
                )

        try:
            before = self.tier0.tickets.get(where["number"])
            self.tier0.tickets.resolve(
                where["number"],
                agent,
                note,
                requester_told=_has_requester_thread(before),
                then=tell,
            )
        except (TicketError, ValueError) as error:
            message = error.message if isinstance(error, TicketError) else str(error)
            client.chat_postEphemeral(
                channel=where["channel"], user=agent, text=escape_mrkdwn(message)
            )

    def update_triage_card(
        self,
        ticket: TicketView,
        channel: str | None = None,
        ts: str | None = None,
        *,
        session: Session | None = None,
        key: str | None = None,
    ) -> None:
        """Show the ticket's current state on its triage card (edits go out in order).

        With `session`, the edit is written in that transaction (the change's); `key`
        names the interaction that caused it, so handling it again edits once."""
        channel, ts = channel or ticket.triage_channel, ts or ticket.triage_ts
        if not channel or not ts:
            return  # not posted yet: the card will be posted as it is now
        self.sends.update(
            channel,
            ts,
            triage_text(ticket),
            blocks=as_payload(self.triage_card(ticket, session)),
            key=None if key is None else f"triage-card:{ticket.number}:{key}",
            ticket_number=ticket.number,
            session=session,
        )

    def _card_edit(
        self, channel: str, ts: str, interaction: str
    ) -> Callable[[Session, TicketView], None]:
        """The triage card's edit, for a change to write in its own transaction."""

        def edit(session: Session, ticket: TicketView) -> None:
            self.update_triage_card(ticket, channel, ts, session=session, key=interaction)

        return edit

    def rate(self, client: WebClient, body: dict[str, Any]) -> None:
        """A CSAT button: the score is kept once, and the buttons give way to a thank-you."""
        user = body["user"]["id"]
        number, score = body["actions"][0]["value"].rsplit(":", 1)
        channel = body["channel"]["id"]
        shown = body.get("message") or {}

        def thank(session: Session, ticket: TicketView) -> None:
            """In the rating's transaction: a crash after the commit cannot lose it."""
            if shown.get("blocks"):
                outcome = f"Thanks! You rated {ticket.number} {int(score)}/5."
                self.sends.update(
                    channel,
                    shown["ts"],
                    shown.get("text") or outcome,
                    blocks=rated_blocks(shown["blocks"], outcome, ticket.number),
                    key=f"csat-thanks:{ticket.number}",
                    ticket_number=ticket.number,
                    session=session,
                )

        try:
            self.tier0.tickets.rate(number, int(score), as_user=user, then=thank)
        except (TicketError, ValueError) as error:
            message = error.message if isinstance(error, TicketError) else str(error)
            client.chat_postEphemeral(channel=channel, user=user, text=escape_mrkdwn(message))

    def open_csat_comment_form(self, client: WebClient, body: dict[str, Any]) -> None:
        """ "Add a comment…" under a rating: the form (its trigger lasts 3 seconds)."""
        number = body["actions"][0]["value"]
        message = body.get("message") or {}
        # The thanks goes in the thread the rating was asked in.
        thread = message.get("thread_ts") or message["ts"]
        where = json.dumps({"number": number, "channel": body["channel"]["id"], "ts": thread})
        client.views_open(
            trigger_id=body["trigger_id"], view=csat_comment_modal(number, where).to_dict()
        )

    def comment_on_rating(self, client: WebClient, body: dict[str, Any]) -> None:
        """The comment form submitted: kept with the rating; the message says thanks."""
        user = body["user"]["id"]
        where = json.loads(body["view"]["private_metadata"])
        comment = submitted_values(body["view"]).get("comment", "")

        def thank(session: Session, ticket: TicketView) -> None:
            self.sends.post(
                where["channel"],
                f"💬 Thanks for your comment on {ticket.number}; the IT team will read it.",
                thread_ts=where["ts"],
                key=f"csat-comment:{body['view']['id']}",
                ticket_number=ticket.number,
                session=session,
            )

        try:
            self.tier0.tickets.comment_on_rating(where["number"], comment, as_user=user, then=thank)
        except (TicketError, ValueError) as error:
            message = error.message if isinstance(error, TicketError) else str(error)
            client.chat_postEphemeral(
                channel=where["channel"], user=user, text=escape_mrkdwn(message)
            )

    # -- who may act as an agent ----------------------------------------------------------

    def is_agent(self, client: WebClient, user: str) -> bool:
        """An agent by the desk's directory (role `agent`), or listed in TIER0_AGENTS;
        with neither set up, a member of the triage channel."""
        with self.tier0.session_factory() as session:
            if has_agent_role(find_user(session, user)):
                return True
        listed = self.tier0.settings.agent_ids
        if listed:
            return user in listed
        now = time.monotonic()
        cached = getattr(self, "_triage_members", None)
        if cached is None or now - cached[0] > AGENTS_CACHE_SECONDS:
            members = client.conversations_members(channel=self.triage_channel).get("members")
            cached = (now, frozenset(members or []))
            self._triage_members = cached
        return user in cached[1]

    def _close_feedback(
        self,
        client: WebClient,
        body: dict[str, Any],
        outcome: str,
        session: Session | None = None,
    ) -> None:
        message = body.get("message") or {}
        if not message.get("blocks"):
            return
        self.sends.update(
            body["channel"]["id"],
            message["ts"],
            message.get("text") or outcome,
            blocks=feedback_given_blocks(message["blocks"], outcome),
            session=session,
        )

    # -- agents ------------------------------------------------------------------------

    def refuse_non_agent(self, client: WebClient, channel: str, user: str) -> bool:
        """True (after telling them so, privately) when `user` may not act as an agent."""
        if self.is_agent(client, user):
            return False
        client.chat_postEphemeral(
            channel=channel,
            user=user,
            text="Only IT agents can do that. If you need help, ask me in a direct message.",
        )
        return True

    def claim(self, client: WebClient, body: dict[str, Any]) -> None:
        agent, number = body["user"]["id"], body["actions"][0]["value"]
        channel = body["channel"]["id"]
        if self.refuse_non_agent(client, channel, agent):
            return
        card_ts, click = body["message"]["ts"], _interaction_id(body)

        def tell(session: Session, ticket: TicketView) -> None:
            # In the claim's transaction: the card and the requester's news exist exactly
            # when the claim does; the keys make a repeated click send nothing twice.
            self.update_triage_card(ticket, channel, card_ts, session=session, key=click)
            if ticket.requester_channel and ticket.requester_thread_ts:
                self.sends.post(
                    ticket.requester_channel,
                    f"{user_mention(agent)} from IT is now working on {ticket.number}.",
                    thread_ts=ticket.requester_thread_ts,
                    key=f"claimed-told:{ticket.number}:{agent}",
                    ticket_number=ticket.number,
                    session=session,
                )

        try:
            before = self.tier0.tickets.get(number)
            self.tier0.tickets.claim(
                number, agent, requester_told=_has_requester_thread(before), then=tell
            )
        except TicketAlreadyClaimed as taken:
            client.chat_postEphemeral(
                channel=channel,
                user=agent,
                text=f"{taken.number} is already claimed by {user_mention(taken.assignee)}.",
            )
            return
        except TicketError as error:
            client.chat_postEphemeral(
                channel=channel, user=agent, text=escape_mrkdwn(error.message)
            )

    # -- agents: assign, priority, escalation; the queue and today's figures -------------

    def sla_due(
        self, tickets: Sequence[TicketView], session: Session | None = None
    ) -> dict[str, SlaDue]:
        if session is not None:
            return sla_due_in(session, tickets)
        return read_sla_due(self.tier0.session_factory, tickets)

    def triage_card(self, ticket: TicketView, session: Session | None = None) -> list[Block]:
        """The triage post's blocks, with the ticket's SLA targets as they stand now (in
        `session`, when the card is written in the transaction of a change)."""
        return triage_blocks(ticket, self.sla_due([ticket], session).get(ticket.number, NO_SLA))

    def assign_from_select(self, client: WebClient, body: dict[str, Any]) -> None:
        """Assign…: the agent picked in the select becomes the assignee; the service tells
        them and the requester (through the outbox), the triage post shows the new owner."""
        agent, channel = body["user"]["id"], body["channel"]["id"]
        action = body["actions"][0]
        number = ticket_of_controls(str(action.get("block_id") or ""))
        chosen = str(action.get("selected_user") or "")
        if self.refuse_non_agent(client, channel, agent) or not number or not chosen:
            return
        if not self.first_delivery(_interaction_id(body)):
            return
        card = self._card_edit(channel, body["message"]["ts"], _interaction_id(body))
        current = self._agent_step(client, channel, agent, lambda: self.tier0.tickets.get(number))
        if current is not None and current.assignee == chosen:
            # Picked the owner again: nothing changes, nobody is told twice.
            self.update_triage_card(current, channel, body["message"]["ts"])
            return
        self._agent_step(
            client,
            channel,
            agent,
            lambda: self.tier0.tickets.assign(number, chosen, as_user=agent, then=card),
        )

    def change_priority_from_select(self, client: WebClient, body: dict[str, Any]) -> None:
        """Priority…: the agent picks impact × urgency, the service sets the priority the
        desk's matrix gives and moves the SLA targets; the post shows all of it."""
        agent, channel = body["user"]["id"], body["channel"]["id"]
        selected = (body["actions"][0].get("selected_option") or {}).get("value") or ""
        number, impact, urgency, priority = _priority_choice(str(selected))
        if self.refuse_non_agent(client, channel, agent) or not number:
            return
        if not self.first_delivery(_interaction_id(body)):
            return
        card = self._card_edit(channel, body["message"]["ts"], _interaction_id(body))
        self._agent_step(
            client,
            channel,
            agent,
            lambda: self.tier0.tickets.change_priority(
                number,
                as_user=agent,
                priority=priority,
                impact=impact,
                urgency=urgency,
                reason="set in the triage channel",
                then=card,
            ),
        )

    def open_escalate_form(self, client: WebClient, body: dict[str, Any]) -> None:
        """Escalate to L2: ask why (the service wants a reason), if there is a next tier."""
        agent, number = body["user"]["id"], body["actions"][0]["value"]
        channel = body["channel"]["id"]
        if self.refuse_non_agent(client, channel, agent):
            return
        ticket = self._agent_step(client, channel, agent, lambda: self.tier0.tickets.get(number))
        if ticket is None:
            return
        next_team = self._next_team(ticket)
        if next_team is None:
            client.chat_postEphemeral(
                channel=channel, user=agent, text=f"{ticket.number} has no higher tier to go to."
            )
            return
        where = json.dumps({"number": number, "channel": channel, "ts": body["message"]["ts"]})
        client.views_open(
            trigger_id=body["trigger_id"],
            view=escalate_modal(ticket.number, next_team, where).to_dict(),
        )

    def escalate_from_form(self, client: WebClient, body: dict[str, Any]) -> None:
        """The escalation form, submitted: the ticket moves to the next tier's team (the
        service tells both teams and the requester); the new team gets the triage post in
        its channel, with the buttons, and the old post says where the ticket went."""
        agent = body["user"]["id"]
        where = json.loads(body["view"]["private_metadata"])
        reason = submitted_values(body["view"]).get("reason", "")
        if not self.first_delivery(f"escalation-view:{body['view']['id']}"):
            return
        view_id = body["view"]["id"]

        def hand_over(session: Session, ticket: TicketView) -> None:
            """In the escalation's transaction: the new team's post and the old card."""
            team_channel = self._team_channel(ticket.team, session)
            if not team_channel:
                # A team without a channel watches its queue: the post stays where it is.
                self.update_triage_card(
                    ticket, where["channel"], where["ts"], session=session, key=view_id
                )
                return
            card = self.triage_card(ticket, session)
            # Delivered as the ticket's triage post (TRIAGE_POST): the requester's replies
            # then go to the new team's thread.
            self.sends.post(
                team_channel,
                f"Escalated to {escape_mrkdwn(ticket.team or '')}: {triage_text(ticket)}",
                blocks=as_payload(card),
                key=f"escalated-post:{view_id}",
                purpose=TRIAGE_POST,
                ticket_number=ticket.number,
                session=session,
            )
            self.sends.update(
                where["channel"],
                where["ts"],
                triage_text(ticket),
                blocks=as_payload(
                    handed_over_blocks(
                        card,
                        f"⬆️ {user_mention(agent)} escalated it to "
                        f"{escape_mrkdwn(ticket.team or '')}: now in <#{team_channel}>",
                    )
                ),
                key=f"escalated-card:{view_id}",
                ticket_number=ticket.number,
                session=session,
            )

        self._agent_step(
            client,
            where["channel"],
            agent,
            lambda: self.tier0.tickets.escalate(
                where["number"], as_user=agent, reason=reason, then=hand_over
            ),
        )

    def show_queue(self, client: WebClient, user: str, respond: Respond) -> None:
        """`/helpdesk queue`: the agent's team's open tickets, most urgent first."""
        if not self.is_agent(client, user):
            respond(text=AGENTS_ONLY, response_type="ephemeral")
            return
        with self.tier0.session_factory() as session:
            me = find_user(session, user)
            team = session.get(Team, me.team_id) if me is not None and me.team_id else None
            team_name = None if team is None else team.name
            known_agent = has_agent_role(me)
        if not known_agent:
            # The queue is a team's, and only the desk's directory knows who is in which.
            respond(
                text="You work tickets from the triage channel, but the desk's directory does "
                "not list you as an agent of a team, so I can't tell which queue is yours. An "
                f'admin can add you: `tier0 user add {user} --role agent --team "<team>"`.',
                response_type="ephemeral",
            )
            return
        queue = self.tier0.tickets.queue(as_user=user)
        whose = escape_mrkdwn(team_name) if team_name else "the desk"
        if not queue:
            respond(text=f"No open tickets for {whose}. 🎉", response_type="ephemeral")
            return
        respond(
            text=f"{len(queue)} open ticket(s) for {whose}.",
            blocks=as_payload(
                queue_blocks(queue, f"*Open tickets for {whose}*", self.sla_due(queue))
            ),
            response_type="ephemeral",
        )

    def show_stats(self, client: WebClient, user: str, respond: Respond) -> None:
        """`/helpdesk stats`: today's figures (UTC day), counted as `tier0 report` does."""
        if not self.is_agent(client, user):
            respond(text=AGENTS_ONLY, response_type="ephemeral")
            return
        now = self.tier0.tickets.now()
        since = now.replace(hour=0, minute=0, second=0, microsecond=0)
        report = desk_report(
            self.tier0.session_factory, since=since, until=now + timedelta(seconds=1)
        )
        today = report.rows[0]
        respond(
            text=f"Today: {today.tickets_opened} opened, {today.resolved} resolved, "
            f"{today.backlog} open.",
            blocks=as_payload(
                stats_blocks(
                    day=f"{since:%a %d %b} (UTC)",
                    opened=today.tickets_opened,
                    resolved=today.resolved,
                    backlog=today.backlog,
                    sla_breaches=today.sla_measured - today.sla_met,
                    questions=today.questions,
                    deflected=today.deflected,
                )
            ),
            response_type="ephemeral",
        )

    def _agent_step(
        self, client: WebClient, channel: str, agent: str, step: Callable[[], TicketView]
    ) -> TicketView | None:
        """Run a ticket service step for an agent; a refusal is told to them privately."""
        try:
            return step()
        except (TicketError, ValueError) as error:
            message = error.message if isinstance(error, TicketError) else str(error)
            client.chat_postEphemeral(channel=channel, user=agent, text=escape_mrkdwn(message))
            return None

    def _next_team(self, ticket: TicketView) -> str | None:
        """The name of the team the ticket's team escalates to, if any."""
        with self.tier0.session_factory() as session:
            team = session.scalars(select(Team).where(Team.name == ticket.team)).one_or_none()
            above = (
                None
                if team is None or team.escalation_team_id is None
                else session.get(Team, team.escalation_team_id)
            )
            return None if above is None else above.name

    def _team_channel(self, team_name: str | None, session: Session) -> str | None:
        if team_name is None:
            return None
        return session.scalars(
            select(Team.slack_channel).where(Team.name == team_name)
        ).one_or_none()


def _has_requester_thread(ticket: TicketView) -> bool:
    """Whether tier0 talks with the requester in a Slack thread: then the desk tells them
    itself, and the ticket service must not queue the same news again."""
    return bool(ticket.requester_channel and ticket.requester_thread_ts)


def _priority_choice(value: str) -> tuple[str, str | None, str | None, str | None]:
    """A Priority… option: "T-1042:high:medium" (impact, urgency), or "T-1042:P2" as
    triage posts made before the matrix was offered carry it. ("", …) if neither."""
    parts = value.split(":")
    if len(parts) == 3 and all(parts):
        return parts[0], parts[1], parts[2], None
    if len(parts) == 2 and all(parts):
        return parts[0], None, None, parts[1]
    return "", None, None, None


def _interaction_id(body: dict[str, Any]) -> str:
    """One click on a triage control, as Slack names it: who, which control, when."""
    action = body["actions"][0]
    return f"triage-select:{body['user']['id']}:{action['action_id']}:{action.get('action_ts')}"


class SlackUnavailable(RuntimeError):
    """Slack did not take a message the flow cannot go on without (it is still owed)."""


# The delivery hook of a ticket's triage post: where it landed is kept on the ticket in
# the transaction that records the delivery, so relays and edits find the card.
TRIAGE_POST = "slack-triage-post"


def _remember_triage_post(session: Any, entry: OutboxEntry, delivery: Delivery) -> None:
    if not entry.ticket_number or not delivery.ref:
        return
    ticket = ticket_by_number(session, entry.ticket_number)
    ticket.triage_channel = delivery.channel or str(entry.payload["channel"])
    ticket.triage_ts = delivery.ref
    record_event(
        session,
        ticket,
        actor=BOT_ACTOR,
        kind=TicketEventKind.TRIAGE_POSTED,
        detail={"channel": ticket.triage_channel, "ts": ticket.triage_ts},
        at=entry.created_at,
    )


on_delivered(TRIAGE_POST, _remember_triage_post)
