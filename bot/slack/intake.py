"""The ack path for Events API deliveries: verify the signature, store, acknowledge.

Slack wants an answer within three seconds and redelivers what it did not see
acknowledged, so an event delivery needs exactly three things before its 200: a valid
signature (a forged or stale request gets 401 and stores nothing), the event kept in the
inbox (durably: the 200 is sent only after the commit), and the redelivery check (the
inbox's primary key is Slack's event id). Everything else, bolt's listener matching
included, runs later in whichever process answers events (`bot.slack.answering`), so
the thread that acknowledges never waits for the GIL behind answer work.

Interactivity and slash commands are not events: they go through bolt as before (a
trigger id expires in three seconds, a view submission answers with its errors).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from slack_sdk.signature import SignatureVerifier

logger = logging.getLogger(__name__)

# Called with an event just stored (not a redelivery), after its commit.
OnStored = Callable[[str, dict[str, Any]], None]


class EventStore(Protocol):
    """Where events are kept before their ack (`SlackInbox`, or its `GroupCommit`)."""

    def receive(self, event_id: str, body: str) -> bool: ...


@dataclass(frozen=True)
class IntakeResult:
    """What the ack path did with a request: `status` to answer, or None to hand the
    request to bolt (not an event delivery, or one bolt must judge itself)."""

    status: int | None
    stored: bool = False
    # Said to the sender with a refusal.
    reason: str = ""


NOT_AN_EVENT = IntakeResult(None)
REJECTED = IntakeResult(401)


class EventIntake:
    def __init__(
        self,
        signing_secret: str,
        inbox: EventStore,
        *,
        on_stored: OnStored | None = None,
    ) -> None:
        self._verifier = SignatureVerifier(signing_secret)
        self._inbox = inbox
        self._on_stored = on_stored

    def take(self, body: bytes, headers: Mapping[str, str]) -> IntakeResult:
        """Handle one POST to the events URL; `headers` with lower-case names."""
        # Only a JSON Events API callback is ours; forms (interactions, commands) and
        # url_verification go to bolt. A cheap look at the start before parsing anything.
        if b'"event_callback"' not in body:
            return NOT_AN_EVENT
        if not self._verifier.is_valid(
            body=body,
            timestamp=headers.get("x-slack-request-timestamp"),
            signature=headers.get("x-slack-signature"),
        ):
            return REJECTED
        try:
            payload = json.loads(body)
        except ValueError:
            return NOT_AN_EVENT  # bolt answers a malformed body as it always has
        if not isinstance(payload, dict) or payload.get("type") != "event_callback":
            return NOT_AN_EVENT
        event_id = payload.get("event_id")
        if not isinstance(event_id, str):
            return NOT_AN_EVENT
        try:
            # The body exactly as Slack signed it: what is dispatched later is what came.
            stored = self._inbox.receive(event_id, body.decode("utf-8"))
        except ValueError:
            logger.warning("refusing a Slack event with an unusable id %r", event_id[:40])
            return IntakeResult(400, reason="event_id is not a Slack event id")
        if not stored:
            retry = headers.get("x-slack-retry-num", "0")
            reason = headers.get("x-slack-retry-reason", "-")
            logger.info("Slack event %s delivered again (retry %s, %s)", event_id, retry, reason)
            return IntakeResult(200)
        if self._on_stored is not None:
            try:
                self._on_stored(event_id, payload)
            except Exception:
                # Stored is enough: the sweep answers what was not handed on.
                logger.exception("could not hand Slack event %s on; the sweep will", event_id)
        return IntakeResult(200, stored=True)
