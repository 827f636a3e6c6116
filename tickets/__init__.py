"""tickets: the ticket store, its life cycle, conversation memory and delivery idempotency."""

# The outbox model joins Base.metadata here, so migrations and schema checks see it.
from tickets import outbox as outbox
from tickets.conversations import ConversationRecord, ConversationStore
from tickets.db import create_store_engine, downgrade_schema, make_session_factory, upgrade_schema
from tickets.idempotency import first_delivery, forget_deliveries_before
from tickets.models import (
    ArticleTried,
    Base,
    Conversation,
    ProcessedEvent,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketSource,
    TicketStatus,
)
from tickets.redaction import redact_secrets
from tickets.service import (
    InvalidTransition,
    TicketAlreadyClaimed,
    TicketError,
    TicketEventView,
    TicketNotFound,
    TicketService,
    TicketView,
    canonical_ticket_number,
    format_ticket_number,
)
from tickets.transcript import TranscriptRole, TranscriptTurn

__all__ = [
    "ArticleTried",
    "Base",
    "Conversation",
    "ConversationRecord",
    "ConversationStore",
    "InvalidTransition",
    "ProcessedEvent",
    "Ticket",
    "TicketAlreadyClaimed",
    "TicketError",
    "TicketEvent",
    "TicketEventKind",
    "TicketEventView",
    "TicketNotFound",
    "TicketService",
    "TicketSource",
    "TicketStatus",
    "TicketView",
    "TranscriptRole",
    "TranscriptTurn",
    "canonical_ticket_number",
    "create_store_engine",
    "downgrade_schema",
    "first_delivery",
    "forget_deliveries_before",
    "format_ticket_number",
    "make_session_factory",
    "redact_secrets",
    "upgrade_schema",
]
