"""Who is who: users with their roles, teams and their tiers, and what each may see and do.

Access rules live here, in the service layer, so every front end (Slack, email, CLI, API)
gets the same answer:

* employees see their own tickets; managers also their direct reports';
* agents see their team's queue (and tickets assigned to them) and work them;
* internal comments never reach requesters;
* only editors change knowledge articles; only admins change SLA policies and the catalog.

Someone tier0 has never seen (a new Slack user opening a first ticket) is registered as an
employee: the least privileged role.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import cast

from sqlalchemy import Engine, Insert, Table, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tickets.errors import PermissionDenied, TicketError, TicketNotFound, UnknownUser
from tickets.models import Role, Team, Ticket, Tier, User, utc_now

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")


@dataclass(frozen=True)
class UserView:
    handle: str
    name: str
    email: str | None
    slack_id: str | None
    roles: frozenset[Role]
    team: str | None
    manager: str | None

    def has(self, *roles: Role) -> bool:
        return bool(self.roles & set(roles))


@dataclass(frozen=True)
class TeamView:
    name: str
    tier: Tier
    slack_channel: str | None
    email: str | None
    escalates_to: str | None
    assignment: str | None


def user_view(session: Session, user: User) -> UserView:
    team = session.get(Team, user.team_id) if user.team_id is not None else None
    manager = session.get(User, user.manager_id) if user.manager_id is not None else None
    return UserView(
        handle=user.handle,
        name=user.name,
        email=user.email,
        slack_id=user.slack_id,
        roles=frozenset(Role(role) for role in user.roles),
        team=None if team is None else team.name,
        manager=None if manager is None else manager.handle,
    )


def team_view(session: Session, team: Team) -> TeamView:
    escalates_to = (
        session.get(Team, team.escalation_team_id) if team.escalation_team_id is not None else None
    )
    return TeamView(
        name=team.name,
        tier=Tier(team.tier),
        slack_channel=team.slack_channel,
        email=team.email,
        escalates_to=None if escalates_to is None else escalates_to.name,
        assignment=team.assignment,
    )


def find_user(session: Session, handle: str) -> User | None:
    return session.scalars(select(User).where(User.handle == handle)).one_or_none()


def require_user(session: Session, handle: str) -> User:
    user = find_user(session, handle)
    if user is None:
        raise UnknownUser(handle)
    return user


def ensure_user(session: Session, handle: str) -> User:
    """The user with this handle, registered as an employee if tier0 has never seen them."""
    user = find_user(session, handle)
    if user is not None:
        return user
    user = User(
        handle=handle,
        slack_id=handle if _SLACK_USER_ID.fullmatch(handle) else None,
        name=handle,
        email=handle.lower() if _EMAIL.fullmatch(handle) else None,
        roles=[Role.EMPLOYEE.value],
        created_at=utc_now(),
    )
    # A savepoint: two first tickets from the same new person racing must not fail.
    try:
        with session.begin_nested():
            session.add(user)
    except IntegrityError:
        existing = find_user(session, handle)
        if existing is None:
            raise
        return existing
    return user


def ensure_user_exists(session: Session, handle: str) -> None:
    """``ensure_user`` in one statement, for the hot path of opening a ticket: register the
    handle as an employee unless someone already has it (or its Slack id or email)."""
    row = unregistered_user_row(session, handle)
    if row is not None:
        session.connection().execute(_user_upsert(session.get_bind().dialect.name), row)


def unregistered_user_row(session: Session, handle: str) -> dict[str, object] | None:
    """The users row that registers ``handle`` as an employee, or None when this process
    already saw it registered in this store.

    The caller inserts the row in this session's transaction, skipping it if the handle
    (or its Slack id or email) is taken by then (ON CONFLICT DO NOTHING); once the
    transaction commits, the handle is remembered and costs the next ticket nothing.
    """
    engine = session.get_bind().engine
    known = _known_handles.setdefault(engine, {})
    if handle in known:
        # Nobody is ever deleted, so a handle this process saw in this store stays known.
        return None
    # Remembered once this transaction commits; a rollback may have undone the insert.
    session.info.setdefault(_NEW_HANDLES, []).append((known, handle))
    return {
        "handle": handle,
        "slack_id": handle if _SLACK_USER_ID.fullmatch(handle) else None,
        "name": handle,
        "email": handle.lower() if _EMAIL.fullmatch(handle) else None,
        "roles": [Role.EMPLOYEE.value],
        "created_at": utc_now(),
    }


# Per engine (store), the handles known to be registered: most tickets come from people
# who opened one before. Bounded; the oldest are forgotten first.
_KNOWN_HANDLES_KEPT = 50_000
_known_handles: weakref.WeakKeyDictionary[Engine, dict[str, None]] = weakref.WeakKeyDictionary()
_NEW_HANDLES = "tier0.new_handles"
_known_handles_lock = threading.Lock()


@event.listens_for(Session, "after_commit")
def _remember_handles(session: Session) -> None:
    new_handles = session.info.pop(_NEW_HANDLES, ())
    if not new_handles:
        return
    # Sessions of several threads commit at once: forgetting the oldest walks the dict.
    with _known_handles_lock:
        for known, handle in new_handles:
            known[handle] = None
            if len(known) > _KNOWN_HANDLES_KEPT:
                del known[next(iter(known))]


@event.listens_for(Session, "after_rollback")
def _forget_new_handles(session: Session) -> None:
    session.info.pop(_NEW_HANDLES, None)


@cache
def _user_upsert(dialect: str) -> Insert:
    upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # Whichever unique column clashes, the person is known already.
    return upsert(cast(Table, User.__table__)).on_conflict_do_nothing()


def find_team(session: Session, name: str) -> Team | None:
    return session.scalars(
        select(Team).where(func.lower(Team.name) == name.strip().lower())
    ).one_or_none()


def require_team(session: Session, name: str) -> Team:
    team = find_team(session, name)
    if team is None:
        raise TicketError(f"There is no team called {name!r}.")
    return team


def roles_of(user: User | None) -> frozenset[Role]:
    if user is None:
        return frozenset({Role.EMPLOYEE})
    return frozenset(Role(role) for role in user.roles)


def is_admin(user: User | None) -> bool:
    return Role.ADMIN in roles_of(user)


def is_agent(user: User | None) -> bool:
    return bool(roles_of(user) & {Role.AGENT, Role.ADMIN})


def manages(session: Session, manager: User, requester_handle: str) -> bool:
    requester = find_user(session, requester_handle)
    return requester is not None and requester.manager_id == manager.id


def works_ticket(user: User | None, ticket: Ticket) -> bool:
    """An admin, or an agent of the ticket's team, or the agent it is assigned to."""
    if user is None:
        return False
    if is_admin(user):
        return True
    if not is_agent(user):
        return False
    if ticket.assignee == user.handle:
        return True
    # A ticket nobody routed yet is in every agent's view: someone must pick it up.
    return ticket.team_id is None or ticket.team_id == user.team_id


