"""Slack delivers events at least once; tier0 answers each exactly once, crash or not."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from bot.background import build_scheduler
from bot.config import Settings
from bot.slack.inbox import InboxState
from tests.slack.conftest import DM_CHANNEL, EMPLOYEE, SlackDesk
from tickets.models import utc_now

RETRY_HEADERS = [
    {},
    {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
    {"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"},
]


def test_an_event_delivered_three_times_gets_one_reply(slack: SlackDesk) -> None:
    for headers in RETRY_HEADERS:
        status, _ = slack.direct_message(
            "how do i connect to the vpn from home",
            ts="1700000101.000001",
            event_id="EvTHRICE",
            headers=headers,
        )
        assert status == 200
    [reply] = slack.api.wait_for("chat.postMessage")
    assert reply.args["thread_ts"] == "1700000101.000001"
    time.sleep(1.0)  # a wrongly repeated handler would post by now
    assert len(slack.api.calls_to("chat.postMessage")) == 1
    assert slack.service.inbox.state_of("EvTHRICE") is InboxState.DONE


def test_a_request_for_a_person_delivered_three_times_opens_one_ticket(slack: SlackDesk) -> None:
    for headers in RETRY_HEADERS:
        slack.direct_message(
            "my laptop screen is cracked, please send someone",
            ts="1700000102.000001",
            event_id="EvTHRICE2",
            headers=headers,
        )
    slack.api.wait_for("chat.postMessage", count=2)  # the ticket number and the triage post
    time.sleep(1.0)
    assert len(slack.api.calls_to("chat.postMessage")) == 2
    assert len(slack.tier0.tickets.list_for_requester(EMPLOYEE)) == 1


def test_an_event_stored_while_no_process_answers_is_answered_by_the_sweep(
    slack: SlackDesk,
) -> None:
    # Acknowledged and stored, but nothing answers (the answering process is down):
    # Slack will not deliver it again.
    slack.service.answering.stop()
    status, _ = slack.direct_message(
        "i forgot my password", ts="1700000103.000001", event_id="EvORPHAN"
    )
    assert status == 200
    time.sleep(0.5)
    assert slack.api.calls_to("chat.postMessage") == []
    assert slack.service.inbox.state_of("EvORPHAN") is InboxState.RECEIVED

    # Not yet: an answering process may still be about to claim it.
    assert slack.service.redrive_stale_events(timedelta(minutes=5)) == 0
    assert slack.service.redrive_stale_events(timedelta(0)) == 1
    [reply] = slack.api.wait_for("chat.postMessage")
    assert reply.args["channel"] == DM_CHANNEL
    assert reply.args["thread_ts"] == "1700000103.000001"
    slack.service.workers.join()
    assert slack.service.inbox.state_of("EvORPHAN") is InboxState.DONE
    assert slack.service.redrive_stale_events(timedelta(0)) == 0


def test_an_event_whose_worker_died_mid_handling_is_taken_over_when_its_lease_ends(
    slack: SlackDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = slack.service.inbox
    slack.service.answering.stop()
    slack.direct_message("i forgot my password", ts="1700000104.000001", event_id="EvDIED")
    # An answering process claims it and dies: its claim stays, with a (here short) lease.
    monkeypatch.setattr(inbox, "lease", timedelta(milliseconds=300))
    [claimed] = inbox.claim_waiting(10)
    assert claimed.event_id == "EvDIED"
    monkeypatch.undo()
    assert not inbox.claim("EvDIED")  # nobody else may take it while the lease holds
    assert inbox.claim_waiting(10) == []
    assert slack.service.redrive_stale_events(timedelta(0)) == 0

    time.sleep(0.4)  # the lease runs out
    assert slack.service.redrive_stale_events(timedelta(0)) == 1
    [reply] = slack.api.wait_for("chat.postMessage")
    assert reply.args["thread_ts"] == "1700000104.000001"
    slack.service.workers.join()
    assert inbox.state_of("EvDIED") is InboxState.DONE


def test_an_event_that_keeps_failing_stops_being_retried(
    slack: SlackDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Slack is down")

    monkeypatch.setattr(slack.service.desk, "answer_message", broken)
    slack.direct_message("i forgot my password", ts="1700000105.000001", event_id="EvBROKEN")
    deadline = time.monotonic() + 10
    while slack.service.inbox.state_of("EvBROKEN") is not InboxState.FAILED:
        assert time.monotonic() < deadline, "the failure was not recorded"
        time.sleep(0.02)
    assert slack.service.redrive_stale_events(timedelta(0)) == 0


def test_a_forged_or_replayed_event_is_not_stored(slack: SlackDesk) -> None:
    status, _ = slack.direct_message(
        "hello", ts="1700000106.000001", event_id="EvFORGED", secret="not-the-secret"
    )
    assert status == 401
    status, _ = slack.direct_message(
        "hello",
        ts="1700000106.000002",
        event_id="EvREPLAYED",
        headers={"X-Slack-Request-Timestamp": str(int(time.time()) - 3600)},
    )
    assert status == 401
    assert slack.service.inbox.state_of("EvFORGED") is None
    assert slack.service.inbox.state_of("EvREPLAYED") is None


def test_the_worker_forgets_answered_events_after_the_retention_but_never_pending_ones(
    slack: SlackDesk,
) -> None:
    inbox = slack.service.inbox
    slack.direct_message("i forgot my password", ts="1700000120.000001", event_id="EvANSWERED")
    slack.api.wait_for("chat.postMessage")
    slack.service.workers.join()
    assert inbox.state_of("EvANSWERED") is InboxState.DONE
    # Work still owed: one never started (the answering process is down), one being
    # handled; and one whose handling failed, kept for someone to look at.
    slack.service.answering.stop()
    for event_id in ("EvWAITING", "EvCLAIMED", "EvFAILED"):
        assert inbox.receive(event_id, "{}")
    assert inbox.claim("EvCLAIMED") and inbox.claim("EvFAILED")
    inbox.fail("EvFAILED")
    settings = slack.tier0.settings
    assert settings.slack_inbox_retention_days == 7

    def cleanup_at(at: datetime) -> None:
        scheduler = build_scheduler(settings, slack.tier0.session_factory, clock=lambda: at)
        next(job for job in scheduler.jobs if job.name == "slack inbox cleanup").run()

    # Within the retention a Slack retry of the answered event is still recognised.
    cleanup_at(utc_now() + timedelta(days=6))
    assert inbox.state_of("EvANSWERED") is InboxState.DONE
    status, _ = slack.direct_message(
        "i forgot my password", ts="1700000120.000001", event_id="EvANSWERED"
    )
    assert status == 200
    slack.service.workers.join()
    assert inbox.state_of("EvANSWERED") is InboxState.DONE
    assert not inbox.receive("EvANSWERED", "{}")  # still known: not stored as new
    assert len(slack.api.calls_to("chat.postMessage")) == 1

    cleanup_at(utc_now() + timedelta(days=8))
    assert inbox.state_of("EvANSWERED") is None
    assert inbox.state_of("EvWAITING") is InboxState.RECEIVED
    assert inbox.state_of("EvCLAIMED") is InboxState.PROCESSING
    assert inbox.state_of("EvFAILED") is InboxState.FAILED


def test_the_inbox_retention_is_a_setting_of_at_least_a_day() -> None:
    assert Settings(TIER0_SLACK_INBOX_RETENTION_DAYS="30").slack_inbox_retention_days == 30
    with pytest.raises(ValidationError, match="TIER0_SLACK_INBOX_RETENTION_DAYS"):
        Settings(TIER0_SLACK_INBOX_RETENTION_DAYS="0")
