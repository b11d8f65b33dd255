"""The ledger facade: one log, opened from a directory (SQLite) or a PostgreSQL DSN.

A log directory holds ``log.db`` (entries, tree, checkpoints), ``log.key`` (the log's Ed25519
signer key, mode 0600) and ``submitter.key`` (the key that signs the entries this process
submits). A PostgreSQL log keeps its tables in the database and takes its keys from the
caller, since a database is no place for a private key.

A directory log is locked while it is open for writing (``fcntl.flock`` on ``log.lock``), so
a second writer is refused at once instead of interleaving its batches with the first's;
readers take no lock. A PostgreSQL log is not locked: run one sequencer per log.

The verifier keys of the submitters whose entries the log accepts are kept with the log
(``meta.submitters``, one key a line) and published beside the checkpoint at ``submitters``,
so that a verifier can check every signed entry. A log made before its submitters were
recorded records its writer's submitter key the next time it is opened for writing.

:class:`LogReader` serves what a log publishes (checkpoints, tiles, entry bundles, proofs);
:class:`Ledger` adds the sequencer, which appends and signs.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from chain.checkpoint import Checkpoint, open_checkpoint
from chain.cosignature import CosignatureVerifier
from chain.entries import dispatch_record, sign_entry
from chain.errors import ChainError, ProofError, StoreError
from chain.merkle import consistency_proof, inclusion_proof
from chain.note import Note, Signer, Verifier, check_name, parse_note
from chain.proof import ProofBundle
from chain.sequencer import Sequencer
from chain.store import LogStore, StoredCheckpoint, open_store
from chain.tiles import TILE_HEIGHT, TILE_WIDTH, TileId, encode_bundle, parse_path, tile_width
from chain.tree import CHUNK, StoredTree
from chain.witness import cosignatures_of

logger = logging.getLogger(__name__)

LOG_KEY_FILE = "log.key"
SUBMITTER_KEY_FILE = "submitter.key"
LOCK_FILE = "log.lock"
SUBMITTERS = "submitters"
"""The meta key, and the published path, of the submitter verifier keys the log accepts."""


def _is_dsn(target: str | Path) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


class DirectoryLock:
    """An exclusive, non-blocking ``flock`` on a log directory's ``log.lock``; the kernel drops
    it when its process dies, so a killed writer leaves no stale lock behind."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK_FILE
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"the log in {directory} is open by another process") from None
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _read_signer(path: Path) -> Signer:
    try:
        return Signer.from_skey(path.read_text().strip())
    except FileNotFoundError:
        raise StoreError(f"no key at {path}; run 'wayhome ledger init' first") from None


