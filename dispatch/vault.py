"""The vault: a case's private fields, sealed under the case's data key until retention ends.

The API accepts a case's private fields (the child's name, identity numbers, a guardian's
phone) and hands them only to the vault. The vault is a thin seam over :mod:`chain.privacy`:

1. it commits to the fields' canonical JSON (RFC 8785) with ``chain.privacy``'s salted
   commitment; that commitment is the only trace of the fields that travels, on the ``cases``
   event and into the ``case_opened`` entry of the log, where ``chain.privacy.open_commitment``
   checks it against fields and salt;
2. it seals the opening (salt and fields) with the case's data key (:class:`CaseKeys`, AES-256-GCM
   bound to the case id and the field), in this file; the keys live in a file of their own
   beside it (``<name>-keys.sqlite3``), which a deployment may put behind a KMS;
3. it crypto-shreds: :meth:`Vault.shred` destroys the case's data key, drops the sealed
   opening and leaves a tombstone (case id, when). Nothing on the log changes, so every proof
   still verifies; the fields can never be read again.

A vault file written before it used ``chain.privacy`` (its own SHA-256 commitment, keys in
the same file) is migrated when opened: each opening is resealed under ``CaseKeys`` and keeps
its old commitment, which the log already holds and which :meth:`Vault.open` still checks;
a case whose key was already gone becomes a tombstone without a time. The old tables are
then dropped with ``secure_delete`` on, so the old keys' bytes do not stay in the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import rfc8785
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chain.errors import PrivacyError, ShreddedError
from chain.privacy import SALT_BYTES, CaseKeys, open_commitment
from dispatch.errors import CaseConflict, CaseNotFound, Shredded

logger = logging.getLogger(__name__)

FIELD = "private"
"""The field name the opening is sealed under (part of its associated data)."""

SCHEME = "privacy/v1"
"""``chain.privacy``'s HMAC commitment over the fields' canonical JSON."""

LEGACY_SCHEME = "sha256/v0"
"""SHA-256 over salt and canonical JSON, made by vaults before ``chain.privacy``."""

PrivateStatus = Literal["sealed", "shredded"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sealed_private (
    case_id TEXT PRIMARY KEY,
    scheme TEXT,
    commitment TEXT,
    sealed BLOB,
    shredded INTEGER NOT NULL DEFAULT 0,
    shredded_at TEXT
)
"""


def keys_path_for(path: Path) -> Path:
    """Where the vault at ``path`` keeps its data keys: a file of their own beside it."""
    return path.with_name(f"{path.stem}-keys{path.suffix}")


def legacy_commitment(salt: bytes, fields: dict[str, Any]) -> str:
    """The commitment old vaults made: hex SHA-256 over the salt and the canonical JSON."""
    return hashlib.sha256(salt + rfc8785.dumps(fields)).hexdigest()


