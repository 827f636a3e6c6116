"""Knowledge editors in Slack: "Save as article draft" on a resolved ticket's thread, and
the draft's Publish / Edit / Discard buttons in the editors' channel.

The rules (who may edit, what a draft is, versions, the index) are in
`bot.article_drafts`; this module is the Slack side: the shortcut, the buttons, the
edit form and the messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from logging import Logger
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.article_drafts import ArticleDrafts, DraftError
from bot.slack.blocks import as_payload
from bot.slack.markup import clip, escape_mrkdwn, quote, user_mention
from bot.slack.threads import ticket_of_thread
from bot.slack.views import submitted_values
from knowledge.articles import Article
from nlu.embedding import shared_embedder
from tickets.errors import PermissionDenied

if TYPE_CHECKING:
    from bot.slack.desk import SlackDesk

SAVE_DRAFT_SHORTCUT = "save_article_draft"
PUBLISH_ACTION = "draft_publish"
EDIT_ACTION = "draft_edit"
DISCARD_ACTION = "draft_discard"
EDIT_VIEW = "draft_edit"
TITLE_MAX_CHARS = 250
# Slack's text inputs take at most 3,000 characters: longer articles are edited in the folder.
BODY_MAX_CHARS = 3000
PREVIEW_CHARS = 1500
NOT_AN_EDITOR = (
    "Only knowledge editors can do that. Ask an editor (or an admin) if this ticket "
    "should become an article."
)


def draft_blocks(article: Article, note: str | None = None) -> list[Block]:
    """A draft in the editors' channel: title, origin, the text, and what to do with it."""
    origin = article.meta.get("from_ticket")
    about = [f"`{escape_mrkdwn(article.id)}`", f"*{article.status}*"]
    if origin:
        about.append(f"from {escape_mrkdwn(str(origin))}")
    if article.owner:
        about.append(f"drafted by {user_mention(article.owner)}")
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"📝 {escape_mrkdwn(article.title)}", 150)),
        ContextBlock(elements=[MarkdownTextObject(text=clip(" · ".join(about), 1900))]),
        SectionBlock(text=MarkdownTextObject(text=quote(article.body, PREVIEW_CHARS))),
    ]
    if len(article.body) > PREVIEW_CHARS - 200:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text="(shortened here; the file is whole)")])
        )
    if note:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(note, 1900))]))
    buttons = [ButtonElement(text="✏️ Edit", action_id=EDIT_ACTION, value=article.id)]
    if article.status == "draft":
        buttons.insert(
            0,
            ButtonElement(
                text="✅ Publish", action_id=PUBLISH_ACTION, value=article.id, style="primary"
            ),
        )
        buttons.append(
            ButtonElement(
                text="🗑 Discard", action_id=DISCARD_ACTION, value=article.id, style="danger"
            )
        )
    blocks.append(ActionsBlock(block_id="draft", elements=buttons))
    return blocks


def edit_modal(article: Article, private_metadata: str) -> View:
    return View(
        type="modal",
        callback_id=EDIT_VIEW,
        title=PlainTextObject(text="Edit article"),
        submit=PlainTextObject(text="Save"),
        close=PlainTextObject(text="Cancel"),
        private_metadata=private_metadata,
        blocks=[
            InputBlock(
                block_id="title",
                label="Title",
                element=PlainTextInputElement(
                    action_id="value",
                    initial_value=clip(article.title, TITLE_MAX_CHARS),
                    max_length=TITLE_MAX_CHARS,
                ),
            ),
            InputBlock(
                block_id="body",
                label="Article (Markdown)",
                element=PlainTextInputElement(
                    action_id="value",
                    multiline=True,
                    initial_value=article.body,
                    max_length=BODY_MAX_CHARS,
                ),
            ),
        ],
    )


