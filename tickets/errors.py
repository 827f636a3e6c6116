"""Domain errors of the service desk; each ``message`` is fit to show the person who asked."""

from __future__ import annotations

from tickets.models import TicketStatus


class TicketError(Exception):
    """A ticket request that cannot be carried out; ``message`` is fit to show the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TicketNotFound(TicketError):
    def __init__(self, number: str) -> None:
        super().__init__(f"There is no ticket {number}.")
        self.number = number


class TicketAlreadyClaimed(TicketError):
    def __init__(self, number: str, assignee: str) -> None:
        super().__init__(f"{number} is already claimed by {assignee}.")
        self.number = number
        self.assignee = assignee


class InvalidTransition(TicketError):
    def __init__(self, number: str, status: TicketStatus, action: str) -> None:
        status_words = status.value.replace("_", " ")
        super().__init__(f"{number} is {status_words}, so it cannot be {action}.")
        self.number = number
        self.status = status
        self.action = action


class PermissionDenied(TicketError):
    """The acting user's roles do not allow the step."""


class UnknownUser(TicketError):
    def __init__(self, handle: str) -> None:
        super().__init__(f"tier0 does not know a user {handle}.")
        self.handle = handle


class ApprovalRequired(TicketError):
    """The step waits for an approval that has not been given."""
