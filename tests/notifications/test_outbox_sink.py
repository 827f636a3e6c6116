"""The services' notifications reach people through the outbox, committed with the change."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.fake_slack import FakeSlackApi
from tests.local_smtp import LocalSmtpServer
from tests.notifications.conftest import FakeClock
from tickets.delivery import OutboxDelivery, SlackSender, SmtpSender
from tickets.notifications import Notification, NotificationChannel, NotificationKind
from tickets.outbox import OutboxChannel, list_messages
from tickets.outbox_sink import OutboxSink

RESOLVED_BY_MAIL = Notification(
    kind=NotificationKind.TICKET_RESOLVED,
    recipient="ana@northwind.test",
    text="Your ticket was resolved: the VPN certificate was renewed.",
    channel=NotificationChannel.EMAIL,
    ticket_number="T-1001",
    subject="VPN drops every hour",
)
RESOLVED_IN_SLACK = Notification(
    kind=NotificationKind.TICKET_RESOLVED,
    recipient="UANA",
    text="Your ticket T-1001 was resolved.",
    ticket_number="T-1001",
    slack_channel="DANA",
    slack_thread_ts="1700000001.000001",
)


def test_a_rolled_back_change_notifies_nobody(
    session_factory: sessionmaker[Session], clock: FakeClock
) -> None:
    sink = OutboxSink(clock=clock)
    with pytest.raises(RuntimeError), session_factory.begin() as session:
        sink.notify(session, RESOLVED_BY_MAIL)
        raise RuntimeError("resolve failed")

    assert list_messages(session_factory) == []


def test_a_committed_change_is_mailed_and_posted_once(
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    smtp_server: LocalSmtpServer,
    smtp_sender: SmtpSender,
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
) -> None:
    sink = OutboxSink(
        clock=clock,
        slack_renderer=lambda n: [{"type": "section", "text": {"type": "mrkdwn", "text": n.text}}],
    )
    with session_factory.begin() as session:
        sink.notify(session, RESOLVED_BY_MAIL)
        sink.notify(session, RESOLVED_IN_SLACK)

    worker = OutboxDelivery(
        session_factory,
        {OutboxChannel.EMAIL: smtp_sender, OutboxChannel.SLACK: slack_sender},
        clock=clock,
    )
    assert worker.deliver_all_due().delivered == 2

    [mail] = smtp_server.wait_for(1)
    assert mail["Subject"] == "[T-1001] VPN drops every hour"
    assert "Reply to this mail to add a comment to T-1001" in mail.get_content()
    [post] = slack_api.calls_to("chat.postMessage")
    assert (post.args["channel"], post.args["thread_ts"]) == ("DANA", "1700000001.000001")
    assert post.args["blocks"][0]["text"]["text"] == "Your ticket T-1001 was resolved."


def test_a_notification_named_twice_by_its_caller_is_stored_once(
    session_factory: sessionmaker[Session], clock: FakeClock
) -> None:
    sink = OutboxSink(clock=clock)
    warning = Notification(
        kind=NotificationKind.SLA_WARNING,
        recipient="CTEAM",
        text="T-1001 is at 75 % of its resolution target",
        ticket_number="T-1001",
        detail={"dedupe_key": "sla-warning:T-1001:resolution"},
    )
    for _ in range(2):  # the SLA job runs again before the first run's warning went out
        with session_factory.begin() as session:
            sink.notify(session, warning)

    assert len(list_messages(session_factory)) == 1


def test_what_people_wrote_reaches_slack_as_text_not_as_a_channel_ping(
    session_factory: sessionmaker[Session],
    clock: FakeClock,
    slack_api: FakeSlackApi,
    slack_sender: SlackSender,
) -> None:
    hostile = Notification(
        kind=NotificationKind.COMMENT_ADDED,
        recipient="CSERVICEDESK",
        text="ana@northwind.test on T-1001: <!channel> see <https://evil.test|the fix> & more",
        ticket_number="T-1001",
    )
    with session_factory.begin() as session:
        OutboxSink(clock=clock).notify(session, hostile)

    OutboxDelivery(session_factory, {OutboxChannel.SLACK: slack_sender}, clock=clock).deliver_due()

    [post] = slack_api.calls_to("chat.postMessage")
    assert post.args["text"] == (
        "ana@northwind.test on T-1001: &lt;!channel&gt; see "
        "&lt;https://evil.test|the fix&gt; &amp; more"
    )
