"""Tokens hashed at rest with roles; private case fields sealed per case and shreddable."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chain.entries import canonical
from chain.privacy import open_commitment
from dispatch.auth import TokenStore, require_owner, require_role
from dispatch.errors import CaseNotFound, Forbidden, InvalidInput, Shredded, Unauthenticated
from dispatch.vault import Vault, legacy_commitment
from tests.dispatch.harness import START


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
    assert len(digest) == 64 and vault.status("c-1") == "sealed"
    opened = vault.open("c-1")
    assert opened["fields"] == fields

    # The commitment is chain.privacy's: it opens to the fields' canonical JSON and the salt.
    open_commitment(bytes.fromhex(digest), canonical(fields), bytes.fromhex(opened["salt"]))

    for name in ("vault.sqlite3", "vault-keys.sqlite3"):
        assert b"Wang" not in (tmp_path / name).read_bytes()

    assert vault.shred("c-1", START)
    assert not vault.shred("c-1", START + timedelta(hours=1)), "a second shred is a no-op"
    assert vault.status("c-1") == "shredded" and vault.shredded_at("c-1") == START
    with pytest.raises(Shredded, match="cannot be decrypted"):
        vault.open("c-1")
    with pytest.raises(CaseNotFound, match="no private fields"):
        vault.open("c-never")
    vault.close()


def _old_vault(path: Path, cases: dict[str, dict[str, str]], key_gone: str) -> dict[str, str]:
    """A vault file as written before the vault used chain.privacy; the commitments it made."""
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE case_keys (case_id TEXT PRIMARY KEY, data_key BLOB NOT NULL);"
        "CREATE TABLE private_fields (case_id TEXT PRIMARY KEY, nonce BLOB NOT NULL, "
        "ciphertext BLOB NOT NULL);"
    )
    made: dict[str, str] = {}
    for case_id, fields in cases.items():
        salt, key, nonce = os.urandom(32), AESGCM.generate_key(bit_length=256), os.urandom(12)
        plaintext = json.dumps({"salt": salt.hex(), "fields": fields}).encode()
        sealed = AESGCM(key).encrypt(nonce, plaintext, case_id.encode())
        db.execute("INSERT INTO private_fields VALUES (?, ?, ?)", (case_id, nonce, sealed))
        if case_id != key_gone:
            db.execute("INSERT INTO case_keys VALUES (?, ?)", (case_id, key))
        made[case_id] = legacy_commitment(salt, fields)
    db.commit()
    db.close()
    return made


def test_an_old_vault_is_migrated_and_keeps_its_commitments(tmp_path: Path) -> None:
    path = tmp_path / "vault.sqlite3"
    fields = {"name": "Li Hua", "id_number": "410102201801010022"}
    made = _old_vault(path, {"c-old": fields, "c-gone": {"name": "Zhao Lei"}}, key_gone="c-gone")

    vault = Vault(path)
    opened = vault.open("c-old")
    assert opened["fields"] == fields
    assert legacy_commitment(bytes.fromhex(opened["salt"]), fields) == made["c-old"]
    with pytest.raises(Shredded):
        vault.open("c-gone")
    vault.close()

    tables = {
        row[0]
        for row in sqlite3.connect(path).execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
    }
    assert tables == {"sealed_private"}
    assert Vault(path).open("c-old")["fields"] == fields, "a second open finds it migrated"
