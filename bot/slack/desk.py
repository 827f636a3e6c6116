"""What tier0 does in Slack: answer in the requester's thread, post tickets to triage, relay claims.

The listeners are thin; they hand each request here with the bolt `WebClient`.
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any

from slack_sdk import WebClient

from bot.assistant import Decision, IncomingMessage, Reply
from bot.runtime import Tier0
from bot.slack.blocks import (
    as_payload,
    failure_blocks,
    feedback_given_blocks,
    reply_blocks,
    ticket_opened_text,
    triage_blocks,
    triage_text,
)
from bot.slack.markup import escape_mrkdwn, user_mention
from tickets.idempotency import first_delivery
from tickets.service import TicketAlreadyClaimed, TicketError, TicketView

logger = logging.getLogger(__name__)
_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+>\s*")
SORRY = (
    "Sorry, something went wrong on my side and I couldn't finish that. "
    "Please try again in a minute; if it keeps failing, ask in the IT help channel."
)


def conversation_key(channel: str, thread_ts: str) -> str:
    return f"slack:{channel}:{thread_ts}"


def readable_text(slack_text: str) -> str:
    """Slack sends `&lt;` for `<`; the assistant reads what the person actually typed."""
    return html.unescape(_LEADING_MENTION.sub("", slack_text))


class SlackDesk:
    def __init__(self, tier0: Tier0) -> None:
        self.tier0 = tier0
        self.assistant = tier0.assistant
        self.triage_channel = tier0.settings.triage_channel

    def first_delivery(self, delivery_id: str) -> bool:
        return first_delivery(self.tier0.session_factory, delivery_id)

    # -- employees ---------------------------------------------------------------------

    def answer_message(
        self, client: WebClient, event: dict[str, Any], event_id: str | None
    ) -> None:
        """A DM or an @mention: answer in its thread (once, however often Slack delivers it)."""
        if event_id and not self.first_delivery(f"slack-event:{event_id}"):
            logger.info("ignoring a repeated delivery of event %s", event_id)
            return
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
            client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=SORRY,
                blocks=as_payload(failure_blocks(SORRY, key)),
            )
            return
        self.post_reply(client, channel, thread_ts, reply, key)

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
        self, client: WebClient, channel: str, thread_ts: str, reply: Reply, key: str
    ) -> None:
        if reply.decision is Decision.TICKET and reply.ticket is not None:
            self.announce_ticket(client, reply.ticket, channel, thread_ts)
            return
        client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            text=escape_mrkdwn(reply.text),
            blocks=as_payload(reply_blocks(reply, key)),
            unfurl_links=False,
        )

    def mark_solved(self, client: WebClient, body: dict[str, Any]) -> None:
        user, key = body["user"]["id"], body["actions"][0]["value"]
        self.assistant.mark_helpful(key, user)
        self._close_feedback(client, body, f"✅ Marked as solved by {user_mention(user)}. Thanks!")

    def escalate_from_button(self, client: WebClient, body: dict[str, Any]) -> None:
        """ "I still need help" or "Open a ticket": the conversation becomes a ticket."""
        user, key = body["user"]["id"], body["actions"][0]["value"]
        channel = body["channel"]["id"]
        thread_ts = body["message"].get("thread_ts") or body["message"]["ts"]
        message = IncomingMessage(
            conversation_key=key,
            requester=user,
            text="🙋 I still need help",
            source="slack",
            requester_channel=channel,
            requester_thread_ts=thread_ts,
        )
        reply = self.assistant.escalate(message, idempotency_key=f"slack-escalation:{key}")
        if reply.ticket is None:
            return
        self._close_feedback(client, body, f"🙋 Passed to the IT team as {reply.ticket.number}.")
        self.announce_ticket(client, reply.ticket, channel, thread_ts)

    def announce_ticket(
        self, client: WebClient, ticket: TicketView, channel: str, thread_ts: str
    ) -> None:
        """Tell the requester the ticket number and put the ticket in front of the agents, once."""
        if not self.first_delivery(f"ticket-announced:{ticket.number}"):
            return
        client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=ticket_opened_text(ticket)
        )
        posted = client.chat_postMessage(
            channel=self.triage_channel,
            text=triage_text(ticket),
            blocks=as_payload(triage_blocks(ticket)),
            unfurl_links=False,
        )
        self.tier0.tickets.record_triage_message(ticket.number, posted["channel"], posted["ts"])

    def _close_feedback(self, client: WebClient, body: dict[str, Any], outcome: str) -> None:
        message = body.get("message") or {}
        if not message.get("blocks"):
            return
        client.chat_update(
            channel=body["channel"]["id"],
            ts=message["ts"],
            text=message.get("text") or outcome,
            blocks=feedback_given_blocks(message["blocks"], outcome),
        )

    # -- agents ------------------------------------------------------------------------

    def claim(self, client: WebClient, body: dict[str, Any]) -> None:
        agent, number = body["user"]["id"], body["actions"][0]["value"]
        channel = body["channel"]["id"]
        try:
            ticket = self.tier0.tickets.claim(number, agent)
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
            return
        client.chat_update(
            channel=channel,
            ts=body["message"]["ts"],
            text=triage_text(ticket),
            blocks=as_payload(triage_blocks(ticket)),
        )
        if ticket.requester_channel and ticket.requester_thread_ts:
            client.chat_postMessage(
                channel=ticket.requester_channel,
                thread_ts=ticket.requester_thread_ts,
                text=f"{user_mention(agent)} from IT is now working on {ticket.number}.",
            )
