"""Storage of a log behind one interface: SQLite (embedded default) and PostgreSQL.

A store holds five things, in five tables:

- ``meta``: the log's origin and its public key;
- ``entries``: every entry's bytes, by index;
- ``hashes``: tree hashes of every fourth tree level (0, 4, 8, ...), 256 consecutive hashes of
  one level per row (see ``chain.tree`` for why every fourth level);
- ``tree``: the integrated tree's size, root and right edge (compact range), one row;
- ``checkpoints``: every checkpoint the log signed, by size.

:meth:`LogStore.commit` writes new entries, their hashes and the new tree state in ONE
transaction, so a crash leaves either the old tree or the new one, never a mix; the log signs
a checkpoint only after that commit (``chain.sequencer``). ``checkpoints.size`` is the primary
key: the store cannot hold two checkpoints of one size.

The two stores share their SQL; they differ in placeholders, blob type and connection.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.errors import StoreError
from chain.merkle import EMPTY_ROOT, HASH_SIZE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TreeState:
    """The integrated tree: its size, root, and right edge (one hash per set bit of size)."""

    size: int
    root: bytes
    edge: tuple[bytes, ...]


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str


EMPTY_STATE = TreeState(0, EMPTY_ROOT, ())

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {p}meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {p}entries (idx BIGINT PRIMARY KEY, data {blob} NOT NULL);
CREATE TABLE IF NOT EXISTS {p}hashes (
    level INTEGER NOT NULL, chunk BIGINT NOT NULL, data {blob} NOT NULL,
    PRIMARY KEY (level, chunk));
CREATE TABLE IF NOT EXISTS {p}tree (
    id INTEGER PRIMARY KEY CHECK (id = 1), size BIGINT NOT NULL, root {blob} NOT NULL,
    edge {blob} NOT NULL);
CREATE TABLE IF NOT EXISTS {p}checkpoints (
    size BIGINT PRIMARY KEY, root {blob} NOT NULL, note TEXT NOT NULL);
"""


