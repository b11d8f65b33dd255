"""Signed notes, checkpoints and cosignatures against the published examples.

- c2sp.org/signed-note: the example key ``example.com/foo`` and its signed message;
- golang.org/x/mod sumdb/note: the PeterNeumann signer key, its verifier key, its signature
  (Ed25519 is deterministic, so signing must reproduce it byte for byte), the EnochRoot key;
- a real checkpoint of a CT log (arche2025h1.staging.ct.transparency.dev) carrying a v1 Ed25519
  cosignature of the remora.n621.de witness.
"""

from __future__ import annotations

import pytest

from chain.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from chain.cosignature import (
    CosignatureSigner,
    CosignatureVerifier,
    cosignature_time,
    cosigned_message,
)
from chain.errors import CheckpointError, NoteError
from chain.note import Signature, Signer, Verifier, key_id, open_note, parse_note, sign_note

SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mF"
    "XmRKuwHjG1Yu72IneyaQM=\n"
)
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
PETER_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIGNATURE = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngot"
    "pRZb6KE6RyyBwJnAM=\n"
)
CT_LOG_VKEY = (
    "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
)
REMORA_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
CT_CHECKPOINT = (
    "arche2025h1.staging.ct.transparency.dev\n"
    "1432088532\n"
    "U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n"
    "\n"
    "\u2014 arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6ho"
    "GREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=\n"
    "\u2014 arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUk"
    "zbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n"
    "\u2014 remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIo"
    "bWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==\n"
)


def test_the_signed_note_spec_example_verifies() -> None:
    verifier = Verifier.from_vkey(SPEC_VKEY)
    assert verifier.key_id == 0x530D903A
    note, verified = open_note(SPEC_NOTE, [verifier])
    assert note.text == "This is an example message.\n"
    assert [s.name for s in verified] == ["example.com/foo"]
    assert note.to_bytes() == SPEC_NOTE.encode()


def test_the_go_signer_key_reproduces_the_go_signature_byte_for_byte() -> None:
    signer = Signer.from_skey(PETER_SKEY)
    assert signer.vkey() == PETER_VKEY
    assert signer.skey() == PETER_SKEY
    assert sign_note(PETER_TEXT, [signer]).decode() == PETER_TEXT + "\n" + PETER_SIGNATURE


def test_the_go_verifier_keys_parse_and_print_back() -> None:
    for vkey in (PETER_VKEY, ENOCH_VKEY, SPEC_VKEY, REMORA_VKEY):
        assert Verifier.from_vkey(vkey).vkey() == vkey
    assert isinstance(Verifier.from_vkey(REMORA_VKEY), CosignatureVerifier)


def test_the_key_id_hashes_name_newline_type_and_key() -> None:
    verifier = Verifier.from_vkey(PETER_VKEY)
    assert key_id("PeterNeumann", 0x01, verifier.public_key) == 0xC74F20A3


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("PeterNeumann", "must read"),
        ("PeterNeumann+c74f20a3", "must read"),
        (PETER_VKEY.replace("c74f20a3", "c74f20a4"), "does not match"),
        (PETER_VKEY.replace("c74f20a3", "C74F20A3"), "lowercase hex"),
        (PETER_VKEY.replace("c74f20a3", "c74f20a"), "lowercase hex"),
        (PETER_VKEY + "!", "base64"),
        (PETER_VKEY.replace("PeterNeumann", "Peter Neumann"), "without spaces"),
        ("+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "non-empty"),
        ("PeterNeumann+c74f20a3+Bhpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not supported"),
    ],
)
def test_a_mangled_verifier_key_is_refused(vkey: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        Verifier.from_vkey(vkey)


def test_a_signature_from_an_unknown_key_is_ignored_but_one_known_key_must_verify() -> None:
    peter = Verifier.from_vkey(PETER_VKEY)
    enoch = Verifier.from_vkey(ENOCH_VKEY)
    note = PETER_TEXT + "\n" + PETER_SIGNATURE
    _, verified = open_note(note, [peter, enoch])
    assert [s.name for s in verified] == ["PeterNeumann"]
    with pytest.raises(NoteError, match="no signature on this note is from a known key"):
        open_note(note, [enoch])


def test_a_failing_signature_from_a_known_key_rejects_the_whole_note() -> None:
    altered = PETER_TEXT.replace("answer", "answers") + "\n" + PETER_SIGNATURE
    with pytest.raises(NoteError, match="does not verify"):
        open_note(altered, [Verifier.from_vkey(PETER_VKEY)])


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("no blank line\n\u2014 a AAAAAAA=\n", "blank line"),
        ("text\n\n- a AAAAAAA=\n", "em dash"),
        ("text\n\n\u2014 a AAAAAAA=", "end with a newline"),
        ("text\n\n\u2014 a AAAA\n", "key ID and a signature"),
        ("text\r\n\n\u2014 a AAAAAAA=\n", "control characters"),
        (b"text\xff\n\n" + "\u2014 a AAAAAAA=\n".encode(), "UTF-8"),
    ],
)
def test_a_malformed_note_is_refused(message: str | bytes, error: str) -> None:
    with pytest.raises(NoteError, match=error):
        parse_note(message)