class SlackDrafts:
    def __init__(self, desk: SlackDesk) -> None:
        self.desk = desk
        tier0 = desk.tier0
        self.editors_channel = tier0.settings.editors_channel
        self.drafts = ArticleDrafts(
            tier0.settings,
            tier0.session_factory,
            lambda: tier0.knowledge.embedder or shared_embedder(),
        )

    def save_draft(self, client: WebClient, shortcut: dict[str, Any]) -> None:
        """The shortcut on a message of a resolved ticket's thread: a draft for the editors."""
        editor, channel = shortcut["user"]["id"], shortcut["channel"]["id"]
        message = shortcut["message"]

        def tell(text: str) -> None:
            client.chat_postEphemeral(channel=channel, user=editor, text=text)

        try:
            self.drafts.check_editor(editor)
        except PermissionDenied:
            tell(NOT_AN_EDITOR)
            return
        thread_ts = message.get("thread_ts") or message["ts"]
        ticket = ticket_of_thread(self.desk.tier0.session_factory, channel, thread_ts)
        if ticket is None:
            tell(
                "This message is not part of a ticket's thread. Use *Save as article draft* "
                "on a resolved ticket's post in the triage channel, or on a reply under it."
            )
            return
        try:
            article = self.drafts.draft_from_ticket(ticket, editor=editor)
        except (DraftError, PermissionDenied) as error:
            tell(escape_mrkdwn(_message(error)))
            return
        # Keyed by this use of the shortcut: the draft is posted once for it, even if the
        # work runs again; a draft made again later (after a discard) is posted anew.
        self.desk.sends.post(
            self.editors_channel,
            f"New article draft from {ticket.number}: {escape_mrkdwn(article.title)}",
            blocks=as_payload(draft_blocks(article)),
            key=f"draft-posted:{article.id}:{shortcut.get('trigger_id') or message['ts']}",
        )
        tell(
            f"📝 Saved `{escape_mrkdwn(article.id)}` as a draft from {ticket.number}; "
            f"it waits in {escape_mrkdwn(self.editors_channel)} to be published."
        )

    def publish(self, client: WebClient, body: dict[str, Any]) -> None:
        self._change(
            client,
            body,
            lambda editor, article_id: self.drafts.publish(article_id, editor=editor),
            "✅ Published by {who}: tier0 answers from it now.",
        )

    def discard(self, client: WebClient, body: dict[str, Any]) -> None:
        editor, article_id = body["user"]["id"], body["actions"][0]["value"]
        try:
            article = self.drafts.discard(article_id, editor=editor)
        except (DraftError, PermissionDenied) as error:
            self._refuse(client, body, error)
            return
        self.desk.sends.update(
            body["channel"]["id"],
            body["message"]["ts"],
            f"Draft discarded: {escape_mrkdwn(article.title)}",
            key=_interaction_key(body),
            blocks=as_payload(
                [
                    SectionBlock(
                        text=MarkdownTextObject(
                            text=clip(
                                f"🗑 Draft `{escape_mrkdwn(article.id)}` "
                                f"(“{escape_mrkdwn(article.title)}”) "
                                f"discarded by {user_mention(editor)}."
                            )
                        )
                    )
                ]
            ),
        )

    def open_edit_form(self, client: WebClient, body: dict[str, Any]) -> None:
        editor, article_id = body["user"]["id"], body["actions"][0]["value"]
        try:
            self.drafts.check_editor(editor)
            article = self.drafts.article(article_id)
        except (DraftError, PermissionDenied) as error:
            self._refuse(client, body, error)
            return
        if len(article.body) > BODY_MAX_CHARS:
            self._tell(
                client,
                body,
                f"`{escape_mrkdwn(article_id)}` is longer than Slack's {BODY_MAX_CHARS:,}-"
                f"character text box: edit it with `tier0 kb edit {escape_mrkdwn(article_id)}`.",
            )
            return
        where = json.dumps(
            {"id": article_id, "channel": body["channel"]["id"], "ts": body["message"]["ts"]}
        )
        client.views_open(trigger_id=body["trigger_id"], view=edit_modal(article, where).to_dict())

    def save_edit(self, client: WebClient, body: dict[str, Any]) -> None:
        editor = body["user"]["id"]
        where = json.loads(body["view"]["private_metadata"])
        values = submitted_values(body["view"])
        try:
            article = self.drafts.edit(
                where["id"], editor=editor, title=values["title"], body=values["body"]
            )
        except (DraftError, PermissionDenied) as error:
            client.chat_postEphemeral(
                channel=where["channel"], user=editor, text=escape_mrkdwn(_message(error))
            )
            return
        self.desk.sends.update(
            where["channel"],
            where["ts"],
            f"Article edited: {escape_mrkdwn(article.title)}",
            blocks=as_payload(draft_blocks(article, f"✏️ Edited by {user_mention(editor)}.")),
            key=f"draft-edited:{body['view']['id']}",
        )

    def _change(
        self,
        client: WebClient,
        body: dict[str, Any],
        change: Callable[[str, str], Article],
        note: str,
    ) -> None:
        editor, article_id = body["user"]["id"], body["actions"][0]["value"]
        try:
            article = change(editor, article_id)
        except (DraftError, PermissionDenied) as error:
            self._refuse(client, body, error)
            return
        self.desk.sends.update(
            body["channel"]["id"],
            body["message"]["ts"],
            f"Article {article.status}: {escape_mrkdwn(article.title)}",
            blocks=as_payload(draft_blocks(article, note.format(who=user_mention(editor)))),
            key=_interaction_key(body),
        )

    def _refuse(self, client: WebClient, body: dict[str, Any], error: Exception) -> None:
        text = NOT_AN_EDITOR if isinstance(error, PermissionDenied) else _message(error)
        self._tell(client, body, escape_mrkdwn(text))

    @staticmethod
    def _tell(client: WebClient, body: dict[str, Any], text: str) -> None:
        client.chat_postEphemeral(channel=body["channel"]["id"], user=body["user"]["id"], text=text)


