"""The service catalog in Slack: browse the items, fill in an item's form, approvals by DM.

An employee opens the catalog (App Home "Browse catalog", `/helpdesk catalog`, or the
button under tier0's reply to "I need Figma"), picks an item and fills in its form. The
request goes to the catalog service, which keeps the approval rules: the approver (the
requester's manager, for most items) gets a DM with Approve / Reject; once the last one
approves, the request is the fulfilment team's ticket and lands in their triage channel.
The requester hears each step in one DM thread.

The desk tells Slack users these steps itself, with buttons, so the catalog service is
given a sink that drops its own Slack copies of that news (people without Slack still
get theirs by mail through the outbox).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from logging import Logger
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.blocks import as_payload, feedback_given_blocks, triage_blocks, triage_text
from bot.slack.markup import clip, escape_mrkdwn, quote, user_mention
from bot.slack.threads import REQUESTER_THREAD
from bot.slack.views import BROWSE_CATALOG_ACTION, submitted_values
from tickets.catalog import MAX_ANSWER_LENGTH, CatalogItemView, CatalogService
from tickets.directory import Directory
from tickets.errors import PermissionDenied, TicketError
from tickets.models import ApprovalState, User
from tickets.notifications import (
    Notification,
    NotificationChannel,
    NotificationKind,
    NotificationSink,
)
from tickets.service import TicketService, TicketView

if TYPE_CHECKING:
    from bot.slack.desk import SlackDesk

logger = logging.getLogger(__name__)

CATALOG_VIEW = "catalog_browse"
CATALOG_REQUEST_VIEW = "catalog_request"
REJECT_VIEW = "catalog_reject_reason"
PICK_ITEM_ACTION = "catalog_pick"  # an item's button in the catalog modal
REQUEST_ITEM_ACTION = "catalog_request_item"  # under tier0's reply to "I need Figma"
APPROVE_ACTION = "catalog_approve"
REJECT_ACTION = "catalog_reject"
# A modal holds at most 100 blocks; one block per item (or field) and a heading leave room.
ITEMS_SHOWN = 90
FIELDS_SHOWN = 90
CHOICES_SHOWN = 100  # Slack's limit on a select's options
REASON_MAX_CHARS = 1000
_FIELD_BLOCK = "field:"

# What the desk tells Slack users itself; the service's own copy would say it twice.
_TOLD_IN_SLACK = frozenset(
    {
        NotificationKind.TICKET_OPENED,
        NotificationKind.APPROVAL_REQUESTED,
        NotificationKind.APPROVAL_DECIDED,
    }
)


class ToldInSlack:
    """A sink passing everything on except the catalog news the Slack desk posts itself."""

    def __init__(self, inner: NotificationSink) -> None:
        self._inner = inner

    def notify(self, session: Session, notification: Notification) -> None:
        if (
            notification.channel is NotificationChannel.SLACK
            and notification.kind in _TOLD_IN_SLACK
        ):
            return
        self._inner.notify(session, notification)


# -- views and messages ------------------------------------------------------------------


def _approval_words(item: CatalogItemView) -> str:
    if not item.needs_approval:
        return "no approval needed"
    return "needs your manager's approval" if "manager" in item.approvers else "needs approval"


def catalog_modal(items: Sequence[CatalogItemView]) -> View:
    """Every catalog item with a button to its form."""
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text="Pick what you need; I'll ask for its details."))
    ]
    for item in items[:ITEMS_SHOWN]:
        blocks.append(
            SectionBlock(
                block_id=clip(f"item:{item.key}", 255),
                text=MarkdownTextObject(
                    text=clip(
                        f"*{escape_mrkdwn(item.name)}*\n{escape_mrkdwn(item.description)}\n"
                        f"_{_approval_words(item)} · fulfilled by {escape_mrkdwn(item.team)}_"
                    )
                ),
                accessory=ButtonElement(
                    text="Request", action_id=PICK_ITEM_ACTION, value=clip(item.key, 2000)
                ),
            )
        )
    if not items:
        blocks.append(SectionBlock(text="The catalog is empty for now."))
    return View(
        type="modal",
        callback_id=CATALOG_VIEW,
        title=PlainTextObject(text="Service catalog"),
        close=PlainTextObject(text="Close"),
        blocks=blocks,
    )


def item_form(item: CatalogItemView) -> View:
    """The item's own form: one input per field, a select where the answers are fixed."""
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=clip(
                    f"*{escape_mrkdwn(item.name)}*\n{escape_mrkdwn(item.description)}\n"
                    f"_{_approval_words(item)}_"
                )
            )
        )
    ]
    for field in item.fields[:FIELDS_SHOWN]:
        element: PlainTextInputElement | StaticSelectElement
        if field.choices:
            element = StaticSelectElement(
                action_id="value",
                options=[
                    Option(value=clip(c, 150), text=clip(c, 75))
                    for c in field.choices[:CHOICES_SHOWN]
                ],
            )
        else:
            element = PlainTextInputElement(
                action_id="value", multiline=True, max_length=MAX_ANSWER_LENGTH
            )
        blocks.append(
            InputBlock(
                block_id=clip(_FIELD_BLOCK + field.name, 255),
                label=clip(field.label, 2000),
                optional=not field.required,
                element=element,
            )
        )
    return View(
        type="modal",
        callback_id=CATALOG_REQUEST_VIEW,
        title=PlainTextObject(text="Request"),
        submit=PlainTextObject(text="Submit request"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=item.key,
        blocks=blocks,
    )


def offer_blocks(text: str, item: CatalogItemView) -> list[Block]:
    """tier0's reply to "I need Figma": what the item is, and a button to its form."""
    return [
        SectionBlock(text=MarkdownTextObject(text=clip(escape_mrkdwn(text)))),
        ActionsBlock(
            block_id="catalog_offer",
            elements=[
                ButtonElement(
                    text=clip(f"📝 Request {item.name}", 75),
                    action_id=REQUEST_ITEM_ACTION,
                    value=clip(item.key, 2000),
                    style="primary",
                ),
                ButtonElement(text="Browse the catalog", action_id=BROWSE_CATALOG_ACTION),
            ],
        ),
    ]


def approval_blocks(request: TicketView, item_name: str, where: str) -> list[Block]:
    """The approver's DM: who asks for what, their answers, Approve / Reject."""
    answers = "\n".join(
        f"*{escape_mrkdwn(str(name))}:* {escape_mrkdwn(clip(str(value), 500))}"
        for name, value in (request.form_answers or {}).items()
    )
    return [
        SectionBlock(
            text=MarkdownTextObject(
                text=clip(
                    f"🔏 {user_mention(request.requester)} asks for your approval: "
                    f"*{escape_mrkdwn(item_name)}* ({request.number})"
                    + (f"\n{answers}" if answers else "")
                )
            )
        ),
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=clip(f"Fulfilled by {escape_mrkdwn(request.team or 'IT')}", 1900)
                )
            ]
        ),
        ActionsBlock(
            block_id="approval",
            elements=[
                ButtonElement(
                    text="Approve", action_id=APPROVE_ACTION, value=where, style="primary"
                ),
                ButtonElement(text="Reject", action_id=REJECT_ACTION, value=where, style="danger"),
            ],
        ),
    ]


