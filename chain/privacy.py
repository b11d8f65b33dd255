"""Personal data off the log: salted commitments, per-case data keys, crypto-shredding.

- A commitment is ``HMAC-SHA256(salt, "wayhome/commit/v1\\n" || value)`` with a fresh 32-byte
  salt. The log holds the commitment only; the salt and the value stay off it, sealed under
  the case's data key. Whoever later holds value and salt can show the log committed to them;
  no one can learn the value from the commitment.
- Each case has its own 256-bit data key; private fields are sealed with AES-256-GCM
  (``cryptography``), a random 96-bit nonce, and the case id and field name as associated
  data, so a sealed field cannot be moved to another case or field.
- Shredding a case destroys its key (SQLite ``secure_delete`` overwrites the freed pages) and
  leaves a tombstone. Every sealed field and every commitment's opening becomes unrecoverable,
  while every log entry, and so every proof, stays exactly as it was.

The key store is its own SQLite file, never the log's: the log is replicated to other
parties, the keys must not be.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chain.errors import PrivacyError, ShreddedError

logger = logging.getLogger(__name__)

COMMIT_CONTEXT = b"wayhome/commit/v1\n"
SALT_BYTES = 32
NONCE_BYTES = 12


@dataclass(frozen=True)
class Commitment:
    """A commitment (safe for the log) and its salt (never on the log)."""

    digest: bytes
    salt: bytes


def commit(value: bytes, salt: bytes | None = None) -> Commitment:
    """Commit to ``value`` with a fresh (or given) 32-byte salt."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise PrivacyError(f"a commitment salt must be {SALT_BYTES} bytes, got {len(salt)}")
    return Commitment(hmac.new(salt, COMMIT_CONTEXT + value, hashlib.sha256).digest(), salt)


def open_commitment(digest: bytes, value: bytes, salt: bytes) -> None:
    """Check that ``digest`` commits to ``value`` under ``salt``."""
    if not hmac.compare_digest(commit(value, salt).digest, digest):
        raise PrivacyError("the commitment does not open to this value and salt")


class CaseKeys:
    """Per-case AES-256-GCM data keys in a SQLite file, destroyed on :meth:`shred`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA secure_delete=ON")
        self._conn.execute("PRAGMA journal_mode=DELETE")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS case_keys (case_id TEXT PRIMARY KEY, key BLOB, "
            "shredded INTEGER NOT NULL DEFAULT 0)"
        )

    def close(self) -> None:
        self._conn.close()

    def _key(self, case_id: str, *, create: bool) -> bytes:
        with self._lock:
            row = self._conn.execute(
                "SELECT key, shredded FROM case_keys WHERE case_id = ?", (case_id,)
            ).fetchone()
            if row is not None and row[1]:
                raise ShreddedError(f"the data key of case {case_id} was shredded")
            if row is not None:
                return bytes(row[0])
            if not create:
                raise PrivacyError(f"case {case_id} has no data key")
            key = AESGCM.generate_key(bit_length=256)
            self._conn.execute("INSERT INTO case_keys (case_id, key) VALUES (?, ?)", (case_id, key))
            return key

    def seal(self, case_id: str, field: str, plaintext: bytes) -> bytes:
        """Encrypt one private field of a case: ``nonce || ciphertext``."""
        key = self._key(case_id, create=True)
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(case_id, field))

    def open(self, case_id: str, field: str, sealed: bytes) -> bytes:
        """Decrypt a sealed field; :class:`ShreddedError` once the case was shredded."""
        key = self._key(case_id, create=False)
        try:
            return AESGCM(key).decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _aad(case_id, field)
            )
        except InvalidTag:
            raise PrivacyError(
                f"field {field!r} of case {case_id} does not decrypt: wrong case, field or data"
            ) from None

    def seal_commitment(self, case_id: str, field: str, value: bytes) -> tuple[bytes, bytes]:
        """Commit to a private value; the commitment for the log and the sealed opening."""
        commitment = commit(value)
        return commitment.digest, self.seal(case_id, field, commitment.salt + value)

    def open_commitment(self, case_id: str, field: str, digest: bytes, sealed: bytes) -> bytes:
        """The value behind a commitment, checked against it."""
        opening = self.open(case_id, field, sealed)
        salt, value = opening[:SALT_BYTES], opening[SALT_BYTES:]
        open_commitment(digest, value, salt)
        return value

    def shred(self, case_id: str) -> None:
        """Destroy the case's data key for good; sealed fields become unrecoverable."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("DELETE FROM case_keys WHERE case_id = ?", (case_id,))
            self._conn.execute(
                "INSERT INTO case_keys (case_id, key, shredded) VALUES (?, NULL, 1)", (case_id,)
            )
            self._conn.execute("COMMIT")
        logger.info("shredded the data key of a case")


def _aad(case_id: str, field: str) -> bytes:
    return b"wayhome/field/v1\n" + case_id.encode() + b"\n" + field.encode()
