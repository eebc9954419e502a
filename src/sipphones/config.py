"""Configuration: environment variables (``SIPPHONES_*``) and command-line overrides."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "sipphones"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIPPHONES_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""           # empty: a SQLite file in data_dir
    redis_url: str = ""              # empty: rate-limit counters in memory
    secret_key: str = ""             # base64 of 32 bytes; empty: generated into data_dir on first run
    token_ttl: int = 3600            # seconds an access token lives (Zoom: 3600)
    page_token_ttl: int = 900        # seconds a next_page_token lives (Zoom: 15 minutes)
    sqlite_synchronous: str = "NORMAL"  # NORMAL (WAL: durable on checkpoint) or FULL
    public_url: str = ""             # how clients reach the server, for printed examples

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'sipphones.db').resolve()}"


def load_settings(**overrides) -> Settings:
    clean = {k: v for k, v in overrides.items() if v is not None}
    return Settings(**clean)
