"""Bearer tokens with roles, hashed at rest.

Roles and what they may do:

| role       | may                                                                     |
|------------|-------------------------------------------------------------------------|
| police     | file, change and close cases; everything an analyst may                  |
| platform   | create subscribers; change, delete and stream the notices of its own;   |
|            | read cases                                                              |
| analyst    | read cases, areas, CAP documents and the log                            |

A subscriber belongs to the platform token that created it through the API: the store records
the token's id (``tok_...``, never the token) beside the subscriber id, and only that token may
change it, delete it or open its notices stream. Police and analysts may do none of these: a
subscriber's position and notices are the platform's users' business, not the case's. A
subscriber imported by the operator (``wayhome subscribers import``) has no owner, so no token
may change it through the API; the operator manages it.

A token is ``wh_<role>_<43 random url-safe characters>`` (256 bits from :mod:`secrets`); it is
shown once, when created (``wayhome tokens create --role police``), and stored only as its
SHA-256. A fast hash is the right one here: a token is a random key, not a password, so there
is nothing to guess in it and a slow hash would only slow every request. Tokens live in
``tokens.sqlite3`` in the data dir, or in PostgreSQL when a database URL is set (not done yet:
tokens stay in SQLite either way).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, get_args

from dispatch.errors import Forbidden, InvalidInput, Unauthenticated

Role = Literal["police", "platform", "analyst"]
ROLES: tuple[str, ...] = get_args(Role)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    token_sha256 TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    label TEXT NOT NULL,
    created_at TEXT NOT NULL,
    token_id TEXT
);
CREATE TABLE IF NOT EXISTS subscriber_owners (
    subscriber_id TEXT PRIMARY KEY,
    token_id TEXT NOT NULL,
    claimed_at TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's role, label and id (``tok_...``, safe to store and log)."""

    role: str
    label: str
    token_id: str = ""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token_id() -> str:
    return f"tok_{secrets.token_hex(8)}"


class TokenStore:
    """Tokens by their SHA-256, in SQLite."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.executescript(_SCHEMA)

            # Stores made before tokens had ids get one per token, so they can own subscribers.
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(tokens)")}
            if "token_id" not in columns:
                self._db.execute("ALTER TABLE tokens ADD COLUMN token_id TEXT")
            for (digest,) in self._db.execute(
                "SELECT token_sha256 FROM tokens WHERE token_id IS NULL"
            ).fetchall():
                self._db.execute(
                    "UPDATE tokens SET token_id = ? WHERE token_sha256 = ?", (_token_id(), digest)
                )

    def create(self, role: str, label: str = "") -> str:
        """A new token of ``role``; the only time the token itself is seen."""
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        token = f"wh_{role}_{secrets.token_urlsafe(32)}"
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO tokens (token_sha256, role, label, created_at, token_id) "
                "VALUES (?, ?, ?, ?, ?)",
                (_digest(token), role, label, datetime.now(UTC).isoformat(), _token_id()),
            )
        return token

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer ...`` header value."""
        if not authorization:
            raise Unauthenticated("this endpoint needs an Authorization: Bearer <token> header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must read 'Bearer <token>'")
        digest = _digest(token.strip())
        with self._lock:
            row = self._db.execute(
                "SELECT token_sha256, role, label, token_id FROM tokens WHERE token_sha256 = ?",
                (digest,),
            ).fetchone()
        if row is None or not hmac.compare_digest(row[0], digest):
            raise Unauthenticated(
                "the bearer token is not one wayhome knows; create one with "
                "'wayhome tokens create --role ...'"
            )
        return Principal(role=row[1], label=row[2], token_id=row[3])

    def owner_of(self, subscriber_id: str) -> str | None:
        """The id of the token that owns ``subscriber_id``, or None if no token does."""
        with self._lock:
            row = self._db.execute(
                "SELECT token_id FROM subscriber_owners WHERE subscriber_id = ?", (subscriber_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def claim(self, subscriber_id: str, principal: Principal) -> bool:
        """Make ``principal`` the owner of ``subscriber_id`` unless a token owns it already.

        Returns whether this call made the claim; the check and the write are one statement, so
        two tokens racing for a new id cannot both win.
        """
        with self._lock, self._db:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO subscriber_owners VALUES (?, ?, ?)",
                (subscriber_id, principal.token_id, datetime.now(UTC).isoformat()),
            )
        return cursor.rowcount == 1

    def release(self, subscriber_id: str) -> None:
        """Forget who owned ``subscriber_id`` (it was deleted)."""
        with self._lock, self._db:
            self._db.execute(
                "DELETE FROM subscriber_owners WHERE subscriber_id = ?", (subscriber_id,)
            )

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM tokens").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def require_owner(principal: Principal, subscriber_id: str, owner: str | None) -> None:
    """Refuse a principal that is not the token owning ``subscriber_id``."""
    if owner is None:
        raise Forbidden(
            f"subscriber {subscriber_id!r} was imported by the operator, not created through "
            "the API; no token may change or stream it"
        )
    if owner != principal.token_id:
        raise Forbidden(
            f"subscriber {subscriber_id!r} belongs to another platform token; only the token "
            "that created it may change, delete or stream it"
        )


def require_role(principal: Principal, *roles: str) -> None:
    """Refuse a principal whose role is not among ``roles``."""
    if principal.role not in roles:
        raise Forbidden(
            f"a {principal.role} token may not do this; it needs a {' or '.join(roles)} token"
        )
