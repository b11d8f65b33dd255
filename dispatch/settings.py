"""Settings: one class, read from the environment.

Every variable carries the ``WAYHOME_`` prefix, except Kafka's own ``KAFKA_BOOTSTRAP_SERVERS``.
When that one is unset, wayhome starts its embedded broker and uses it. The README lists every
variable with its default; keep the two in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

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
    broker_port: int = Field(
        default=9092, ge=0, le=65535, description="Port of the embedded broker."
    )
    log_level: str = Field(default="INFO", description="Level of wayhome's own log lines.")

    # dispatch
    delivery_guarantee: Literal["auto", "exactly_once", "at_least_once"] = Field(
        default="auto",
        description=(
            "How the dispatcher commits: exactly_once uses Kafka transactions; at_least_once "
            "re-sends after a crash and relies on stable notice ids for dedupe. auto picks "
            "at_least_once on the embedded broker (it has no transactions), exactly_once otherwise."
        ),
    )
    tick_schedule: str = Field(
        default="0h=1m,3h=5m,24h=30m,72h=2h",
        description=(
            "When open cases tick: comma-separated 'elapsed=interval' steps (units s, m, h), "
            "from the last-seen time. The default ticks every minute in the first three hours."
        ),
    )
    partitions: int = Field(
        default=4, ge=1, le=256, description="Partitions of the topics wayhome creates."
    )
    replication_factor: int = Field(
        default=1, ge=1, le=16, description="Replication factor of the topics wayhome creates."
    )
    notice_batch_size: int = Field(
        default=10000,
        ge=1,
        le=20000,
        description=(
            "Recipients carried by one notice message (at most 5000 when compression is none, "
            "to stay under Kafka's 1 MB message limit)."
        ),
    )
    kafka_compression: Literal["zstd", "lz4", "gzip", "none"] = Field(
        default="zstd",
        description="Compression of the messages the dispatcher produces (notice batches).",
    )
    fetch_max_wait_ms: int | None = Field(
        default=None,
        ge=0,
        le=10000,
        description="Consumers' fetch wait; unset: 50 on the embedded broker, 200 otherwise.",
    )
    worker_id: str = Field(
        default="dispatcher-0",
        pattern=r"^[A-Za-z0-9._-]{1,64}$",
        description="Stable name of this dispatcher worker; also its Kafka transactional id.",
    )
    transaction_timeout_ms: int = Field(
        default=15000, ge=1000, description="How long a dead worker's open transaction is kept."
    )
    retention_days: int = Field(
        default=30,
        ge=0,
        description=(
            "Days a resolved case's private fields are kept; then their vault key is destroyed "
            "(checked at start and every hour). 0: at the next check."
        ),
    )
    clock_speed: float = Field(
        default=1.0, gt=0, description="Speed of the service clock; above 1 for simulations."
    )
    public_url: str | None = Field(
        default=None, description="Base URL the API is reached at; unset: http://HOST:PORT."
    )

    def base_url(self) -> str:
        """Where the API can be reached, for links shown to people."""
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    def exactly_once(self, embedded: bool) -> bool:
        """Whether the dispatcher should use Kafka transactions on this broker."""
        if self.delivery_guarantee == "auto":
            return not embedded
        return self.delivery_guarantee == "exactly_once"

    def fetch_wait_ms(self, embedded: bool) -> int:
        """The consumers' ``fetch_max_wait_ms`` on this broker."""
        if self.fetch_max_wait_ms is not None:
            return self.fetch_max_wait_ms
        return 50 if embedded else 200


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
