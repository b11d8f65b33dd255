"""Bearer tokens with roles, hashed at rest.

Roles and what they may do:

| role       | may                                                                     |
|------------|-------------------------------------------------------------------------|
| police     | file, change and close cases; everything an analyst may                  |
| platform   | create, change and delete subscribers; read their notices; read cases   |
| analyst    | read cases, areas, CAP documents and the log                            |

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
    created_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's role and label."""

    role: str
    label: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Tokens by their SHA-256, in SQLite."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.execute(_SCHEMA)

    def create(self, role: str, label: str = "") -> str:
        """A new token of ``role``; the only time the token itself is seen."""
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        token = f"wh_{role}_{secrets.token_urlsafe(32)}"
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?)",
                (_digest(token), role, label, datetime.now(UTC).isoformat()),
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
                "SELECT token_sha256, role, label FROM tokens WHERE token_sha256 = ?", (digest,)
            ).fetchone()
        if row is None or not hmac.compare_digest(row[0], digest):
            raise Unauthenticated(
                "the bearer token is not one wayhome knows; create one with "
                "'wayhome tokens create --role ...'"
            )
        return Principal(role=row[1], label=row[2])

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM tokens").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def require_role(principal: Principal, *roles: str) -> None:
    """Refuse a principal whose role is not among ``roles``."""
    if principal.role not in roles:
        raise Forbidden(
            f"a {principal.role} token may not do this; it needs a {' or '.join(roles)} token"
        )
