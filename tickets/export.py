"""A person's data, all of it, for them to take away (`tier0 export-user`).

It holds what tier0 stores about or from them: their profile, the tickets they opened
with the public conversation on each, what they wrote anywhere, approvals they gave,
ratings, the questions they asked the assistant and their chat transcripts. Agents'
internal notes on their tickets are the desk's working papers and stay out.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tickets.directory import find_user, is_admin, user_view
from tickets.errors import PermissionDenied
from tickets.models import (
    Approval,
    Asset,
    Comment,
    Conversation,
    CsatResponse,
    Question,
    Ticket,
    TicketEvent,
)
from tickets.steps import number_of


def export_user_data(
    session_factory: sessionmaker[Session], handle: str, *, as_user: str
) -> dict[str, Any]:
    """Everything about ``handle``; only they themselves or an admin may ask."""
    with session_factory.begin() as session:
        if as_user != handle and not is_admin(find_user(session, as_user)):
            raise PermissionDenied("Only the person themselves or an admin can export their data.")
        user = find_user(session, handle)
        tickets = list(
            session.scalars(select(Ticket).where(Ticket.requester == handle).order_by(Ticket.id))
        )
        numbers = {ticket.id: number_of(ticket) for ticket in tickets}
        ticket_ids = list(numbers)
        public_comments: dict[int, list[dict[str, Any]]] = {}
        if ticket_ids:
            for comment in session.scalars(
                select(Comment)
                .where(Comment.ticket_id.in_(ticket_ids), Comment.internal.is_(False))
                .order_by(Comment.id)
            ):
                public_comments.setdefault(comment.ticket_id, []).append(_comment(comment))
        profile = None if user is None else user_view(session, user)
        data: dict[str, Any] = _jsonable(
            {
                "user": None
                if profile is None
                else {
                    "handle": profile.handle,
                    "name": profile.name,
                    "email": profile.email,
                    "slack_id": profile.slack_id,
                    "roles": sorted(role.value for role in profile.roles),
                    "team": profile.team,
                    "manager": profile.manager,
                },
                "tickets": [
                    {
                        "number": numbers[t.id],
                        "type": t.type,
                        "title": t.title,
                        "description": t.description,
                        "status": t.status,
                        "priority": t.priority,
                        "category": t.category,
                        "source": t.source,
                        "created_at": t.created_at,
                        "resolved_at": t.resolved_at,
                        "resolution": t.resolution,
                        "form_answers": t.form_answers or {},
                        "transcript": list(t.transcript),
                        "articles_tried": list(t.articles_tried),
                        "comments": public_comments.get(t.id, []),
                    }
                    for t in tickets
                ],
                "comments_written": [
                    _comment(c) | {"ticket": _ticket_number(session, c.ticket_id)}
                    for c in session.scalars(
                        select(Comment)
                        .where(Comment.author == handle, Comment.internal.is_(False))
                        .order_by(Comment.id)
                    )
                ],
                "actions": [
                    {
                        "ticket": _ticket_number(session, e.ticket_id),
                        "what": e.kind,
                        "from": e.from_status,
                        "to": e.to_status,
                        "at": e.created_at,
                    }
                    for e in session.scalars(
                        select(TicketEvent)
                        .where(TicketEvent.actor == handle)
                        .order_by(TicketEvent.id)
                    )
                ],
                "approvals_given": [
                    {
                        "ticket": _ticket_number(session, a.ticket_id),
                        "decision": a.decision,
                        "comment": a.comment,
                        "decided_at": a.decided_at,
                    }
                    for a in session.scalars(
                        select(Approval).where(Approval.approver == handle).order_by(Approval.id)
                    )
                ],
                "ratings": [
                    {
                        "ticket": _ticket_number(session, r.ticket_id),
                        "score": r.score,
                        "comment": r.comment,
                        "at": r.created_at,
                    }
                    for r in session.scalars(
                        select(CsatResponse).where(CsatResponse.requester == handle)
                    )
                ],
                "questions": [
                    {
                        "text": q.text,
                        "intent": q.intent,
                        "answered": q.answered,
                        "helpful": q.helpful,
                        "asked_at": q.asked_at,
                    }
                    for q in session.scalars(
                        select(Question).where(Question.asker == handle).order_by(Question.id)
                    )
                ],
                "conversations": [
                    {"started_at": c.created_at, "transcript": list(c.transcript)}
                    for c in session.scalars(
                        select(Conversation).where(Conversation.requester == handle)
                    )
                ],
                "assets": [
                    {"tag": a.tag, "type": a.type, "name": a.name, "serial": a.serial}
                    for a in session.scalars(select(Asset).where(Asset.owner == handle))
                ],
            }
        )
        return data


def _comment(comment: Comment) -> dict[str, Any]:
    return {
        "author": comment.author,
        "body": comment.body,
        "via": comment.via,
        "at": comment.created_at,
    }


def _ticket_number(session: Session, ticket_id: int) -> str | None:
    ticket = session.get(Ticket, ticket_id)
    return None if ticket is None else number_of(ticket)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
