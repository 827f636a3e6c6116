"""Service requests from the catalog, changes, and the approvals both go through.

A catalog request becomes a service-request ticket for the item's fulfilment team. If the
item needs approval, the ticket waits (nobody can start it) while the approvers decide,
one after another; once the last approves, the team gets it and the requester is told; a
rejection closes it and tells the requester why. A change request goes the same way,
then is scheduled, then implemented or failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tickets.directory import (
    find_user,
    is_admin,
    require_role,
    require_team,
    require_user,
    require_worker,
)
from tickets.errors import PermissionDenied, TicketError
from tickets.lifecycle import TicketAction
from tickets.models import (
    Approval,
    ApprovalState,
    CatalogItem,
    ChangeState,
    IdempotencyKey,
    Role,
    SlaPolicy,
    Team,
    Ticket,
    TicketEventKind,
    TicketSource,
    TicketStatus,
    TicketType,
    User,
)
from tickets.notifications import NotificationKind
from tickets.redaction import redact_secrets
from tickets.service import TicketService, TicketView, ticket_title
from tickets.sla import clear_config_cache
from tickets.steps import (
    display_name,
    notify_requester,
    notify_team,
    notify_user,
    number_of,
    record_event,
    ticket_by_number,
    transition,
)

MAX_ANSWER_LENGTH = 2_000


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    required: bool
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class CatalogItemView:
    key: str
    name: str
    description: str
    fields: tuple[FormField, ...]
    approvers: tuple[str, ...]
    team: str

    @property
    def needs_approval(self) -> bool:
        return bool(self.approvers)


@dataclass(frozen=True)
class ApprovalView:
    ticket_number: str
    ticket_title: str
    requester: str
    approver: str
    position: int
    decision: ApprovalState
    comment: str | None
    decided_at: datetime | None


class CatalogService:
    """The service catalog, approvals and changes, on top of a ``TicketService``."""

    def __init__(self, tickets: TicketService) -> None:
        self._tickets = tickets
        self._session_factory: sessionmaker[Session] = tickets.session_factory

    # -- catalog ---------------------------------------------------------------------

    def items(self) -> list[CatalogItemView]:
        with self._session_factory.begin() as session:
            rows = session.scalars(
                select(CatalogItem).where(CatalogItem.active.is_(True)).order_by(CatalogItem.name)
            )
            return [_item_view(session, item) for item in rows]

    def item(self, key: str) -> CatalogItemView:
        with self._session_factory.begin() as session:
            return _item_view(session, _item_by_key(session, key))

    def request(
        self,
        key: str,
        *,
        as_user: str,
        answers: Mapping[str, str],
        source: str = TicketSource.CLI,
        idempotency_key: str | None = None,
    ) -> TicketView:
        """Ask for a catalog item; the ticket waits for approval if the item needs it."""
        now = self._tickets.now()
        with self._session_factory.begin() as session:
            if idempotency_key is not None:
                seen = session.get(IdempotencyKey, idempotency_key)
                if seen is not None:
                    ticket = session.get(Ticket, seen.ticket_id)
                    if ticket is not None:
                        return TicketView.of(ticket)
            item = _item_by_key(session, key)
            checked = _checked_answers(item, answers)
            requester = find_user(session, as_user)
            approvers = _resolve_approvers(session, item, requester, as_user)
            summary = "; ".join(f"{name}: {value}" for name, value in checked.items())
            ticket = Ticket(
                requester=as_user,
                title=ticket_title(f"Request: {item.name}"),
                description=f"{item.name} requested.\n{summary}".strip(),
                status=TicketStatus.NEW.value,
                priority="P3",
                category="request",
                source=TicketSource(source).value,
                transcript=[],
                articles_tried=[],
                type=TicketType.SERVICE_REQUEST.value,
                tier=_tier_of(session, item.fulfilment_team_id),
                catalog_item_id=item.id,
                form_answers=checked,
                approval_state=ApprovalState.PENDING.value if approvers else None,
                reopen_count=0,
                created_at=now,
                updated_at=now,
            )
            team = session.get(Team, item.fulfilment_team_id)
            self._tickets.open_in_session(session, ticket, now=now, team=team)
            if idempotency_key is not None:
                session.add(
                    IdempotencyKey(key=idempotency_key, ticket_id=ticket.id, created_at=now)
                )
            self._ask_approvals(session, ticket, approvers, now)
            if approvers:
                notify_requester(
                    session,
                    self._tickets.notifications,
                    ticket,
                    NotificationKind.TICKET_OPENED,
                    f"{number_of(ticket)}: your request for {item.name} is waiting for "
                    f"approval by {display_name(session, approvers[0])}.",
                )
            session.flush()
            return TicketView.of(ticket)

    # -- changes ---------------------------------------------------------------------

    def request_change(
        self,
        *,
        as_user: str,
        title: str,
        description: str,
        approvers: list[str],
        team: str | None = None,
        priority: str = "P3",
    ) -> TicketView:
        """An agent proposes a change; it needs at least one approver other than them."""
        now = self._tickets.now()
        with self._session_factory.begin() as session:
            require_role(find_user(session, as_user), Role.AGENT, "request changes")
            handles = [require_user(session, handle.strip()).handle for handle in approvers]
            if not handles:
                raise TicketError("A change needs at least one approver.")
            if as_user in handles:
                raise TicketError("Nobody approves their own change: name someone else.")
            owner_team = None
            if team is not None:
                owner_team = require_team(session, team)
            ticket = Ticket(
                requester=as_user,
                title=ticket_title(title),
                description=redact_secrets(description).strip(),
                status=TicketStatus.NEW.value,
                priority=priority.strip().upper(),
                category="change",
                source=TicketSource.CLI.value,
                transcript=[],
                articles_tried=[],
                type=TicketType.CHANGE.value,
                tier="L2" if owner_team is None else owner_team.tier,
                form_answers={},
                approval_state=ApprovalState.PENDING.value,
                change_state=ChangeState.AWAITING_APPROVAL.value,
                reopen_count=0,
                created_at=now,
                updated_at=now,
            )
            if ticket.priority not in ("P1", "P2", "P3", "P4"):
                raise ValueError("priority must be P1, P2, P3 or P4")
            self._tickets.open_in_session(session, ticket, now=now, team=owner_team)
            self._ask_approvals(session, ticket, handles, now)
            session.flush()
            return TicketView.of(ticket)

    def schedule_change(
        self, number: str, *, as_user: str, start: datetime, end: datetime
    ) -> TicketView:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("give the change window with a time zone")
        if end <= start:
            raise ValueError("the change window must end after it starts")
        with self._session_factory.begin() as session:
            ticket = _change_by_number(session, number)
            require_worker(find_user(session, as_user), ticket, number_of(ticket), "schedule")
            if ticket.change_state not in (ChangeState.APPROVED.value, ChangeState.SCHEDULED.value):
                raise TicketError(
                    f"{number_of(ticket)} is {_words(ticket.change_state)}; "
                    "only an approved change can be scheduled."
                )
            now = self._tickets.now()
            ticket.scheduled_start, ticket.scheduled_end = start, end
            ticket.change_state = ChangeState.SCHEDULED.value
            if ticket.status in (TicketStatus.NEW.value, TicketStatus.TRIAGED.value):
                ticket.assignee = ticket.assignee or as_user
                transition(
                    session,
                    ticket,
                    TicketAction.START,
                    actor=as_user,
                    kind=TicketEventKind.CLAIMED,
                    at=now,
                )
            ticket.updated_at = now
            record_event(
                session,
                ticket,
                actor=as_user,
                kind=TicketEventKind.CHANGE_SCHEDULED,
                detail={"start": start.isoformat(), "end": end.isoformat()},
                at=now,
            )
            notify_team(
                session,
                self._tickets.notifications,
                ticket.team_id,
                ticket,
                NotificationKind.CHANGE_SCHEDULED,
                f"Change {number_of(ticket)} scheduled {start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC: "
                f"{ticket.title}",
            )
            session.flush()
            return TicketView.of(ticket)

    def complete_change(
        self, number: str, *, as_user: str, succeeded: bool, note: str
    ) -> TicketView:
        """Record how a scheduled change went; either way the change ticket is resolved."""
        text = redact_secrets(note).strip()
        if not text:
            raise ValueError("Say what was done (or what went wrong and how it was backed out).")
        with self._session_factory.begin() as session:
            ticket = _change_by_number(session, number)
            number = number_of(ticket)
            require_worker(find_user(session, as_user), ticket, number, "complete")
            if ticket.change_state != ChangeState.SCHEDULED.value:
                raise TicketError(
                    f"{number} is {_words(ticket.change_state)}; only a scheduled change "
                    "can be implemented or failed."
                )
            outcome = ChangeState.IMPLEMENTED if succeeded else ChangeState.FAILED
            now = self._tickets.now()
            ticket.change_state = outcome.value
            record_event(
                session,
                ticket,
                actor=as_user,
                kind=TicketEventKind.CHANGE_COMPLETED,
                detail={"outcome": outcome.value},
                at=now,
            )
            notify_team(
                session,
                self._tickets.notifications,
                ticket.team_id,
                ticket,
                NotificationKind.CHANGE_COMPLETED,
                f"Change {number} {outcome.value}: {text}",
            )
        return self._tickets.resolve(number, as_user, f"Change {outcome.value}: {text}")

    # -- approvals -------------------------------------------------------------------

    def pending_approvals(self, *, as_user: str) -> list[ApprovalView]:
        """Approvals waiting on ``as_user`` now (earlier approvers have approved)."""
        with self._session_factory.begin() as session:
            rows = session.scalars(
                select(Approval)
                .where(
                    Approval.approver == as_user,
                    Approval.decision == ApprovalState.PENDING.value,
                )
                .order_by(Approval.id)
            )
            views = []
            for approval in rows:
                ticket = session.get(Ticket, approval.ticket_id)
                if ticket is not None and _current_approval(session, ticket) is approval:
                    views.append(_approval_view(ticket, approval))
            return views

    def approvals(self, number: str) -> list[ApprovalView]:
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number)
            return [
                _approval_view(ticket, approval)
                for approval in session.scalars(
                    select(Approval)
                    .where(Approval.ticket_id == ticket.id)
                    .order_by(Approval.position)
                )
            ]

    def decide(
        self, number: str, *, as_user: str, approve: bool, comment: str | None = None
    ) -> TicketView:
        """The current approver approves or rejects; a rejection needs a reason."""
        reason = None if comment is None else redact_secrets(comment).strip() or None
        if not approve and reason is None:
            raise ValueError("Say why you reject it: the requester will read it.")
        with self._session_factory.begin() as session:
            ticket = ticket_by_number(session, number, for_update=True)
            number = number_of(ticket)
            approval = _current_approval(session, ticket)
            if approval is None or ticket.approval_state != ApprovalState.PENDING.value:
                raise TicketError(f"{number} is not waiting for an approval.")
            user = find_user(session, as_user)
            if approval.approver != as_user and not is_admin(user):
                raise PermissionDenied(
                    f"{number} is waiting for {display_name(session, approval.approver)}'s "
                    "approval, not yours."
                )
            now = self._tickets.now()
            decision = ApprovalState.APPROVED if approve else ApprovalState.REJECTED
            approval.decision = decision.value
            approval.comment = reason
            approval.decided_at = now
            record_event(
                session,
                ticket,
                actor=as_user,
                kind=TicketEventKind.APPROVAL_DECIDED,
                detail={
                    "decision": decision.value,
                    "approver": approval.approver,
                    "comment": reason,
                },
                at=now,
            )
            sink = self._tickets.notifications
            who = display_name(session, as_user)
            if not approve:
                ticket.approval_state = ApprovalState.REJECTED.value
                if ticket.change_state is not None:
                    ticket.change_state = ChangeState.REJECTED.value
                ticket.resolution = f"Not approved by {who}: {reason}"
                transition(
                    session,
                    ticket,
                    TicketAction.REJECT,
                    actor=as_user,
                    kind=TicketEventKind.CLOSED,
                    at=now,
                    detail={"reason": reason},
                )
                notify_requester(
                    session,
                    sink,
                    ticket,
                    NotificationKind.APPROVAL_DECIDED,
                    f"{number} ({ticket.title}) was not approved by {who}: {reason}",
                )
            else:
                following = _current_approval(session, ticket)
                if following is not None:
                    self._ask(session, ticket, following)
                else:
                    ticket.approval_state = ApprovalState.APPROVED.value
                    if ticket.change_state is not None:
                        ticket.change_state = ChangeState.APPROVED.value
                    team = None if ticket.team_id is None else session.get(Team, ticket.team_id)
                    if ticket.type == TicketType.SERVICE_REQUEST.value:
                        self._tickets.announce_new(session, ticket, team, now)
                    notify_requester(
                        session,
                        sink,
                        ticket,
                        NotificationKind.APPROVAL_DECIDED,
                        f"{number} ({ticket.title}) is approved"
                        + (f" and with {team.name} now." if team is not None else "."),
                    )
            ticket.updated_at = now
            session.flush()
            return TicketView.of(ticket)

    def _ask_approvals(
        self, session: Session, ticket: Ticket, approvers: list[str], now: datetime
    ) -> None:
        for position, approver in enumerate(approvers):
            session.add(
                Approval(
                    ticket_id=ticket.id,
                    approver=approver,
                    position=position,
                    decision=ApprovalState.PENDING.value,
                    created_at=now,
                )
            )
        session.flush()
        first = _current_approval(session, ticket)
        if first is not None:
            self._ask(session, ticket, first)

    def _ask(self, session: Session, ticket: Ticket, approval: Approval) -> None:
        record_event(
            session,
            ticket,
            actor="tier0",
            kind=TicketEventKind.APPROVAL_REQUESTED,
            detail={"approver": approval.approver},
            at=self._tickets.now(),
        )
        notify_user(
            session,
            self._tickets.notifications,
            approval.approver,
            ticket,
            NotificationKind.APPROVAL_REQUESTED,
            f"{display_name(session, ticket.requester)} asks for your approval of "
            f"{number_of(ticket)}: {ticket.title}. {ticket.description}",
            approval_id=approval.id,
        )


class DeskAdmin:
    """What only admins change: SLA targets and the catalog."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def set_sla_policy(
        self,
        *,
        as_user: str,
        ticket_type: str,
        priority: str,
        first_response_minutes: int,
        resolution_minutes: int,
        business_hours: bool = True,
    ) -> None:
        if not 0 < first_response_minutes <= resolution_minutes:
            raise ValueError("targets must be positive, first response no later than resolution")
        with self._session_factory.begin() as session:
            require_role(find_user(session, as_user), Role.ADMIN, "change SLA policies")
            ticket_type = TicketType(ticket_type).value
            policy = session.scalars(
                select(SlaPolicy).where(
                    SlaPolicy.ticket_type == ticket_type, SlaPolicy.priority == priority
                )
            ).one_or_none()
            if policy is None:
                policy = SlaPolicy(ticket_type=ticket_type, priority=priority)
                session.add(policy)
            policy.first_response_minutes = first_response_minutes
            policy.resolution_minutes = resolution_minutes
            policy.business_hours = business_hours
        clear_config_cache()

    def retire_catalog_item(self, key: str, *, as_user: str) -> None:
        with self._session_factory.begin() as session:
            require_role(find_user(session, as_user), Role.ADMIN, "change the catalog")
            _item_by_key(session, key).active = False


