"""Settings read from the environment (and an optional `.env`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_KB_DIR = Path(__file__).resolve().parent.parent / "knowledge" / "sample_kb"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    home: Path = Field(default=Path(".tier0"), alias="TIER0_HOME")
    database_url: str | None = Field(default=None, alias="TIER0_DATABASE_URL")
    kb_dir: Path | None = Field(default=None, alias="TIER0_KB_DIR")
    nlu_data: Path | None = Field(default=None, alias="TIER0_NLU_DATA")
    triage_channel: str = Field(default="it-triage", alias="TIER0_TRIAGE_CHANNEL")
    # Slack user ids of the agents (comma-separated): who may claim, assign and resolve,
    # and who is pinged when someone asks for a person. Empty: the triage channel's members.
    agents: str = Field(default="", alias="TIER0_AGENTS")

    slack_bot_token: str | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: str | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_signing_secret: str | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="TIER0_SLACK_API_URL")

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
    def slack_configured_for_socket_mode(self) -> bool:
        return bool(self.slack_bot_token and self.slack_app_token)
