"""Alembic migrations for the ticket store; run them with ``tickets.db.upgrade_schema``."""