def _tier_of(session: Session, team_id: int) -> str:
    team = session.get(Team, team_id)
    return "L1" if team is None else team.tier


def _words(value: str | None) -> str:
    return "not a change" if value is None else value.replace("_", " ")


def _item_by_key(session: Session, key: str) -> CatalogItem:
    item = session.scalars(
        select(CatalogItem).where(CatalogItem.key == key.strip().lower())
    ).one_or_none()
    if item is None or not item.active:
        raise TicketError(
            f"There is no catalog item {key.strip()[:50]!r}; see `tier0 catalog list`."
        )
    return item


def _item_view(session: Session, item: CatalogItem) -> CatalogItemView:
    team = session.get(Team, item.fulfilment_team_id)
    return CatalogItemView(
        key=item.key,
        name=item.name,
        description=item.description,
        fields=tuple(
            FormField(
                name=str(f["name"]),
                label=str(f.get("label") or f["name"]),
                required=bool(f.get("required")),
                choices=tuple(str(c) for c in f.get("choices") or ()),
            )
            for f in item.form_fields
        ),
        approvers=tuple(item.approvers),
        team="" if team is None else team.name,
    )


def _checked_answers(item: CatalogItem, answers: Mapping[str, str]) -> dict[str, str]:
    fields = {str(f["name"]): f for f in item.form_fields}
    unknown = sorted(set(answers) - set(fields))
    if unknown:
        known = ", ".join(fields) or "none"
        raise ValueError(f"{item.name} has no field {unknown[0]!r}; its fields are: {known}")
    checked: dict[str, str] = {}
    for name, form_field in fields.items():
        value = redact_secrets(str(answers.get(name, ""))).strip()
        if not value:
            if form_field.get("required"):
                raise ValueError(f"{item.name} needs '{form_field.get('label') or name}'.")
            continue
        if len(value) > MAX_ANSWER_LENGTH:
            raise ValueError(f"'{name}' is longer than {MAX_ANSWER_LENGTH} characters.")
        choices = form_field.get("choices")
        if choices and value not in choices:
            raise ValueError(f"'{name}' must be one of: {', '.join(choices)}.")
        checked[name] = value
    return checked


