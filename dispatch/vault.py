"""The vault: a case's private fields, encrypted at rest with a key of its own.

The API accepts a case's private fields (the child's name, identity numbers, a guardian's
phone) and hands them only to the vault. The vault

1. draws a fresh 256-bit key per case and encrypts the fields with AES-256-GCM (the case id is
   the associated data, so a ciphertext moved to another case does not decrypt);
2. computes a salted commitment, SHA-256 over a random salt and the fields' canonical JSON
   (RFC 8785), which is the only trace of them that travels: on the ``cases`` event and into
   the log. Whoever holds the fields and the salt can later prove what was filed; whoever
   holds only the commitment learns nothing;
3. crypto-shreds on request: deleting the key makes the ciphertext unreadable for good, which
   is how retention ends without rewriting anything that was replicated.

The keys sit in the same SQLite file as the ciphertexts here; a deployment that wants them
apart puts this file's key table behind a KMS. ``chain.privacy`` carries the same scheme for
the log's side; this module is the seam the API uses.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dispatch.errors import CaseNotFound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS case_keys (case_id TEXT PRIMARY KEY, data_key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS private_fields (
    case_id TEXT PRIMARY KEY, nonce BLOB NOT NULL, ciphertext BLOB NOT NULL
);
"""


def commitment(salt: bytes, fields: dict[str, Any]) -> str:
    """Hex SHA-256 over the salt and the fields' canonical JSON."""
    return hashlib.sha256(salt + rfc8785.dumps(fields)).hexdigest()


class Vault:
    """Private case fields, one AES-GCM key per case, in SQLite."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)

    def seal(self, case_id: str, fields: dict[str, Any]) -> str:
        """Encrypt ``fields`` under a new key of the case; returns the commitment."""
        salt = os.urandom(32)
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        plaintext = json.dumps({"salt": salt.hex(), "fields": fields}).encode()
        ciphertext = AESGCM(key).encrypt(nonce, plaintext, case_id.encode())
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO case_keys VALUES (?, ?)", (case_id, key))
            self._db.execute(
                "INSERT OR REPLACE INTO private_fields VALUES (?, ?, ?)",
                (case_id, nonce, ciphertext),
            )
        return commitment(salt, fields)

    def open(self, case_id: str) -> dict[str, Any]:
        """The case's private fields and salt; CaseNotFound when absent or shredded."""
        with self._lock:
            key_row = self._db.execute(
                "SELECT data_key FROM case_keys WHERE case_id = ?", (case_id,)
            ).fetchone()
            data_row = self._db.execute(
                "SELECT nonce, ciphertext FROM private_fields WHERE case_id = ?", (case_id,)
            ).fetchone()
        if key_row is None or data_row is None:
            raise CaseNotFound(f"case {case_id} has no private fields, or they were shredded")
        plaintext = AESGCM(key_row[0]).decrypt(data_row[0], data_row[1], case_id.encode())
        opened: dict[str, Any] = json.loads(plaintext)
        return opened

    def shred(self, case_id: str) -> bool:
        """Destroy the case's key; its ciphertext can never be read again."""
        with self._lock, self._db:
            cursor = self._db.execute("DELETE FROM case_keys WHERE case_id = ?", (case_id,))
        return cursor.rowcount > 0

    def close(self) -> None:
        self._db.close()