def test_the_note_text_may_hold_blank_lines_split_at_the_last_one() -> None:
    signer = Signer.generate("example.com/poem")
    note = sign_note("one\n\ntwo\n", [signer])
    opened, _ = open_note(note, [signer.verifier()])
    assert opened.text == "one\n\ntwo\n"


def test_a_real_ct_checkpoint_verifies_with_its_log_key_and_a_witness_cosignature() -> None:
    checkpoint, _, verified = open_checkpoint(CT_CHECKPOINT, [Verifier.from_vkey(CT_LOG_VKEY)])
    assert checkpoint.origin == "arche2025h1.staging.ct.transparency.dev"
    assert checkpoint.size == 1432088532
    assert len(verified) == 1
    _, _, cosigned = open_checkpoint(CT_CHECKPOINT, [Verifier.from_vkey(REMORA_VKEY)])
    assert cosignature_time(cosigned[0]) == 1779573024


def test_an_altered_checkpoint_fails_its_cosignature() -> None:
    altered = CT_CHECKPOINT.replace("1432088532", "1432088533")
    with pytest.raises(NoteError, match="does not verify"):
        open_checkpoint(altered, [Verifier.from_vkey(REMORA_VKEY)])


def test_a_checkpoint_body_is_origin_size_and_root_lines() -> None:
    checkpoint = Checkpoint("example.com/log", 20852163, bytes(range(32)))
    body = checkpoint.body()
    assert body == "example.com/log\n20852163\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
    assert Checkpoint.from_body(body) == checkpoint
    signer = Signer.generate("example.com/log")
    parsed, _, _ = open_checkpoint(sign_checkpoint(checkpoint, [signer]), [signer.verifier()])
    assert parsed == checkpoint


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("example.com/log\n12\n", "at least 3 lines"),
        ("example.com/log\n012\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", "leading zeroes"),
        ("example.com/log\n-1\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", "leading zeroes"),
        ("example.com/log\n12\nAAEC\n", "32 bytes"),
        ("\n12\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", "non-empty"),
        ("example.com/log\n12\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "newline"),
    ],
)
def test_a_malformed_checkpoint_body_is_refused(body: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.from_body(body)


def test_a_checkpoint_of_another_origin_is_refused() -> None:
    signer = Signer.generate("example.com/other")
    note = sign_checkpoint(Checkpoint("example.com/other", 1, bytes(32)), [signer])
    with pytest.raises(CheckpointError, match="origin must be"):
        open_checkpoint(note, [signer.verifier()], origin="example.com/log")


def test_a_cosignature_signs_the_header_the_time_and_the_body() -> None:
    witness = CosignatureSigner.generate("witness.example/w1")
    body = Checkpoint("example.com/log", 5, bytes(32)).body().encode()
    signature = witness.cosign(body, 1679315147)
    assert cosigned_message(body, 1679315147).startswith(b"cosignature/v1\ntime 1679315147\n")
    assert cosignature_time(signature) == 1679315147
    assert signature.key_id == key_id("witness.example/w1", 0x04, witness.public_key)
    verifier = CosignatureVerifier.from_vkey(witness.verifier().vkey())
    assert verifier.verify(body, signature.signature)
    assert not verifier.verify(body.replace(b"5", b"6"), signature.signature)
    later = Signature(
        signature.name, signature.key_id, (1679315148).to_bytes(8, "big") + signature.signature[8:]
    )
    assert not verifier.verify(body, later.signature)


def test_a_cosigner_key_is_not_a_log_key() -> None:
    witness = CosignatureSigner.generate("witness.example/w1")
    with pytest.raises(NoteError, match="expected a verifier key of type 0x04"):
        CosignatureVerifier.from_vkey(Signer.generate("witness.example/w1").vkey())
    assert witness.verifier().vkey().split("+")[2].startswith("B")