def can_view(session: Session, user: User | None, ticket: Ticket) -> bool:
    if user is None:
        return False
    if ticket.requester == user.handle or works_ticket(user, ticket):
        return True
    return manages(session, user, ticket.requester)


def require_view(session: Session, user: User | None, ticket: Ticket, number: str) -> None:
    if not can_view(session, user, ticket):
        # Same words as a missing ticket: a refusal must not confirm the ticket exists.
        raise TicketNotFound(number)


def require_worker(user: User | None, ticket: Ticket, number: str, action: str) -> None:
    if not works_ticket(user, ticket):
        raise PermissionDenied(
            f"Only an agent of the ticket's team or an admin can {action} {number}."
        )


def require_role(user: User | None, role: Role, action: str) -> None:
    allowed = {role, Role.ADMIN}
    if not roles_of(user) & allowed:
        raise PermissionDenied(f"Only {_role_plural(role)} can {action}.")


def _role_plural(role: Role) -> str:
    return {"admin": "admins", "agent": "agents", "editor": "editors", "employee": "employees"}[
        role.value
    ]


class Directory:
    """Registers and looks up users and teams; one transaction per call."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def register_user(
        self,
        handle: str,
        *,
        name: str | None = None,
        email: str | None = None,
        slack_id: str | None = None,
        roles: Iterable[str] = (Role.EMPLOYEE,),
        team: str | None = None,
        manager: str | None = None,
    ) -> UserView:
        """Add a user, or update the one with this handle (only the fields given)."""
        handle = handle.strip()
        if not handle or len(handle) > 200:
            raise ValueError("a user handle must be 1 to 200 characters")
        checked_roles = _checked_roles(roles)
        if email is not None and not _EMAIL.fullmatch(email.strip()):
            raise ValueError(f"{email!r} is not an email address")
        with self._session_factory.begin() as session:
            user = find_user(session, handle)
            if user is None:
                user = User(handle=handle, name=name or handle, roles=[], created_at=utc_now())
                session.add(user)
            if name is not None:
                user.name = name.strip() or handle
            if email is not None:
                user.email = email.strip().lower()
            if slack_id is not None:
                user.slack_id = slack_id.strip() or None
            elif user.slack_id is None and _SLACK_USER_ID.fullmatch(handle):
                user.slack_id = handle
            user.roles = [role.value for role in checked_roles]
            if team is not None:
                user.team_id = require_team(session, team).id if team.strip() else None
            if manager is not None:
                if manager.strip() == handle:
                    raise ValueError("a user cannot be their own manager")
                user.manager_id = require_user(session, manager.strip()).id if manager else None
            try:
                session.flush()
            except IntegrityError:
                raise ValueError(
                    "another user already has this email address or Slack id"
                ) from None
            return user_view(session, user)

    def user(self, handle: str) -> UserView:
        with self._session_factory.begin() as session:
            return user_view(session, require_user(session, handle))

    def users(self) -> list[UserView]:
        with self._session_factory.begin() as session:
            return [user_view(session, u) for u in session.scalars(select(User).order_by(User.id))]

    def teams(self) -> list[TeamView]:
        with self._session_factory.begin() as session:
            return [team_view(session, t) for t in session.scalars(select(Team).order_by(Team.id))]

    def check_can_edit_articles(self, handle: str) -> None:
        """PermissionDenied unless ``handle`` is an editor (or admin): for the KB's writers."""
        with self._session_factory.begin() as session:
            require_role(find_user(session, handle), Role.EDITOR, "change knowledge articles")


def _checked_roles(roles: Iterable[str]) -> list[Role]:
    checked: list[Role] = []
    for role in roles:
        try:
            parsed = Role(str(role).strip().lower())
        except ValueError:
            allowed = ", ".join(r.value for r in Role)
            raise ValueError(f"unknown role {role!r}; expected one of {allowed}") from None
        if parsed not in checked:
            checked.append(parsed)
    if Role.EMPLOYEE not in checked:
        # Everyone can ask for help, whatever else they do.
        checked.insert(0, Role.EMPLOYEE)
    return checked