class LogStore:
    """The storage interface of a log; :class:`SqliteStore` and :class:`PostgresStore`."""

    _placeholder = "?"
    _blob = "BLOB"

    def __init__(self, prefix: str = "") -> None:
        if not prefix.replace("_", "").isalnum() and prefix:
            raise StoreError(f"a table prefix must be letters, digits and '_', got {prefix!r}")
        self.prefix = prefix
        self._lock = threading.RLock()

    # -- SQL plumbing, specialised by each store ------------------------------------------------

    def _sql(self, text: str) -> str:
        return text.replace("{p}", self.prefix).replace("?", self._placeholder)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _transaction(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """Run ``(sql, rows)`` pairs as executemany calls in one transaction."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    # -- the interface --------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM {p}meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        self._transaction(
            [("DELETE FROM {p}meta WHERE key = ?", [(key,)])]
            + [("INSERT INTO {p}meta (key, value) VALUES (?, ?)", [(key, value)])]
        )

    def tree_state(self) -> TreeState:
        rows = self._query("SELECT size, root, edge FROM {p}tree WHERE id = 1")
        if not rows:
            return EMPTY_STATE
        size, root, edge = int(rows[0][0]), bytes(rows[0][1]), bytes(rows[0][2])
        hashes = tuple(edge[i : i + HASH_SIZE] for i in range(0, len(edge), HASH_SIZE))
        return TreeState(size, root, hashes)

    def count_entries(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM {p}entries")[0][0])

    def read_entries(self, start: int, end: int) -> list[bytes]:
        """Entries ``[start, end)``; a :class:`StoreError` names the first missing index."""
        rows = self._query(
            "SELECT idx, data FROM {p}entries WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
        )
        for expected, (idx, _) in enumerate(rows, start):
            if idx != expected:
                raise StoreError(f"entry {expected} is missing from the store")
        if len(rows) != end - start:
            raise StoreError(f"entry {start + len(rows)} is missing from the store")
        return [bytes(data) for _, data in rows]

    def iter_entry_rows(self, batch: int = 4096) -> Iterator[tuple[int, bytes]]:
        """Every stored ``(index, entry)`` row in index order, as stored (gaps included)."""
        last = -1
        while True:
            rows = self._query(
                "SELECT idx, data FROM {p}entries WHERE idx > ? ORDER BY idx LIMIT ?", (last, batch)
            )
            if not rows:
                return
            for idx, data in rows:
                yield int(idx), bytes(data)
            last = int(rows[-1][0])

    def read_chunks(self, level: int, chunks: Sequence[int]) -> dict[int, bytes]:
        """The stored rows of tree ``level`` for the given chunk numbers (absent ones omitted)."""
        if not chunks:
            return {}
        found: dict[int, bytes] = {}
        wanted = sorted(set(chunks))
        for at in range(0, len(wanted), 500):
            part = wanted[at : at + 500]
            marks = ", ".join(["?"] * len(part))
            rows = self._query(
                f"SELECT chunk, data FROM {{p}}hashes WHERE level = ? AND chunk IN ({marks})",
                (level, *part),
            )
            found.update((int(chunk), bytes(data)) for chunk, data in rows)
        return found

    def iter_chunks(self, level: int) -> Iterator[tuple[int, bytes]]:
        last = -1
        while True:
            rows = self._query(
                "SELECT chunk, data FROM {p}hashes WHERE level = ? AND chunk > ? "
                "ORDER BY chunk LIMIT 256",
                (level, last),
            )
            if not rows:
                return
            for chunk, data in rows:
                yield int(chunk), bytes(data)
            last = int(rows[-1][0])

    def stored_levels(self) -> list[int]:
        return [
            int(r[0]) for r in self._query("SELECT DISTINCT level FROM {p}hashes ORDER BY level")
        ]

    def commit(
        self,
        start: int,
        entries: Sequence[bytes],
        chunks: Sequence[tuple[int, int, bytes]],
        state: TreeState,
    ) -> None:
        """Persist entries ``start..``, rewritten hash rows and the new tree state, atomically."""
        with self._lock:
            current = self.tree_state()
            if current.size != start or state.size != start + len(entries):
                raise StoreError(
                    f"the store holds a tree of size {current.size}; a batch must start there, "
                    f"got a batch of {len(entries)} entries from {start}"
                )
            self._transaction(
                [
                    (
                        "INSERT INTO {p}entries (idx, data) VALUES (?, ?)",
                        [(start + i, entry) for i, entry in enumerate(entries)],
                    ),
                    (
                        "DELETE FROM {p}hashes WHERE level = ? AND chunk = ?",
                        [(level, chunk) for level, chunk, _ in chunks],
                    ),
                    ("INSERT INTO {p}hashes (level, chunk, data) VALUES (?, ?, ?)", list(chunks)),
                    ("DELETE FROM {p}tree WHERE id = 1", [()]),
                    (
                        "INSERT INTO {p}tree (id, size, root, edge) VALUES (1, ?, ?, ?)",
                        [(state.size, state.root, b"".join(state.edge))],
                    ),
                ]
            )

    def checkpoints(self) -> list[StoredCheckpoint]:
        rows = self._query("SELECT size, root, note FROM {p}checkpoints ORDER BY size")
        return [StoredCheckpoint(int(s), bytes(r), str(n)) for s, r, n in rows]

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        rows = self._query("SELECT size, root, note FROM {p}checkpoints ORDER BY size DESC LIMIT 1")
        if not rows:
            return None
        size, root, note = rows[0]
        return StoredCheckpoint(int(size), bytes(root), str(note))

    def checkpoint_at(self, size: int) -> StoredCheckpoint | None:
        rows = self._query("SELECT size, root, note FROM {p}checkpoints WHERE size = ?", (size,))
        return (
            StoredCheckpoint(int(rows[0][0]), bytes(rows[0][1]), str(rows[0][2])) if rows else None
        )

    def add_checkpoint(self, checkpoint: StoredCheckpoint) -> None:
        """Record a signed checkpoint; one of the same size must carry the same root."""
        with self._lock:
            existing = self.checkpoint_at(checkpoint.size)
            if existing is not None:
                if existing.root != checkpoint.root:
                    raise StoreError(
                        f"a checkpoint of size {checkpoint.size} with another root is already "
                        "signed; the log must never sign two roots for one size"
                    )
                return
            self._transaction(
                [
                    (
                        "INSERT INTO {p}checkpoints (size, root, note) VALUES (?, ?, ?)",
                        [(checkpoint.size, checkpoint.root, checkpoint.note)],
                    )
                ]
            )

    def replace_checkpoint_note(self, size: int, note: str) -> None:
        """Store the same checkpoint with more signatures (witness cosignatures)."""
        self._transaction([("UPDATE {p}checkpoints SET note = ? WHERE size = ?", [(note, size)])])


class SqliteStore(LogStore):
    """A log in one SQLite file, in WAL mode, each commit durable (``synchronous=FULL``)."""

    def __init__(self, path: str | Path, *, create: bool = False, read_only: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(f"no log database at {self.path}; run 'wayhome ledger init' first")
        try:
            if read_only:
                uri = f"file:{self.path}?mode=ro"
                self._conn = sqlite3.connect(
                    uri, uri=True, check_same_thread=False, isolation_level=None
                )
            else:
                self._conn = sqlite3.connect(
                    self.path, check_same_thread=False, isolation_level=None
                )
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")
                self._conn.executescript(_SCHEMA.format(p="", blob="BLOB"))
            self._conn.execute("PRAGMA busy_timeout=10000")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path} must be a SQLite log database: {exc}") from None

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return list(self._conn.execute(self._sql(sql), tuple(params)).fetchall())
            except sqlite3.Error as exc:
                raise StoreError(f"reading the log database {self.path} failed: {exc}") from None

    def _transaction(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    for sql, rows in statements:
                        if rows:
                            self._conn.executemany(self._sql(sql), [tuple(r) for r in rows])
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"writing the log database {self.path} failed: {exc}") from None

    def close(self) -> None:
        self._conn.close()


class PostgresStore(LogStore):
    """A log in PostgreSQL tables named with ``prefix`` (default ``ledger_``)."""

    _placeholder = "%s"
    _blob = "BYTEA"

    def __init__(self, dsn: str, *, prefix: str = "ledger_") -> None:
        super().__init__(prefix)
        import psycopg

        try:
            self._conn = psycopg.connect(dsn, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {exc}") from None
        self._conn.execute(_SCHEMA.format(p=prefix, blob="BYTEA").replace("{p}", prefix))

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._conn.cursor() as cur:
            cur.execute(self._sql(sql), tuple(params))
            return list(cur.fetchall())

    def _transaction(self, statements: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            for sql, rows in statements:
                if rows:
                    cur.executemany(self._sql(sql), [tuple(r) for r in rows])

    def close(self) -> None:
        self._conn.close()


def open_store(
    target: str | Path, *, create: bool = False, table_prefix: str = "ledger_"
) -> LogStore:
    """A PostgreSQL store for a ``postgresql://`` DSN (tables named ``table_prefix...``), else
    SQLite at ``target/log.db``."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresStore(text, prefix=table_prefix)
    directory = Path(target)
    if create:
        directory.mkdir(parents=True, exist_ok=True)
    return SqliteStore(directory / "log.db", create=create)