class Vault:
    """Private case fields, sealed with ``chain.privacy``'s per-case keys, in SQLite."""

    def __init__(self, path: Path, keys_path: Path | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._keys = CaseKeys(keys_path or keys_path_for(path))
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.execute(_SCHEMA)
        self._migrate()

    # -- sealing and opening -----------------------------------------------------------------

    def seal(self, case_id: str, fields: dict[str, Any]) -> str:
        """Seal ``fields`` under the case's data key; returns the hex commitment to them."""
        if self.status(case_id) == "shredded":
            raise CaseConflict(f"the private fields of case {case_id} were shredded; use a new id")
        try:
            digest, sealed = self._keys.seal_commitment(case_id, FIELD, rfc8785.dumps(fields))
        except ShreddedError:
            raise CaseConflict(
                f"the data key of case {case_id} was shredded; use a new id"
            ) from None
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO sealed_private (case_id, scheme, commitment, sealed) "
                "VALUES (?, ?, ?, ?)",
                (case_id, SCHEME, digest.hex(), sealed),
            )
        return digest.hex()

    def open(self, case_id: str) -> dict[str, Any]:
        """The case's fields and the salt of their commitment, checked against it.

        Raises :class:`Shredded` once the case was shredded, :class:`CaseNotFound` when the
        vault never held fields of the case.
        """
        row = self._row(case_id)
        if row is None:
            raise CaseNotFound(f"the vault holds no private fields of case {case_id}")
        scheme, commitment, sealed, shredded, shredded_at = row
        if shredded or sealed is None:
            raise Shredded(_shredded_sentence(case_id, shredded_at))
        try:
            opening = self._keys.open(case_id, FIELD, bytes(sealed))
        except ShreddedError:
            raise Shredded(_shredded_sentence(case_id, shredded_at)) from None

        if scheme == LEGACY_SCHEME:
            opened: dict[str, Any] = json.loads(opening)
            if legacy_commitment(bytes.fromhex(opened["salt"]), opened["fields"]) != commitment:
                raise PrivacyError(f"the private fields of case {case_id} fail their commitment")
            return opened

        salt, value = opening[:SALT_BYTES], opening[SALT_BYTES:]
        open_commitment(bytes.fromhex(commitment), value, salt)
        return {"salt": salt.hex(), "fields": json.loads(value)}

    # -- shredding ---------------------------------------------------------------------------

    def shred(self, case_id: str, at: datetime) -> bool:
        """Destroy the case's data key and sealed fields; False when it was shredded already.

        The key goes first, so that even a failure after it leaves nothing readable.
        """
        with self._lock:
            row = self._db.execute(
                "SELECT shredded FROM sealed_private WHERE case_id = ?", (case_id,)
            ).fetchone()
            if row is not None and row[0]:
                return False
            self._keys.shred(case_id)
            self._db.execute(
                "INSERT INTO sealed_private (case_id, shredded, shredded_at) VALUES (?, 1, ?) "
                "ON CONFLICT (case_id) DO UPDATE SET sealed = NULL, shredded = 1, "
                "shredded_at = excluded.shredded_at",
                (case_id, at.isoformat()),
            )
        logger.info("private fields shredded case=%s", case_id)
        return True

    def status(self, case_id: str) -> PrivateStatus | None:
        """``sealed``, ``shredded``, or None when the vault knows nothing of the case."""
        row = self._row(case_id)
        if row is None:
            return None
        return "shredded" if row[3] else "sealed"

    def shredded_at(self, case_id: str) -> datetime | None:
        """When the case was shredded (None if it was not, or before the vault kept times)."""
        row = self._row(case_id)
        return datetime.fromisoformat(row[4]) if row is not None and row[4] else None

    def shredded_cases(self) -> set[str]:
        """The ids of every case shredded."""
        with self._lock:
            rows = self._db.execute("SELECT case_id FROM sealed_private WHERE shredded = 1")
            return {case_id for (case_id,) in rows}

    def close(self) -> None:
        self._db.close()
        self._keys.close()

    def _row(self, case_id: str) -> tuple[Any, ...] | None:
        with self._lock:
            row: tuple[Any, ...] | None = self._db.execute(
                "SELECT scheme, commitment, sealed, shredded, shredded_at FROM sealed_private "
                "WHERE case_id = ?",
                (case_id,),
            ).fetchone()
        return row

    # -- migration ---------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Move a vault file of the old layout onto ``CaseKeys``, keeping its commitments."""
        tables = {
            name
            for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if "private_fields" not in tables:
            return
        old_keys: dict[str, bytes] = {}
        if "case_keys" in tables:
            old_keys = dict(self._db.execute("SELECT case_id, data_key FROM case_keys"))
        rows = self._db.execute("SELECT case_id, nonce, ciphertext FROM private_fields").fetchall()

        # (1) reseal each opening under its case's data key (a rerun reuses the same key)
        migrated: list[tuple[str, str | None, bytes | None, int]] = []
        for case_id, nonce, ciphertext in rows:
            key = old_keys.get(case_id)
            if key is None:
                self._keys.shred(case_id)
                migrated.append((case_id, None, None, 1))
                continue
            try:
                plaintext = AESGCM(key).decrypt(nonce, ciphertext, case_id.encode())
            except InvalidTag:
                raise PrivacyError(
                    f"the old vault's fields of case {case_id} do not decrypt; the file is damaged"
                ) from None
            opened = json.loads(plaintext)
            commitment = legacy_commitment(bytes.fromhex(opened["salt"]), opened["fields"])
            migrated.append((case_id, commitment, self._keys.seal(case_id, FIELD, plaintext), 0))

        # (2) the new rows and the end of the old tables, in one transaction
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO sealed_private "
                "(case_id, scheme, commitment, sealed, shredded) VALUES (?, ?, ?, ?, ?)",
                [
                    (case_id, LEGACY_SCHEME, c, sealed, gone)
                    for case_id, c, sealed, gone in migrated
                ],
            )
            self._db.execute("DROP TABLE private_fields")
            self._db.execute("DROP TABLE IF EXISTS case_keys")
            self._db.execute("COMMIT")
        logger.info("vault migrated onto per-case data keys cases=%d", len(migrated))


def _shredded_sentence(case_id: str, shredded_at: str | None) -> str:
    when = f" at {shredded_at}" if shredded_at else ""
    return (
        f"the private fields of case {case_id} were shredded{when}; "
        "they cannot be decrypted any more, only their commitment on the log remains"
    )
