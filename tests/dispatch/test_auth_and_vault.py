"""Tokens hashed at rest with roles; private case fields sealed per case and shreddable."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from dispatch.auth import TokenStore, require_owner, require_role
from dispatch.errors import CaseNotFound, Forbidden, InvalidInput, Unauthenticated
from dispatch.vault import Vault, commitment


def test_a_token_is_stored_only_as_its_hash_and_authenticates_its_role(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.sqlite3")
    token = store.create("police", "desk 4")
    assert token.startswith("wh_police_")
    principal = store.authenticate(f"Bearer {token}")
    assert (principal.role, principal.label) == ("police", "desk 4")
    store.close()
    raw = (tmp_path / "tokens.sqlite3").read_bytes()
    assert token.encode() not in raw and token.split("_", 2)[2].encode() not in raw


def test_an_unknown_role_or_token_is_refused(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.sqlite3")
    with pytest.raises(InvalidInput, match="role must be one of police, platform, analyst"):
        store.create("admin")
    with pytest.raises(Unauthenticated):
        store.authenticate("Bearer wh_police_guessed")
    analyst = store.authenticate(f"Bearer {store.create('analyst')}")
    with pytest.raises(Forbidden, match="needs a police token"):
        require_role(analyst, "police")


def test_each_token_has_an_id_that_owns_the_subscribers_it_claims(tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens.sqlite3")
    token = store.create("platform", "app a")
    first = store.authenticate(f"Bearer {token}")
    second = store.authenticate(f"Bearer {store.create('platform', 'app a')}")
    assert first.token_id.startswith("tok_") and first.token_id != second.token_id
    assert first.token_id not in token

    assert store.claim("dev-1", first) and not store.claim("dev-1", second)
    assert store.owner_of("dev-1") == first.token_id
    require_owner(first, "dev-1", store.owner_of("dev-1"))
    with pytest.raises(Forbidden, match="belongs to another platform token"):
        require_owner(second, "dev-1", store.owner_of("dev-1"))
    with pytest.raises(Forbidden, match="imported by the operator"):
        require_owner(first, "dev-imported", store.owner_of("dev-imported"))

    store.release("dev-1")
    assert store.owner_of("dev-1") is None and store.claim("dev-1", second)


def test_a_store_made_before_token_ids_gives_its_tokens_ids(tmp_path: Path) -> None:
    path = tmp_path / "tokens.sqlite3"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE tokens (token_sha256 TEXT PRIMARY KEY, role TEXT NOT NULL, "
        "label TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    digest = hashlib.sha256(b"wh_platform_old").hexdigest()
    old.execute(
        "INSERT INTO tokens VALUES (?, 'platform', 'old', '2026-01-01T00:00:00+00:00')", (digest,)
    )
    old.commit()
    old.close()

    principal = TokenStore(path).authenticate("Bearer wh_platform_old")
    assert principal.role == "platform" and principal.token_id.startswith("tok_")
    assert TokenStore(path).authenticate("Bearer wh_platform_old") == principal


def test_private_fields_are_sealed_per_case_and_gone_once_shredded(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "vault.sqlite3")
    fields = {"name": "Wang Xiaoming", "id_number": "410102201901010011"}
    digest = vault.seal("c-1", fields)
    assert len(digest) == 64
    opened = vault.open("c-1")
    assert opened["fields"] == fields
    assert commitment(bytes.fromhex(opened["salt"]), fields) == digest

    rows = (
        sqlite3.connect(tmp_path / "vault.sqlite3")
        .execute("SELECT ciphertext FROM private_fields")
        .fetchall()
    )
    assert all(b"Wang" not in row[0] for row in rows)

    assert vault.shred("c-1")
    with pytest.raises(CaseNotFound, match="shredded"):
        vault.open("c-1")
