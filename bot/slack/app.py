"""The bolt app: the same app serves Socket Mode and the HTTP Events API.

Every request is acknowledged at once; the work runs afterwards on a bounded worker
pool. Events are kept in the inbox before the ack, so a redelivery is recognised and a
crash mid-handling is recovered by the sweeper.

Over HTTP an event delivery is only verified, stored and acknowledged
(`bot.slack.intake`); `EventAnswering` claims it from the inbox and hands it to the
listeners, in this process (`answer_events=True`) or in an answering process of its own
(`tier0 serve --http` starts one). In Socket Mode bolt's middleware stores each event
before its ack and the listeners queue the work here.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_sdk import WebClient

from bot.runtime import Tier0
from bot.slack.answering import EventAnswering
from bot.slack.desk import REDRIVE_CLAIMED, SlackDesk
from bot.slack.inbox import SlackInbox, StaleEvent
from bot.slack.intake import EventIntake, OnStored
from bot.slack.listeners import register_listeners
from bot.slack.sends import IDLE_POLL_SECONDS, SlackSends
from bot.slack.workers import WorkerPool

logger = logging.getLogger(__name__)

# Two cores: more threads than this only queue for the GIL and the embedding model.
DEFAULT_WORKERS = 3
# Acks must not wait behind embeddings: the workers run at a lower CPU priority.
WORKER_NICENESS = 10
SWEEP_INTERVAL_SECONDS = 10.0
ACKING_SENDS_POLL_SECONDS = 30.0
# An event received this long ago and never started is picked up by the sweeper.
UNSTARTED_GRACE = timedelta(seconds=30)


@dataclass
class SlackService:
    """The bolt app with the parts that outlive a request: workers, inbox, sweeper."""

    app: App
    desk: SlackDesk
    inbox: SlackInbox
    workers: WorkerPool
    sends: SlackSends
    # The HTTP ack path for events; None without a signing secret (Socket Mode).
    intake: EventIntake | None
    answering: EventAnswering
    _stop: threading.Event = field(default_factory=threading.Event)

    def dispatch_claimed(self, event: StaleEvent) -> None:
        """Run the listeners for an event this process has claimed in the inbox."""
        response = self.app.dispatch(
            BoltRequest(
                body=json.loads(event.body),
                mode="socket_mode",  # verified when it arrived
                context={REDRIVE_CLAIMED: event.event_id},
            )
        )
        if response.status == 404:
            # No listener takes this kind of event: nothing to do, nothing to retry.
            logger.info("no listener for Slack event %s; settled", event.event_id)
            self.inbox.finish(event.event_id)

    def redrive_stale_events(self, waiting_longer_than: timedelta = UNSTARTED_GRACE) -> int:
        """Dispatch again the events nobody is working on; returns how many."""
        redriven = 0
        for stale in self.inbox.stale(waiting_longer_than=waiting_longer_than):
            if not self.inbox.claim(stale.event_id):
                continue
            logger.warning("handling Slack event %s again: it was never finished", stale.event_id)
            self.dispatch_claimed(stale)
            redriven += 1
        return redriven

    def start_sweeper(self, interval: float = SWEEP_INTERVAL_SECONDS) -> None:
        def sweep() -> None:
            while not self._stop.wait(interval):
                if self.workers.backlog:
                    continue  # busy: what waits in the inbox will still be there
                try:
                    self.redrive_stale_events()
                except Exception:
                    logger.exception("the Slack inbox sweep failed")

        threading.Thread(target=sweep, name="slack-inbox-sweeper", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.answering.stop()
        self.workers.stop()
        self.sends.stop()


def build_slack_service(
    tier0: Tier0,
    *,
    process_before_response: bool = False,
    workers: int = DEFAULT_WORKERS,
    answer_events: bool = True,
) -> SlackService:
    """The app and its parts. With `answer_events` this process also answers the events
    its HTTP intake stores (started here); without, another process does
    (`tier0 answer-events`) and this one only acknowledges them."""
    settings = tier0.settings
    base_url = (
        settings.slack_api_url
        if settings.slack_api_url.endswith("/")
        else settings.slack_api_url + "/"
    )
    client = WebClient(token=settings.slack_bot_token, base_url=base_url)
    app = App(
        client=client,
        signing_secret=settings.slack_signing_secret,
        process_before_response=process_before_response,
        # Socket Mode needs no signing secret; bolt still wants one to build the app.
        request_verification_enabled=bool(settings.slack_signing_secret),
    )
    inbox = SlackInbox(tier0.session_factory)
    pool = WorkerPool(workers=workers, niceness=WORKER_NICENESS)
    sends = SlackSends(
        tier0.session_factory,
        token=settings.slack_bot_token or "",
        api_url=base_url,
        # A process that only acks delivers what it writes itself (it is woken for that)
        # and leaves the outbox's polling to the answering processes: delivering their
        # replies here would put that work back beside the acks.
        poll_seconds=IDLE_POLL_SECONDS if answer_events else ACKING_SENDS_POLL_SECONDS,
    )
    sends.start()
    desk = SlackDesk(tier0, inbox=inbox, workers=pool, sends=sends)

    def dispatch(event: StaleEvent) -> None:
        service.dispatch_claimed(event)

    answering = EventAnswering(inbox, pool, dispatch)
    on_stored = answering.wake if answer_events else None
    app.use(_keep_events_in(inbox, on_stored))
    register_listeners(app, desk)
    intake = (
        EventIntake(settings.slack_signing_secret, inbox.for_acks(), on_stored=on_stored)
        if settings.slack_signing_secret
        else None
    )
    service = SlackService(app, desk, inbox, pool, sends, intake, answering)
    if answer_events:
        answering.start()
    return service


def create_slack_app(tier0: Tier0, *, process_before_response: bool = False) -> App:
    return build_slack_service(tier0, process_before_response=process_before_response).app


def _keep_events_in(inbox: SlackInbox, on_stored: OnStored | None) -> Callable[..., Any]:
    """Store each event and acknowledge it; the listeners run when it is claimed.

    What reaches bolt's middleware unclaimed is an event from Socket Mode (or from HTTP
    without the intake): it is stored and acknowledged here, and `EventAnswering` hands
    it to the listeners like every other event, so all events take one path from the
    inbox. A redelivery is acknowledged without acting. Runs after bolt's signature
    check, so a forged or stale request stores nothing.
    """

    def keep_event(req: BoltRequest, resp: BoltResponse, next: Callable[[], Any]) -> Any:
        body: dict[str, Any] = req.body
        event_id = body.get("event_id")
        if body.get("type") != "event_callback" or not isinstance(event_id, str):
            return next()
        if req.context.get(REDRIVE_CLAIMED) == event_id:
            return next()
        if inbox.receive(event_id, _as_json(body)):
            if on_stored is not None:
                on_stored(event_id, body)
            return BoltResponse(status=200, body="")
        retry = (req.headers.get("x-slack-retry-num") or ["0"])[0]
        reason = (req.headers.get("x-slack-retry-reason") or ["-"])[0]
        logger.info("Slack event %s delivered again (retry %s, %s)", event_id, retry, reason)
        return BoltResponse(status=200, body="")

    return keep_event


def _as_json(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))