def _message(error: Exception) -> str:
    return getattr(error, "message", None) or str(error)


def _interaction_key(body: dict[str, Any]) -> str:
    """One click on a draft's button, as Slack names it: who, which button, when."""
    action = body["actions"][0]
    return (
        f"draft-click:{body['user']['id']}:{action['action_id']}:{action['value']}:"
        f"{action.get('action_ts') or body['message']['ts']}"
    )


def register(app: App, desk: SlackDesk) -> SlackDrafts:
    from bot.slack.desk import SORRY
    from bot.slack.listeners.actions import acknowledged

    drafts = SlackDrafts(desk)

    def save_draft(ack: Ack, shortcut: dict[str, Any], client: WebClient, logger: Logger) -> None:
        ack()

        def work() -> None:
            try:
                drafts.save_draft(client, shortcut)
            except Exception:
                logger.exception("failed to save an article draft")
                client.chat_postEphemeral(
                    channel=shortcut["channel"]["id"], user=shortcut["user"]["id"], text=SORRY
                )

        desk.later(work)

    register_shortcut: Callable[..., Any] = app.shortcut(SAVE_DRAFT_SHORTCUT)
    register_shortcut(save_draft)
    app.action(PUBLISH_ACTION)(acknowledged(desk, drafts.publish))
    app.action(DISCARD_ACTION)(acknowledged(desk, drafts.discard))

    def edit_button(ack: Ack, body: dict[str, Any], client: WebClient, logger: Logger) -> None:
        ack()
        try:
            drafts.open_edit_form(client, body)  # the trigger expires in 3 s
        except Exception:
            logger.exception("failed to open the article edit form")

    app.action(EDIT_ACTION)(edit_button)

    def edit_submitted(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
    ) -> None:
        values = submitted_values(view)
        errors = {
            block: "This cannot be empty."
            for block in ("title", "body")
            if not values.get(block, "").strip()
        }
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()

        desk.later_logged(lambda: drafts.save_edit(client, body), "save an article edit")

    app.view(EDIT_VIEW)(edit_submitted)
    return drafts
