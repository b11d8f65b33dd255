"""Settings: one class, read from the environment.

Every variable carries the ``WAYHOME_`` prefix, except Kafka's own ``KAFKA_BOOTSTRAP_SERVERS``.
When that one is unset, wayhome starts its embedded broker and uses it. The README lists every
variable with its default; keep the two in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "wayhome"


class Settings(BaseSettings):
    """wayhome's settings; each field is the environment variable ``WAYHOME_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="WAYHOME_", extra="ignore")

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "WAYHOME_KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka brokers, host:port[,host:port]. Unset: start the embedded broker.",
    )
    topic_prefix: str = Field(default="wayhome.", description="Prefix shared by every topic name.")
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the embedded defaults keep their files (SQLite, the log, keys).",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://...). Unset: SQLite files in the data dir.",
    )
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP API listens on.")
    http_port: int = Field(default=8080, ge=0, le=65535, description="Port of the HTTP API.")
    broker_host: str = Field(default="127.0.0.1", description="Address of the embedded broker.")
    broker_port: int = Field(default=9092, ge=0, le=65535, description="Port of the embedded broker.")
    log_level: str = Field(default="INFO", description="Level of wayhome's own log lines.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
