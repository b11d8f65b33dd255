"""The delivery store: which deliveries are settled, so that none is made twice.

A delivery is settled when it was delivered (the receiver acknowledged it: a 2xx to a webhook,
the broker's ack for a platform's topic, the SSE buffer holding it) or parked on
``notices.dead``. The delivery worker asks the store which deliveries of a batch are already
settled before it sends anything, and records each one as it settles; it commits the batch's
Kafka offset only after every delivery of the batch is recorded here.

What that guarantees, precisely:

- On the wire, at least once: a worker killed after a receiver acknowledged a delivery but
  before the store recorded it sends that delivery again after the restart. The window is one
  flush interval of the worker plus the requests in flight when it died.
- Each delivery carries its stable ``delivery_id`` (webhook ``webhook-id``, SSE ``id:``, the
  ``ce_id`` header of a platform's Kafka message, and the ``id`` of the JSON notice), so a
  receiver that remembers the ids it acknowledged sees every notice exactly once: effectively
  once.
- Everything recorded here is never sent again, however often the batch is consumed.

Two stores share the small :class:`DeliveryStore` interface: SQLite (the embedded default, one
file in the data dir, WAL mode, which survives a killed process) and PostgreSQL (when
``WAYHOME_DATABASE_URL`` is set, shared by every delivery worker of a consumer group, so a
partition moving to another worker moves nothing it would resend).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from dispatch.notices.errors import DedupeStoreError

__all__ = [
    "Outcome",
    "DeliveryStore",
    "SqliteDeliveryStore",
    "PostgresDeliveryStore",
    "open_delivery_store",
]

Outcome = Literal["delivered", "dead"]

_QUERY_CHUNK = 500


class DeliveryStore(Protocol):
    """Where settled deliveries are remembered."""

    def settled(self, delivery_ids: Sequence[str]) -> set[str]:
        """Those of ``delivery_ids`` that were already delivered or parked."""
        ...

    def record(self, outcomes: Iterable[tuple[str, Outcome]]) -> None:
        """Remember each ``(delivery_id, outcome)``; an id recorded before keeps its outcome."""
        ...

    def outcome(self, delivery_id: str) -> Outcome | None:
        """How ``delivery_id`` settled, or None while it has not."""
        ...

    def close(self) -> None:
        """Release the store's connection."""
        ...


class SqliteDeliveryStore:
    """The delivery store in one SQLite file (WAL mode, synchronous NORMAL).

    NORMAL keeps every committed record through a killed process; only a power loss of the
    machine can lose the last few, which then are delivered again with the same ids.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS deliveries ("
                " delivery_id TEXT PRIMARY KEY, outcome TEXT NOT NULL, settled_at REAL NOT NULL"
                ") WITHOUT ROWID"
            )
        except (sqlite3.Error, OSError) as exc:
            raise DedupeStoreError(
                f"cannot open the delivery store at {self.path}: {exc}; "
                "the directory must exist or be creatable and the file writable"
            ) from exc

    def settled(self, delivery_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        try:
            for start in range(0, len(delivery_ids), _QUERY_CHUNK):
                chunk = list(delivery_ids[start : start + _QUERY_CHUNK])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT delivery_id FROM deliveries WHERE delivery_id IN ({marks})", chunk
                )
                found.update(row[0] for row in rows)
        except sqlite3.Error as exc:
            raise DedupeStoreError(f"cannot read the delivery store at {self.path}: {exc}") from exc
        return found

    def record(self, outcomes: Iterable[tuple[str, Outcome]]) -> None:
        now = time.time()
        rows = [(delivery_id, outcome, now) for delivery_id, outcome in outcomes]
        if not rows:
            return
        try:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR IGNORE INTO deliveries (delivery_id, outcome, settled_at) "
                "VALUES (?, ?, ?)",
                rows,
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise DedupeStoreError(
                f"cannot write the delivery store at {self.path}: {exc}"
            ) from exc

    def outcome(self, delivery_id: str) -> Outcome | None:
        """How ``delivery_id`` settled, or None while it has not."""
        row = self._db.execute(
            "SELECT outcome FROM deliveries WHERE delivery_id = ?", (delivery_id,)
        ).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self._db.close()


class PostgresDeliveryStore:
    """The delivery store in a PostgreSQL table, shared by every delivery worker.

    Its calls are synchronous: each lookup and each flush holds the worker's event loop for one
    round trip to the database, which the worker pays once per batch and once per flush
    interval rather than once per delivery.
    """

    def __init__(self, dsn: str, table: str = "wayhome_deliveries") -> None:
        import psycopg

        if not table.replace("_", "").isalnum():
            raise DedupeStoreError(f"table must be a plain SQL identifier, got {table!r}")
        self.table = table
        try:
            self._db: Any = psycopg.connect(dsn, autocommit=True)
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} ("
                " delivery_id text PRIMARY KEY, outcome text NOT NULL,"
                " settled_at timestamptz NOT NULL DEFAULT now())"
            )
        except psycopg.Error as exc:
            raise DedupeStoreError(
                f"cannot open the delivery store in PostgreSQL: {exc.__class__.__name__}; "
                "check WAYHOME_DATABASE_URL and that the database accepts connections"
            ) from exc

    def settled(self, delivery_ids: Sequence[str]) -> set[str]:
        import psycopg

        try:
            rows = self._db.execute(
                f"SELECT delivery_id FROM {self.table} WHERE delivery_id = ANY(%s)",
                (list(delivery_ids),),
            ).fetchall()
        except psycopg.Error as exc:
            raise DedupeStoreError(f"cannot read the delivery store: {exc}") from exc
        return {row[0] for row in rows}

    def record(self, outcomes: Iterable[tuple[str, Outcome]]) -> None:
        import psycopg

        rows = list(outcomes)
        if not rows:
            return
        try:
            with self._db.transaction(), self._db.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {self.table} (delivery_id, outcome) VALUES (%s, %s) "
                    "ON CONFLICT (delivery_id) DO NOTHING",
                    rows,
                )
        except psycopg.Error as exc:
            raise DedupeStoreError(f"cannot write the delivery store: {exc}") from exc

    def outcome(self, delivery_id: str) -> Outcome | None:
        """How ``delivery_id`` settled, or None while it has not."""
        row = self._db.execute(
            f"SELECT outcome FROM {self.table} WHERE delivery_id = %s", (delivery_id,)
        ).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self._db.close()


def open_delivery_store(database_url: str | None, data_dir: str | Path) -> DeliveryStore:
    """PostgreSQL when ``database_url`` is set, else ``deliveries.sqlite3`` in ``data_dir``."""
    if database_url:
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise DedupeStoreError(
                f"database_url must be a postgresql:// URL, got a {database_url.split(':')[0]}: one"
            )
        return PostgresDeliveryStore(database_url)
    return SqliteDeliveryStore(Path(data_dir) / "deliveries.sqlite3")
