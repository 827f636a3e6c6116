"""Stale articles: their `review_by` date has passed, so their owner should look at them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from knowledge.articles import SLACK_USER_ID, Article


@dataclass(frozen=True)
class StaleArticle:
    article_id: str
    title: str
    owner: str | None
    review_by: str
    days_overdue: int
    path: str


def stale_articles(articles: Sequence[Article], today: dt.date) -> list[StaleArticle]:
    """Live articles (published or draft) whose review date is before today, most overdue
    first. Retired articles are nobody's to-do."""
    stale: list[StaleArticle] = []
    for article in articles:
        if article.status == "retired" or article.review_by is None:
            continue
        due = dt.date.fromisoformat(article.review_by)
        if due < today:
            stale.append(
                StaleArticle(
                    article_id=article.id,
                    title=article.title,
                    owner=article.owner,
                    review_by=article.review_by,
                    days_overdue=(today - due).days,
                    path=str(article.path),
                )
            )
    return sorted(stale, key=lambda item: (-item.days_overdue, item.article_id))


@dataclass
class OwnerNotices:
    # Owner (a Slack id, reminded by DM, or an email address, by mail) → article ids.
    notified: dict[str, list[str]] = field(default_factory=dict)
    # Owners no configured channel reaches (an email address without SMTP, a Slack id
    # without Slack) → article ids.
    not_reachable: dict[str, list[str]] = field(default_factory=dict)
    no_owner: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # owner → the channel's error


def is_slack_user(owner: str) -> bool:
    return bool(SLACK_USER_ID.match(owner))


def review_reminder(owner_articles: Sequence[StaleArticle]) -> str:
    lines = [
        f"You own {len(owner_articles)} knowledge article(s) past their review date. "
        "Please check they are still right, then move `review_by` forward "
        "(or retire the article):"
    ]
    lines += [
        f"• {item.title} (`{item.article_id}`): review was due {item.review_by}, "
        f"{item.days_overdue} day(s) ago"
        for item in owner_articles
    ]
    return "\n".join(lines)


def review_subject(owner_articles: Sequence[StaleArticle]) -> str:
    return f"{len(owner_articles)} knowledge article(s) of yours past their review date"


def notify_owners(
    session_factory: sessionmaker[Session],
    stale: Sequence[StaleArticle],
    today: dt.date,
    deliver: Callable[[], object],
    *,
    by_slack: bool = True,
    by_email: bool = False,
) -> OwnerNotices:
    """Owe each owner today's review reminder through the outbox (a Slack DM to a Slack
    id, a mail to an email address, as the channels allow), have `deliver` run a delivery
    round at once, and say what became of each reminder.

    Like every tier0 send it is written to the outbox first (`enqueue_review_reminders`),
    so it is once a day per owner however often this runs, and a reminder Slack refused
    for now stays owed: the worker retries it. `notified` lists the owners Slack took
    theirs from (today, by this run or an earlier one); `failed` the others, with
    the channel's last answer.
    """
    from tickets.outbox import OutboxMessage, OutboxStatus

    notices = enqueue_review_reminders(
        session_factory, stale, today, by_slack=by_slack, by_email=by_email
    )
    owed = dict(notices.notified)
    notices.notified = {}
    if not owed:
        return notices
    deliver()
    keys = {_reminder_key(owner, today): owner for owner in owed}
    with session_factory() as session:
        rows = session.execute(
            select(OutboxMessage.dedupe_key, OutboxMessage.status, OutboxMessage.last_error).where(
                OutboxMessage.dedupe_key.in_(list(keys))
            )
        ).all()
    for key, status, last_error in rows:
        owner = keys[key]
        if status == OutboxStatus.DELIVERED.value:
            notices.notified[owner] = owed[owner]
        elif status == OutboxStatus.DEAD.value:
            notices.failed[owner] = f"{last_error or 'refused'} (given up: `tier0 outbox` lists it)"
        else:
            notices.failed[owner] = (
                f"{last_error or 'not delivered yet'} (still owed: the worker retries it)"
            )
    return notices


def _reminder_key(owner: str, today: dt.date) -> str:
    return f"kb-stale:{owner}:{today.isoformat()}"


def enqueue_review_reminders(
    session_factory: sessionmaker[Session],
    stale: Sequence[StaleArticle],
    today: dt.date,
    *,
    by_slack: bool = True,
    by_email: bool = False,
) -> OwnerNotices:
    """Owe each owner one review reminder for `today`, through the outbox: a Slack DM to
    an owner given as a Slack id (`by_slack`), a mail to one given as an email address
    (`by_email`).

    The worker runs this on its schedule; the outbox's dedupe key (owner and day) makes
    it one reminder per owner per day however often the job runs and however many
    workers run it. Owners no channel reaches and articles without an owner are returned.
    """
    from tickets.outbox import enqueue_email, enqueue_slack_message

    notices = OwnerNotices()
    by_owner: dict[str, list[StaleArticle]] = {}
    for item in stale:
        if item.owner is None:
            notices.no_owner.append(item.article_id)
        else:
            by_owner.setdefault(item.owner, []).append(item)
    with session_factory.begin() as session:
        for owner, items in by_owner.items():
            ids = [item.article_id for item in items]
            if is_slack_user(owner) and by_slack:
                enqueue_slack_message(
                    session,
                    channel=owner,  # a user id: Slack delivers it as a DM from the app
                    text=review_reminder(items),
                    dedupe_key=_reminder_key(owner, today),
                )
            elif not is_slack_user(owner) and by_email:
                enqueue_email(
                    session,
                    to=owner,  # front matter takes a Slack id or an email address
                    subject=review_subject(items),
                    body=review_reminder(items),
                    dedupe_key=_reminder_key(owner, today),
                )
            else:
                notices.not_reachable[owner] = ids
                continue
            notices.notified[owner] = ids
    return notices