def reject_modal(number: str, private_metadata: str) -> View:
    return View(
        type="modal",
        callback_id=REJECT_VIEW,
        title=PlainTextObject(text=clip(f"Reject {number}", 24)),
        submit=PlainTextObject(text="Reject"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private_metadata,
        blocks=[
            InputBlock(
                block_id="reason",
                label="Why? (the requester reads this)",
                element=PlainTextInputElement(
                    action_id="value", multiline=True, max_length=REASON_MAX_CHARS
                ),
            )
        ],
    )


# -- the flow ------------------------------------------------------------------------------


def _slack_user_handle(session_factory: sessionmaker[Session], slack_user: str) -> str:
    """The desk's handle for a Slack user: theirs if the directory knows their Slack id
    under another handle, else the Slack id itself (how Slack users are registered)."""
    with session_factory() as session:
        handle = session.scalars(
            select(User.handle).where(User.slack_id == slack_user).limit(1)
        ).first()
    return handle or slack_user


def _slack_id_of(session_factory: sessionmaker[Session], handle: str) -> str | None:
    with session_factory() as session:
        user = session.scalars(select(User).where(User.handle == handle).limit(1)).first()
    if user is not None:
        return user.slack_id
    return handle if handle[:1] in ("U", "W") and handle.isalnum() else None


class SlackCatalog:
    def __init__(self, desk: SlackDesk) -> None:
        self.desk = desk
        tickets = desk.tier0.tickets
        self.sessions = tickets.session_factory
        self.catalog = CatalogService(tickets)
        self.requests = CatalogService(
            TicketService(
                tickets.session_factory,
                clock=tickets.now,
                notifications=ToldInSlack(tickets.notifications),
            )
        )

    # -- browsing and the form -------------------------------------------------------

    def open_catalog(self, client: WebClient, trigger_id: str) -> None:
        client.views_open(trigger_id=trigger_id, view=catalog_modal(self.catalog.items()).to_dict())

    def open_item_form(self, client: WebClient, body: dict[str, Any]) -> None:
        """An item picked in the catalog modal (the modal turns into the form) or from
        the button under tier0's reply (a new modal)."""
        key = body["actions"][0]["value"]
        user = body["user"]["id"]
        try:
            item = self.catalog.item(key)
        except TicketError as error:
            self._tell_privately(client, body, user, escape_mrkdwn(error.message))
            return
        view = body.get("view")
        if view and view.get("callback_id") == CATALOG_VIEW:
            client.views_update(view_id=view["id"], view=item_form(item).to_dict())
        else:
            client.views_open(trigger_id=body["trigger_id"], view=item_form(item).to_dict())

    def form_errors(self, view: dict[str, Any]) -> dict[str, str]:
        """Required fields left empty, by block (Slack shows them under the field)."""
        values = submitted_values(view)
        try:
            item = self.catalog.item(view.get("private_metadata") or "")
        except TicketError:
            return {}  # the item went away meanwhile: the submission says so in a DM
        return {
            _FIELD_BLOCK + field.name: "This is needed."
            for field in item.fields
            if field.required and not values.get(_FIELD_BLOCK + field.name, "").strip()
        }

    def submit_request(self, client: WebClient, body: dict[str, Any]) -> None:
        """The item's form, submitted: the request, the requester's DM thread, the approver."""
        view, user = body["view"], body["user"]["id"]
        values = submitted_values(view)
        answers = {
            block[len(_FIELD_BLOCK) :]: value
            for block, value in values.items()
            if block.startswith(_FIELD_BLOCK) and value.strip()
        }
        channel = client.conversations_open(users=user)["channel"]["id"]
        try:
            request = self.requests.request(
                view.get("private_metadata") or "",
                as_user=_slack_user_handle(self.sessions, user),
                answers=answers,
                source="slack",
                idempotency_key=f"slack-view:{view['id']}",
            )
        except (TicketError, ValueError) as error:
            message = error.message if isinstance(error, TicketError) else str(error)
            self.desk.sends.post(
                channel,
                f"I couldn't submit your request: {escape_mrkdwn(message)}",
                key=f"catalog-refused:{view['id']}",
            )
            return
        # Every message below is keyed by the request: submitting the same form again (a
        # retry after a failure half-way) sends only what was not sent yet.
        item = self.catalog.item(request.catalog_item or "")
        root = self.desk.sends.post_and_wait(
            channel,
            f"📝 Your request *{request.number}* for *{escape_mrkdwn(item.name)}* is submitted.",
            key=f"catalog-submitted:{request.number}",
            # Its thread becomes the request's requester thread once Slack has it: the
            # fulfilment team's public replies reach the requester there, and theirs
            # reach the team.
            purpose=REQUESTER_THREAD,
            ticket_number=request.number,
        )
        # The requester's news goes under that message; if Slack has not taken it in time
        # (it is still owed), the news goes straight into the DM instead of being lost.
        root_ts = root.ref if root is not None and root.ref else ""
        where = json.dumps({"number": request.number, "channel": channel, "ts": root_ts})
        if request.approval_state is ApprovalState.PENDING:
            approver = self._ask_current_approver(client, request, item.name, where)
            self._tell_requester(
                (channel, root_ts),
                f"⏳ It waits for {user_mention(approver)}'s approval; "
                "I'll tell you here when they decide.",
                key=f"catalog-waits:{request.number}",
            )
        else:
            self._hand_to_fulfilment(request, channel, root_ts)

    # -- approvals -------------------------------------------------------------------

    def _ask_current_approver(
        self, client: WebClient, request: TicketView, item_name: str, where: str
    ) -> str | None:
        """DM the approver whose turn it is; returns their handle."""
        pending = [
            a for a in self.catalog.approvals(request.number) if a.decision is ApprovalState.PENDING
        ]
        if not pending:
            return None
        approver = pending[0].approver
        slack_id = _slack_id_of(self.sessions, approver)
        if slack_id is None:
            # No Slack: the catalog service has mailed them (the outbox delivers it).
            logger.info("approver %s of %s has no Slack id", approver, request.number)
            return approver
        dm = client.conversations_open(users=slack_id)["channel"]["id"]
        self.desk.sends.post(
            dm,
            f"{user_mention(request.requester)} asks for your approval of "
            f"{request.number}: {escape_mrkdwn(item_name)}",
            blocks=as_payload(approval_blocks(request, item_name, where)),
            key=f"approval-asked:{request.number}:{approver}",
            ticket_number=request.number,
        )
        return slack_id

    def may_decide(self, slack_user: str, number: str) -> bool:
        handle = _slack_user_handle(self.sessions, slack_user)
        if any(a.ticket_number == number for a in self.catalog.pending_approvals(as_user=handle)):
            return True
        with self.sessions() as session:
            user = session.scalars(select(User).where(User.handle == handle)).first()
            return user is not None and "admin" in user.roles

    def refuse(self, client: WebClient, body: dict[str, Any], number: str) -> None:
        approver = next(
            (
                a.approver
                for a in self.catalog.approvals(number)
                if a.decision is ApprovalState.PENDING
            ),
            None,
        )
        whom = f"{user_mention(approver)}'s" if approver else "its approver's"
        self._tell_privately(
            client, body, body["user"]["id"], f"{number} is waiting for {whom} decision, not yours."
        )

    def approve(self, client: WebClient, body: dict[str, Any]) -> None:
        where = json.loads(body["actions"][0]["value"])
        self._decide(client, body, where, approve=True, reason=None)

    def open_reject_form(self, client: WebClient, body: dict[str, Any]) -> None:
        where = json.loads(body["actions"][0]["value"])
        if not self.may_decide(body["user"]["id"], where["number"]):
            self.refuse(client, body, where["number"])
            return
        metadata = json.dumps(
            {**where, "dm": body["channel"]["id"], "dm_ts": body["message"]["ts"]}
        )
        client.views_open(
            trigger_id=body["trigger_id"], view=reject_modal(where["number"], metadata).to_dict()
        )

    def reject_from_form(self, client: WebClient, body: dict[str, Any]) -> None:
        where = json.loads(body["view"]["private_metadata"])
        reason = submitted_values(body["view"]).get("reason", "").strip()
        message = {"ts": where.pop("dm_ts"), "channel": where.pop("dm")}
        decided = {"user": body["user"], "channel": {"id": message["channel"]}}
        self._decide(client, {**decided, "message": message}, where, approve=False, reason=reason)

    def _decide(
        self,
        client: WebClient,
        body: dict[str, Any],
        where: dict[str, str],
        *,
        approve: bool,
        reason: str | None,
    ) -> None:
        user, number = body["user"]["id"], where["number"]
        handle = _slack_user_handle(self.sessions, user)
        try:
            request = self.requests.decide(number, as_user=handle, approve=approve, comment=reason)
        except PermissionDenied:
            self.refuse(client, body, number)
            return
        except (TicketError, ValueError) as error:
            message = error.message if isinstance(error, TicketError) else str(error)
            self._tell_privately(client, body, user, escape_mrkdwn(message))
            decided = self._decided_before(number, handle, approve)
            if decided is None:
                return
            # This very decision is stored already: the click that made it may have died
            # before telling anyone. Its news is keyed, so going on sends only what is
            # still missing.
            request = decided
        item_name = self.catalog.item(request.catalog_item or "").name
        outcome = (
            f"✅ Approved by {user_mention(user)}."
            if approve
            else f"❌ Rejected by {user_mention(user)}: {escape_mrkdwn(reason or '')}"
        )
        shown = body.get("message") or {}
        # One decision per approval message: its news is keyed by that message.
        decision = f"{body['channel']['id']}:{shown['ts']}"
        self.desk.sends.update(
            body["channel"]["id"],
            shown["ts"],
            outcome,
            blocks=feedback_given_blocks(
                shown.get("blocks") or as_payload(approval_blocks(request, item_name, "{}")),
                outcome,
            ),
            key=f"approval-decided:{decision}",
            ticket_number=number,
        )
        thread = (where["channel"], where["ts"])
        told = f"approval-told:{decision}"
        if not approve:
            self._tell_requester(
                thread,
                f"❌ {user_mention(user)} did not approve your request for "
                f"*{escape_mrkdwn(item_name)}* ({number}):\n{quote(reason or '', 1500)}",
                key=told,
            )
        elif request.approval_state is ApprovalState.APPROVED:
            self._tell_requester(
                thread, f"✅ {user_mention(user)} approved your request.", key=told
            )
            self._hand_to_fulfilment(request, *thread)
        else:
            following = self._ask_current_approver(client, request, item_name, json.dumps(where))
            self._tell_requester(
                thread,
                f"✅ {user_mention(user)} approved; it now waits for "
                f"{user_mention(following)}'s approval.",
                key=told,
            )

    def _decided_before(self, number: str, handle: str, approve: bool) -> TicketView | None:
        """The request, if `handle` has already made this decision on it."""
        wanted = ApprovalState.APPROVED if approve else ApprovalState.REJECTED
        try:
            approvals = self.catalog.approvals(number)
        except TicketError:
            return None
        if not any(a.approver == handle and a.decision is wanted for a in approvals):
            return None
        return self.desk.tier0.tickets.get(number)

    # -- fulfilment ------------------------------------------------------------------

    def _hand_to_fulfilment(self, request: TicketView, channel: str, thread_ts: str) -> None:
        """The request is the fulfilment team's ticket now: into their triage channel,
        with the form's answers in its thread, and the requester told its number.

        Keyed by the ticket, like the desk's own triage posts, so handing it over again
        sends nothing twice; the post is recorded as the ticket's triage post when Slack
        takes it (`TRIAGE_POST`), so replies and edits find it."""
        from bot.slack.desk import TRIAGE_POST  # the desk imports this module

        team_channel = self._team_channel(request.team)
        triage_post = self.desk.sends.post(
            team_channel,
            triage_text(request),
            blocks=as_payload(triage_blocks(request)),
            key=f"triage-post:{request.number}",
            purpose=TRIAGE_POST,
            ticket_number=request.number,
        )
        # The answers go in the post's thread (where the delivery hook recorded it, by
        # Slack's channel id); in the channel if the post is not in Slack in a few seconds.
        self.desk.sends.wait_for(triage_post, timeout=5.0)
        posted = self.desk.tier0.tickets.get(request.number)
        answers = "\n".join(
            f"• *{escape_mrkdwn(str(name))}:* {escape_mrkdwn(clip(str(value), 500))}"
            for name, value in (request.form_answers or {}).items()
        )
        self.desk.sends.post(
            posted.triage_channel or team_channel,
            clip(f"📋 Request form:\n{answers or '(no answers)'}"),
            thread_ts=posted.triage_ts,
            key=f"catalog-form-answers:{request.number}",
            ticket_number=request.number,
        )
        self._tell_requester(
            (channel, thread_ts),
            f"🎫 Your fulfilment ticket is *{request.number}*, with "
            f"{escape_mrkdwn(request.team or 'the IT team')}. They'll be in touch here.",
            key=f"catalog-ticket-told:{request.number}",
        )

    def _team_channel(self, team: str | None) -> str:
        for known in Directory(self.sessions).teams():
            if known.name == team and known.slack_channel:
                return known.slack_channel
        return self.desk.triage_channel

    # -- telling people ----------------------------------------------------------------

    def _tell_requester(self, thread: tuple[str, str], text: str, *, key: str) -> None:
        """In the requester's DM thread (the DM itself when its root never reached Slack)."""
        self.desk.sends.post(thread[0], clip(text), thread_ts=thread[1] or None, key=key)

    def _tell_privately(
        self, client: WebClient, body: dict[str, Any], user: str, text: str
    ) -> None:
        """`text` is mrkdwn already: whatever a person wrote in it is escaped."""
        channel = (body.get("channel") or {}).get("id")
        if channel:
            client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:  # a click inside a modal has no channel: a DM instead
            dm = client.conversations_open(users=user)["channel"]["id"]
            self.desk.sends.post(dm, text)


# -- listeners ---------------------------------------------------------------------------


def register(app: App, desk: SlackDesk) -> SlackCatalog:
    from bot.slack.listeners.actions import acknowledged

    catalog = SlackCatalog(desk)

    def now(work: Callable[[WebClient, dict[str, Any]], None]) -> Callable[..., None]:
        """Ack and act at once: opening a modal needs the trigger id, valid for 3 s."""

        def listener(ack: Ack, body: dict[str, Any], client: WebClient, logger: Logger) -> None:
            ack()
            try:
                work(client, body)
            except Exception:
                logger.exception("failed to open a catalog form")

        return listener

    app.action(BROWSE_CATALOG_ACTION)(
        now(lambda client, body: catalog.open_catalog(client, body["trigger_id"]))
    )
    app.action(PICK_ITEM_ACTION)(now(catalog.open_item_form))
    app.action(REQUEST_ITEM_ACTION)(now(catalog.open_item_form))
    app.action(APPROVE_ACTION)(acknowledged(desk, catalog.approve))
    app.action(REJECT_ACTION)(now(catalog.open_reject_form))

    def request_submitted(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient, logger: Logger
    ) -> None:
        errors = catalog.form_errors(view)
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()

        def work() -> None:
            try:
                catalog.submit_request(client, body)
            except Exception:
                logger.exception("failed to submit a catalog request")
                from bot.slack.desk import SORRY

                dm = client.conversations_open(users=body["user"]["id"])["channel"]["id"]
                desk.sends.post(dm, SORRY, key=f"catalog-sorry:{body['view']['id']}")

        desk.later(work)

    app.view(CATALOG_REQUEST_VIEW)(request_submitted)

    def reason_submitted(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
    ) -> None:
        if not submitted_values(view).get("reason", "").strip():
            ack(response_action="errors", errors={"reason": "Say why: the requester reads it."})
            return
        ack()

        desk.later_logged(
            lambda: catalog.reject_from_form(client, body), "reject a catalog request"
        )

    app.view(REJECT_VIEW)(reason_submitted)
    return catalog
