"""Settings read from the environment (and an optional `.env`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from knowledge.articles import link_problem

BUNDLED_KB_DIR = Path(__file__).resolve().parent.parent / "knowledge" / "sample_kb"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".tier0"), alias="TIER0_HOME")
    database_url: str | None = Field(default=None, alias="TIER0_DATABASE_URL")
    kb_dir: Path | None = Field(default=None, alias="TIER0_KB_DIR")
    # Where the knowledge folder is published (a wiki, a Git host): an article without its
    # own `url` links to this followed by its path in the folder.
    kb_base_url: str | None = Field(default=None, alias="TIER0_KB_BASE_URL")
    nlu_data: Path | None = Field(default=None, alias="TIER0_NLU_DATA")
    triage_channel: str = Field(default="it-triage", alias="TIER0_TRIAGE_CHANNEL")
    # Where article drafts made from resolved tickets wait for an editor to publish them.
    editors_channel: str = Field(default="kb-editors", alias="TIER0_EDITORS_CHANNEL")
    # `builtin` (tier0's own model) or `rasa` (a Rasa server's /model/parse, see README).
    nlu_backend: str = Field(default="builtin", alias="TIER0_NLU_BACKEND")
    rasa_url: str = Field(default="http://localhost:5005", alias="TIER0_RASA_URL")
    rasa_token: str | None = Field(default=None, alias="TIER0_RASA_TOKEN")
    # Slack user ids of the agents (comma-separated): who may claim, assign and resolve,
    # and who is pinged when someone asks for a person. Empty: the triage channel's members.
    agents: str = Field(default="", alias="TIER0_AGENTS")

    slack_bot_token: str | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: str | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_signing_secret: str | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="TIER0_SLACK_API_URL")

    # Outbound mail (notifications). Without a host, mail notifications wait in the outbox.
    smtp_host: str | None = Field(default=None, alias="TIER0_SMTP_HOST")
    smtp_port: int = Field(default=25, alias="TIER0_SMTP_PORT")
    smtp_from: str = Field(default="tier0@localhost", alias="TIER0_SMTP_FROM")
    smtp_username: str | None = Field(default=None, alias="TIER0_SMTP_USERNAME")
    smtp_password: str | None = Field(default=None, alias="TIER0_SMTP_PASSWORD")
    smtp_starttls: bool = Field(default=False, alias="TIER0_SMTP_STARTTLS")
    # A mail an interrupted attempt may have delivered: "resend" it with the same
    # Message-ID (never lost, maybe shown twice) or "hold" it for an operator (never
    # twice, maybe late). See tickets/delivery.py.
    smtp_in_doubt: Literal["resend", "hold"] = Field(default="resend", alias="TIER0_SMTP_IN_DOUBT")
    # Inbound mail: where `tier0 mail` listens, and the largest mail it accepts.
    mail_host: str = Field(default="127.0.0.1", alias="TIER0_MAIL_HOST")
    mail_port: int = Field(default=2525, alias="TIER0_MAIL_PORT")
    mail_max_bytes: int = Field(default=10 * 1024 * 1024, alias="TIER0_MAIL_MAX_BYTES")
    # The worker: how often it delivers the outbox; whether `tier0 run` starts one inside.
    worker_delivery_interval: float = Field(
        default=5.0, gt=0, alias="TIER0_WORKER_DELIVERY_INTERVAL"
    )
    worker_sla_interval: float = Field(default=60.0, gt=0, alias="TIER0_WORKER_SLA_INTERVAL")
    worker_auto_close_interval: float = Field(
        default=3600.0, gt=0, alias="TIER0_WORKER_AUTO_CLOSE_INTERVAL"
    )
    worker_in_run: bool = Field(default=True, alias="TIER0_WORKER_IN_RUN")
    # How long a handled Slack event is remembered (to recognise Slack's retries of it, which
    # stop within minutes); the worker forgets older ones so the inbox does not grow forever.
    slack_inbox_retention_days: int = Field(
        default=7, ge=1, alias="TIER0_SLACK_INBOX_RETENTION_DAYS"
    )

    @field_validator("kb_base_url")
    @classmethod
    def _kb_base_url_is_a_link(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        problem = link_problem(value) if value else None
        if problem is not None:
            raise ValueError(f"TIER0_KB_BASE_URL {value!r} {problem}")
        return value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'tier0.db').resolve()}"

    @property
    def agent_ids(self) -> frozenset[str]:
        return frozenset(part.strip() for part in self.agents.split(",") if part.strip())

    @property
    def imported_kb_dir(self) -> Path:
        """Where `tier0 kb import` puts the articles this home answers from."""
        return self.home / "kb"

    @property
    def resolved_kb_dir(self) -> Path:
        """An explicit TIER0_KB_DIR wins; then an imported KB; then the bundled sample."""
        if self.kb_dir is not None:
            return self.kb_dir
        if self.imported_kb_dir.is_dir() and any(self.imported_kb_dir.glob("*.md")):
            return self.imported_kb_dir
        return BUNDLED_KB_DIR

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def nlu_model_dir(self) -> Path:
        return self.home / "nlu"

    @property
    def rasa_dir(self) -> Path:
        """The Rasa project `tier0 nlu train --backend rasa` writes and trains."""
        return self.home / "rasa"

    @property
    def slack_configured_for_socket_mode(self) -> bool:
        return bool(self.slack_bot_token and self.slack_app_token)
