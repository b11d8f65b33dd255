"""The embedded subscriber store: one SQLite file (or ``:memory:``).

Plain SQLite, not SpatiaLite: the store answers by id and by key, and the spatial questions go
to the in-memory index, so a spatial extension would add a native dependency for nothing.
A watched area is kept as its GeoJSON text beside its bounding box (four indexed columns), and
a device's position as two REAL columns.

One connection serves every thread, guarded by a lock; every write is one transaction.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from subscribers.errors import RegistryUnavailable
from subscribers.model import Subscriber
from subscribers.registry import Clock, Registry, utc_now

__all__ = ["SqliteRegistry"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriber (
    key INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('device', 'area', 'platform')),
    lon REAL,
    lat REAL,
    fix_time TEXT,
    area TEXT,
    min_lon REAL,
    min_lat REAL,
    max_lon REAL,
    max_lat REAL,
    channel TEXT NOT NULL,
    language TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriber_area_bbox
    ON subscriber (min_lon, max_lon, min_lat, max_lat) WHERE area IS NOT NULL;
"""

_COLUMNS = "key, id, kind, lon, lat, fix_time, area, channel, language, created_at, updated_at"

_UPSERT = """
INSERT INTO subscriber (id, kind, lon, lat, fix_time, area, min_lon, min_lat, max_lon, max_lat,
                        channel, language, created_at, updated_at)
VALUES (:id, :kind, :lon, :lat, :fix_time, :area, :min_lon, :min_lat, :max_lon, :max_lat,
        :channel, :language, :now, :now)
ON CONFLICT (id) DO UPDATE SET
    kind = excluded.kind, lon = excluded.lon, lat = excluded.lat,
    fix_time = excluded.fix_time, area = excluded.area,
    min_lon = excluded.min_lon, min_lat = excluded.min_lat,
    max_lon = excluded.max_lon, max_lat = excluded.max_lat,
    channel = excluded.channel, language = excluded.language,
    updated_at = excluded.updated_at
RETURNING key, created_at, updated_at
"""


def _to_params(subscriber: Subscriber, now: datetime) -> dict[str, Any]:
    bounds: tuple[float | None, ...] = (None, None, None, None)
    if subscriber.area is not None:
        geometry = subscriber.geometry()
        assert geometry is not None
        bounds = geometry.bounds
    return {
        "id": subscriber.id,
        "kind": subscriber.kind,
        "lon": subscriber.lon,
        "lat": subscriber.lat,
        "fix_time": None if subscriber.fix_time is None else subscriber.fix_time.isoformat(),
        "area": None if subscriber.area is None else json.dumps(subscriber.area),
        "min_lon": bounds[0],
        "min_lat": bounds[1],
        "max_lon": bounds[2],
        "max_lat": bounds[3],
        "channel": subscriber.channel.model_dump_json(),
        "language": subscriber.language,
        "now": now.isoformat(),
    }


def _from_row(row: sqlite3.Row) -> Subscriber:
    return Subscriber.model_validate(
        {
            "key": row["key"],
            "id": row["id"],
            "kind": row["kind"],
            "lon": row["lon"],
            "lat": row["lat"],
            "fix_time": row["fix_time"],
            "area": None if row["area"] is None else json.loads(row["area"]),
            "channel": json.loads(row["channel"]),
            "language": row["language"],
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }
    )


class SqliteRegistry(Registry):
    """Subscribers in a SQLite database file (``":memory:"`` for a throwaway one)."""

    def __init__(self, path: str | Path = ":memory:", *, clock: Clock = utc_now) -> None:
        super().__init__(clock)
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise RegistryUnavailable(
                f"the SQLite subscriber store at {path} cannot be opened: {exc}"
            ) from None
        self._lock = threading.Lock()
        logger.info("sqlite subscriber store opened subscribers=%d", self.count())

    def upsert(self, subscriber: Subscriber) -> Subscriber:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                stored = self._upsert_one(subscriber, self._clock())
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return stored

    def _upsert_one(self, subscriber: Subscriber, now: datetime) -> Subscriber:
        row = self._db.execute(_UPSERT, _to_params(subscriber, now)).fetchone()
        return subscriber.model_copy(
            update={
                "key": row["key"],
                "created_at": datetime.fromisoformat(row["created_at"]),
                "updated_at": datetime.fromisoformat(row["updated_at"]),
            }
        )

    def write_all(self, subscribers: Sequence[Subscriber]) -> None:
        now = self._clock()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for subscriber in subscribers:
                    self._db.execute(_UPSERT, _to_params(subscriber, now)).fetchone()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        logger.info("sqlite subscriber store wrote subscribers=%d", len(subscribers))

    def get(self, subscriber_id: str) -> Subscriber | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM subscriber WHERE id = ?", (subscriber_id,)
            ).fetchone()
        return None if row is None else _from_row(row)

    def get_by_keys(self, keys: Iterable[int]) -> list[Subscriber]:
        wanted = [int(k) for k in keys]
        found: list[Subscriber] = []
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT {_COLUMNS} FROM subscriber WHERE key IN ({marks})", chunk
                ).fetchall()
                found.extend(_from_row(r) for r in rows)
        return found

    def delete(self, subscriber_id: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM subscriber WHERE id = ?", (subscriber_id,))
        return cursor.rowcount > 0

    def iter_all(self) -> Iterator[Subscriber]:
        last_key = -1
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT {_COLUMNS} FROM subscriber WHERE key > ? ORDER BY key LIMIT 1000",
                    (last_key,),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _from_row(row)
            last_key = rows[-1]["key"]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM subscriber").fetchone()[0])

    def device_positions(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, lon, lat FROM subscriber WHERE kind = 'device' ORDER BY key"
            ).fetchall()
        table = np.array([tuple(r) for r in rows], dtype=np.float64).reshape(-1, 3)
        keys = np.array([r[0] for r in rows], dtype=np.int64)
        return keys, table[:, 1].copy(), table[:, 2].copy()

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT id FROM subscriber WHERE id IN ({marks})", chunk
                ).fetchall()
                found.update(r[0] for r in rows)
        return found

    def close(self) -> None:
        with self._lock:
            self._db.close()