class LogReader:
    """Read access to a log: checkpoints, tiles, entry bundles, entries and proofs."""

    def __init__(self, store: LogStore) -> None:
        self.store = store
        self.tree = StoredTree(store)
        origin = store.get_meta("origin")
        vkey = store.get_meta("vkey")
        if origin is None or vkey is None:
            raise StoreError("this store holds no log; run 'wayhome ledger init' first")
        self.origin: str = origin
        self.verifier = Verifier.from_vkey(vkey)

    @classmethod
    def open(cls, target: str | Path, *, table_prefix: str = "ledger_") -> LogReader:
        """A log directory, or a PostgreSQL DSN whose tables start with ``table_prefix``."""
        return cls(open_store(target, table_prefix=table_prefix))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def vkey(self) -> str:
        """The log's C2SP verifier key: ``<origin>+<hex key ID>+<base64 key>``."""
        return self.verifier.vkey()

    @property
    def submitters(self) -> list[Verifier]:
        """The verifier keys of the submitters whose signed entries the log accepts."""
        return submitters_from_text(self.store.get_meta(SUBMITTERS) or "")

    @property
    def size(self) -> int:
        """The size of the latest signed checkpoint."""
        latest = self.store.latest_checkpoint()
        return latest.size if latest else 0

    def checkpoint_note(self, size: int | None = None) -> str:
        """The signed checkpoint at ``size`` (default: the latest), with its cosignatures."""
        stored = self.store.latest_checkpoint() if size is None else self.store.checkpoint_at(size)
        if stored is None:
            what = "any size" if size is None else f"size {size}"
            raise StoreError(f"the log has signed no checkpoint of {what}")
        return stored.note

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        checkpoint, _, _ = open_checkpoint(self.checkpoint_note(size), [self.verifier])
        return checkpoint

    def entry(self, index: int) -> bytes:
        return self.entries(index, index + 1)[0]

    def entries(self, start: int, end: int) -> list[bytes]:
        size = self.size
        if not 0 <= start <= end <= size:
            raise StoreError(f"entries must lie within 0..{size}, got {start}..{end}")
        return self.store.read_entries(start, end)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self.size if size is None else size
        self._check_size(size)
        return inclusion_proof(index, size, self.tree)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """``PROOF(size1, D[size2])`` between two sizes, the newer one signed by the log.

        RFC 9162 defines no proof from the empty tree (every tree extends it), so ``size1``
        must be at least 1.
        """
        size2 = self.size if size2 is None else size2
        if size1 < 1:
            raise ProofError(
                f"a consistency proof needs an old size of at least 1, got {size1}: the proof "
                "from the empty tree is empty by RFC 9162, since every tree extends it"
            )
        if size1 > size2:
            raise ProofError(
                f"a consistency proof needs an old size at most the new one, got {size1} > {size2}"
            )
        if self.store.checkpoint_at(size2) is None:
            raise ProofError(
                f"a consistency proof needs a new size the log signed, got {size2}, "
                "which no checkpoint of the log covers exactly"
            )
        self._check_size(size2)
        return consistency_proof(size1, size2, self.tree)

    def proof_bundle(self, index: int, size: int | None = None, extra: bytes | None = None) -> str:
        """A ``c2sp.org/tlog-proof@v1`` bundle for entry ``index`` at a signed size."""
        note = self.checkpoint_note(size)
        checkpoint = Checkpoint.from_body(parse_note(note).text)
        proof = inclusion_proof(index, checkpoint.size, self.tree)
        return ProofBundle(index, tuple(proof), note, extra).to_text()

    def _check_size(self, size: int) -> None:
        if size > self.store.tree_state().size:
            raise ProofError(f"the log holds {self.store.tree_state().size} entries, not {size}")

    def read_tile(self, tile: TileId) -> bytes:
        """The bytes of a tile or entry bundle, if the signed tree holds it."""
        size = self.size
        level = 0 if tile.level is None else tile.level
        if tile_width(level, tile.index, size) < tile.width:
            raise StoreError(f"{tile.path()} is beyond the log's signed size {size}")
        if tile.level is None:
            start = tile.index * TILE_WIDTH
            return encode_bundle(self.store.read_entries(start, start + tile.width))
        rows = self.store.read_chunks(tile.level * TILE_HEIGHT, [tile.index * TILE_WIDTH // CHUNK])
        data = rows.get(tile.index)
        if data is None or len(data) < tile.width * 32:
            raise StoreError(f"the store lacks the hashes of {tile.path()}")
        return data[: tile.width * 32]

    def read_path(self, path: str) -> bytes:
        """A tlog-tiles resource by its path: ``checkpoint`` or ``tile/...``."""
        if path.strip("/") == "checkpoint":
            return self.checkpoint_note().encode()
        if path.strip("/") == SUBMITTERS:
            return "".join(v.vkey() + "\n" for v in self.submitters).encode()
        return self.read_tile(parse_path(path))


class Ledger(LogReader):
    """A log that appends: the facade the dispatcher uses.

    ``append(entry) -> index`` queues an entry (a batch is integrated and signed when it is
    full or old); ``flush()`` integrates what is queued and returns the signed checkpoint.
    An index is durable once the batch holding it is integrated.
    """

    def __init__(
        self,
        store: LogStore,
        signer: Signer,
        *,
        submitter: Signer | None = None,
        batch_size: int = 4096,
        batch_age_ms: int = 500,
        clock: Callable[[], float] | None = None,
        lock: DirectoryLock | None = None,
    ) -> None:
        self._directory_lock = lock
        try:
            self._start(store, signer, submitter, batch_size, batch_age_ms, clock)
        except BaseException:
            store.close()
            if lock is not None:
                lock.release()
            raise

    def _start(
        self,
        store: LogStore,
        signer: Signer,
        submitter: Signer | None,
        batch_size: int,
        batch_age_ms: int,
        clock: Callable[[], float] | None,
    ) -> None:
        super().__init__(store)
        if signer.vkey() != self.vkey:
            raise StoreError("the signer key is not this log's key")
        self.signer = signer
        self.submitter = submitter or signer
        accepted = [v.vkey() for v in self.submitters]
        if not accepted:
            # A log made before its submitters were recorded: its writer's key is the one.
            self.accept_submitter(self.submitter.verifier())
        elif self.submitter.vkey() not in accepted:
            raise StoreError(
                f"the submitter key {self.submitter.vkey()} is not one this log accepts; "
                "add it with Ledger.accept_submitter first"
            )
        kwargs: dict[str, Any] = {"batch_size": batch_size, "batch_age_ms": batch_age_ms}
        if clock is not None:
            kwargs["clock"] = clock
        self.sequencer = Sequencer(store, signer, self.origin, **kwargs)
        self.tree = self.sequencer.tree

    @classmethod
    def init(
        cls,
        target: str | Path,
        origin: str,
        *,
        signer: Signer | None = None,
        submitter: Signer | None = None,
        table_prefix: str = "ledger_",
        **options: Any,
    ) -> Ledger:
        """Create a new, empty log with a fresh key (or ``signer``) and sign its empty tree."""
        check_name(origin)
        if signer is not None and signer.name != origin:
            raise StoreError(
                f"the log key must be named after the origin {origin}, got {signer.name}"
            )
        # Until the log is handed over, a failure releases what was taken, in reverse order.
        with contextlib.ExitStack() as undo:
            lock = None
            if not _is_dsn(target):
                directory = Path(target)
                if (directory / "log.db").exists():
                    raise StoreError(f"a log already exists in {directory}")
                directory.mkdir(parents=True, exist_ok=True)
                lock = DirectoryLock(directory)
                undo.callback(lock.release)
                signer = signer or Signer.generate(origin)
                submitter = submitter or Signer.generate(f"{origin}/submitter")
                _write_secret(directory / LOG_KEY_FILE, signer.skey())
                _write_secret(directory / SUBMITTER_KEY_FILE, submitter.skey())
            elif signer is None:
                raise StoreError("a PostgreSQL log needs its signer key passed in")
            store = open_store(target, create=True, table_prefix=table_prefix)
            undo.callback(store.close)
            if store.get_meta("origin") is not None:
                raise StoreError("the database already holds a log")
            store.set_meta("origin", origin)
            store.set_meta("vkey", signer.vkey())
            store.set_meta(SUBMITTERS, (submitter or signer).vkey() + "\n")
            logger.info("created log origin=%s", origin)
            undo.pop_all()
        return cls(store, signer, submitter=submitter, lock=lock, **options)

    @classmethod
    def open(
        cls,
        target: str | Path,
        *,
        signer: Signer | None = None,
        submitter: Signer | None = None,
        table_prefix: str = "ledger_",
        **options: Any,
    ) -> Ledger:
        """Open an existing log; a directory's keys are read from its key files."""
        with contextlib.ExitStack() as undo:
            lock = None
            if not _is_dsn(target):
                directory = Path(target)
                if not (directory / "log.db").exists():
                    raise StoreError(f"no log in {directory}; run 'wayhome ledger init' first")
                signer = signer or _read_signer(directory / LOG_KEY_FILE)
                if submitter is None and (directory / SUBMITTER_KEY_FILE).exists():
                    submitter = _read_signer(directory / SUBMITTER_KEY_FILE)
                lock = DirectoryLock(directory)
                undo.callback(lock.release)
            elif signer is None:
                raise StoreError("a PostgreSQL log needs its signer key passed in")
            store = open_store(target, table_prefix=table_prefix)
            undo.pop_all()
        return cls(store, signer, submitter=submitter, lock=lock, **options)

    def accept_submitter(self, verifier: Verifier) -> None:
        """Accept entries signed by one more submitter key from now on."""
        keys = [v.vkey() for v in self.submitters]
        if verifier.vkey() not in keys:
            keys.append(verifier.vkey())
            self.store.set_meta(SUBMITTERS, "".join(k + "\n" for k in keys))
            logger.info("accepting submitter name=%s", verifier.name)

    @property
    def next_index(self) -> int:
        return self.sequencer.next_index

    def append(self, entry: bytes) -> int:
        """Queue one entry; its index. Integrates and signs when the batch is due."""
        return self.sequencer.add(entry)

    def append_many(self, entries: Iterable[bytes]) -> list[int]:
        """Queue many entries at once (faster than one by one); their indices."""
        return self.sequencer.add_many(list(entries))

    def tick(self) -> str | None:
        """Integrate the batch if its time is up; the new signed checkpoint, or ``None``."""
        stored = self.sequencer.tick()
        return stored.note if stored else None

    def flush(self) -> str:
        """Integrate every queued entry now; the signed checkpoint covering them."""
        return self.sequencer.integrate().note

    def close(self, *, flush: bool = True) -> None:
        """Integrate what is queued (unless ``flush`` is false), close the store, unlock."""
        try:
            if flush and self.sequencer.pending:
                self.flush()
        finally:
            super().close()
            if self._directory_lock is not None:
                self._directory_lock.release()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        # After a failure, what is queued is not integrated: the caller never saw it durable.
        self.close(flush=not exc or exc[0] is None)

    def dispatch_entry(
        self,
        case_id: str,
        tick: int,
        time: datetime,
        area_digest: bytes,
        recipients: Sequence[bytes],
    ) -> bytes:
        """The signed entry of one dispatch (not appended): recipients are pseudonyms."""
        return sign_entry(
            dispatch_record(case_id, tick, time, area_digest, recipients), self.submitter
        )

    def append_record(self, record: dict[str, Any]) -> int:
        """Sign a record (``chain.entries``) with the submitter key and append it."""
        return self.append(sign_entry(record, self.submitter))

    def add_cosignatures(self, size: int, lines: str, witness: CosignatureVerifier) -> str:
        """Attach a witness's cosignature lines to the checkpoint of ``size``; the new note.

        Only lines that verify against ``witness`` are kept (``chain.witness.cosignatures_of``).
        """
        note = parse_note(self.checkpoint_note(size))
        extra = cosignatures_of(note.to_bytes(), lines, witness)
        known = {(s.name, s.key_id) for s in note.signatures}
        merged = Note(
            note.text, note.signatures + tuple(s for s in extra if (s.name, s.key_id) not in known)
        )
        text = merged.to_bytes().decode()
        self.store.replace_checkpoint_note(size, text)
        return text


def submitters_from_text(text: str) -> list[Verifier]:
    """Submitter verifier keys, one a line, as kept in a log's meta and published."""
    return [Verifier.from_vkey(line) for line in text.splitlines() if line.strip()]


__all__ = ["ChainError", "Ledger", "LogReader", "StoredCheckpoint"]
