"""Tokens hashed at rest with roles; private case fields sealed per case and shreddable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from dispatch.auth import TokenStore, require_role
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