def _resolve_approvers(
    session: Session, item: CatalogItem, requester: User | None, handle: str
) -> list[str]:
    approvers: list[str] = []
    for spec in item.approvers:
        if spec == "manager":
            manager = (
                None
                if requester is None or requester.manager_id is None
                else session.get(User, requester.manager_id)
            )
            if manager is None:
                raise TicketError(
                    f"{item.name} needs your manager's approval, but tier0 does not know your "
                    "manager. Ask IT to record them, then request again."
                )
            approvers.append(manager.handle)
        else:
            approvers.append(require_user(session, spec).handle)
    # Nobody approves their own request; the same person is asked once.
    return [a for a in dict.fromkeys(approvers) if a != handle] if approvers else []


def _current_approval(session: Session, ticket: Ticket) -> Approval | None:
    """The first approval still pending, if none before it was rejected."""
    for approval in session.scalars(
        select(Approval).where(Approval.ticket_id == ticket.id).order_by(Approval.position)
    ):
        if approval.decision == ApprovalState.REJECTED.value:
            return None
        if approval.decision == ApprovalState.PENDING.value:
            return approval
    return None


def _approval_view(ticket: Ticket, approval: Approval) -> ApprovalView:
    return ApprovalView(
        ticket_number=number_of(ticket),
        ticket_title=ticket.title,
        requester=ticket.requester,
        approver=approval.approver,
        position=approval.position,
        decision=ApprovalState(approval.decision),
        comment=approval.comment,
        decided_at=approval.decided_at,
    )


def _change_by_number(session: Session, number: str) -> Ticket:
    ticket = ticket_by_number(session, number, for_update=True)
    if ticket.type != TicketType.CHANGE.value:
        raise TicketError(f"{number_of(ticket)} is not a change.")
    return ticket
