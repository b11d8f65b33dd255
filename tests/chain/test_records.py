"""Entries, recipients and personal data: canonical signed records, two-level proofs, shredding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from chain import Ledger
from chain.entries import (
    ENTRY_CONTEXT,
    canonical,
    case_opened_record,
    dispatch_record,
    open_entry,
    parse_entry,
    perimeter_record,
    resolution_record,
    sighting_record,
    sign_entry,
)
from chain.errors import EntryError, PrivacyError, ProofError, ShreddedError
from chain.merkle import MemoryTree, leaf_hash, root
from chain.note import Signer, b64encode
from chain.privacy import CaseKeys, commit, open_commitment
from chain.proof import ProofBundle
from chain.recipients import (
    RecipientProof,
    RecipientTree,
    pseudonym,
    pseudonyms,
    recipient_root,
)
from chain.verify import verify_store

WHEN = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
SECRET = b"a case secret of 32 bytes.......!"


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical({"b": 1, "a": [1.0, "é"]}) == '{"a":[1,"é"],"b":1}'.encode()


def test_every_record_kind_signs_and_opens() -> None:
    signer = Signer.generate("police.example/unit-7")
    digest = bytes(range(32))
    records = [
        dispatch_record("case-1", 0, WHEN, digest, [b"p" * 32]),
        case_opened_record("case-1", WHEN, "lost_child", digest),
        sighting_record("case-1", WHEN, digest, digest),
        perimeter_record("case-1", WHEN, digest, "replace"),
        resolution_record("case-1", WHEN, "found"),
    ]
    for record in records:
        entry = sign_entry(record, signer)
        assert open_entry(entry, [signer.verifier()]) == record
        assert parse_entry(entry).name == "police.example/unit-7"


def test_record_times_are_utc_whatever_the_zone_given() -> None:
    beijing = timezone(timedelta(hours=8))
    record = resolution_record("case-1", datetime(2026, 5, 1, 16, 30, tzinfo=beijing), "found")
    assert record["time"] == "2026-05-01T08:30:00.000Z"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: resolution_record("case-1", datetime(2026, 5, 1), "found"), "timezone-aware"),
        (lambda: resolution_record("case 1", WHEN, "found"), "case id"),
        (lambda: resolution_record("case-1", WHEN, "gone"), "outcome"),
        (lambda: dispatch_record("case-1", -1, WHEN, bytes(32), []), "tick"),
        (lambda: dispatch_record("case-1", 1, WHEN, b"short", []), "32-byte digest"),
        (lambda: perimeter_record("case-1", WHEN, bytes(32), "merge"), "mode"),
        (lambda: case_opened_record("case-1", WHEN, "Lost Child", bytes(32)), "category"),
    ],
)
def test_a_bad_record_field_is_refused_with_a_sentence(build, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EntryError, match=message):
        build()


def test_a_record_with_a_field_of_personal_data_is_refused_with_a_sentence() -> None:
    signer = Signer.generate("police.example/unit-7")
    record = {**case_opened_record("case-1", WHEN, "lost_child", bytes(32)), "child_name": "Li"}
    with pytest.raises(
        EntryError,
        match="a case_opened record holds only the fields case, category, subject, time, "
        "got child_name too",
    ):
        sign_entry(record, signer)


def test_a_signed_entry_with_an_extra_field_does_not_open() -> None:
    signer = Signer.generate("police.example/unit-7")
    record = {**resolution_record("case-1", WHEN, "found"), "national_id": "110101"}
    body = canonical(record)
    entry = canonical(
        {
            "record": record,
            "sig": {
                "key_id": f"{signer.key_id:08x}",
                "name": signer.name,
                "value": b64encode(signer.private_key.sign(ENTRY_CONTEXT + body)),
            },
        }
    )
    with pytest.raises(EntryError, match="got national_id too"):
        open_entry(entry, [signer.verifier()])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "note"}, "kind must be one of"),
        ({"tick": "3"}, "tick of a dispatch record must be a non-negative integer"),
        ({"tick": True}, "tick of a dispatch record must be a non-negative integer"),
        ({"time": "2026-05-01"}, "time of a dispatch record must be a UTC time"),
        ({"area": "AAAA"}, "area of a dispatch record must be a base64 32-byte digest"),
        ({"recipients": {"count": 1}}, "recipients of a dispatch record must be a count"),
        ({"case": "case 1"}, "case of a dispatch record must be a case id"),
    ],
)
def test_a_record_field_of_the_wrong_type_is_refused(change: dict, message: str) -> None:  # type: ignore[type-arg]
    record = {**dispatch_record("case-1", 3, WHEN, bytes(32), [b"p" * 32]), **change}
    with pytest.raises(EntryError, match=message):
        sign_entry(record, Signer.generate("police.example/unit-7"))


def test_a_record_missing_a_field_is_refused() -> None:
    record = perimeter_record("case-1", WHEN, bytes(32))
    del record["mode"]
    with pytest.raises(EntryError, match="a perimeter record lacks the field"):
        sign_entry(record, Signer.generate("police.example/unit-7"))


def test_an_altered_or_foreign_entry_does_not_open() -> None:
    signer = Signer.generate("police.example/unit-7")
    entry = sign_entry(resolution_record("case-1", WHEN, "found"), signer)
    with pytest.raises(EntryError, match="does not verify"):
        open_entry(entry.replace(b"found", b"cancelled"), [signer.verifier()])
    with pytest.raises(EntryError, match="not a known submitter"):
        open_entry(entry, [Signer.generate("someone.example/else").verifier()])
    with pytest.raises(EntryError, match="canonical"):
        parse_entry(entry.replace(b'{"record"', b'{ "record"'))


def test_a_pseudonym_is_stable_within_a_case_and_differs_across_cases() -> None:
    assert pseudonym(SECRET, "sub-1") == pseudonym(SECRET, "sub-1")
    assert pseudonyms(SECRET, ["sub-1", "sub-2"]) == [
        pseudonym(SECRET, "sub-1"),
        pseudonym(SECRET, "sub-2"),
    ]
    assert pseudonym(SECRET, "sub-1") != pseudonym(SECRET[::-1], "sub-1")
    with pytest.raises(EntryError, match="at least 16 bytes"):
        pseudonym(b"short", "sub-1")


def test_the_recipient_root_is_the_rfc9162_root_over_the_pseudonyms() -> None:
    recipients = [pseudonym(SECRET, f"sub-{i}") for i in range(1000)]
    assert recipient_root(recipients) == root(recipients)
    assert recipient_root([]) == root([])


def test_one_recipient_is_proven_notified_by_a_two_level_proof(tmp_path: Path) -> None:
    recipients = pseudonyms(SECRET, [f"sub-{i}" for i in range(777)])
    with Ledger.init(tmp_path / "log", "ledger.example.org/test") as log:
        log.append_many([b"earlier entry %d" % i for i in range(40)])
        entry = log.dispatch_entry("case-9", 4, WHEN, bytes(32), recipients)
        index = log.append(entry)
        log.flush()
        bundle_text = log.proof_bundle(index)

    # Level 1: the subscriber's pseudonym is in the entry's recipient tree.
    tree = RecipientTree(recipients)
    proof = RecipientProof.from_dict(tree.prove(pseudonym(SECRET, "sub-500")).to_dict())
    record = parse_entry(entry).record
    from chain.note import b64decode

    proof.verify(pseudonym(SECRET, "sub-500"), b64decode(record["recipients"]["root"], "root"))
    with pytest.raises(ProofError):
        proof.verify(pseudonym(SECRET, "sub-501"), b64decode(record["recipients"]["root"], "root"))
    with pytest.raises(ProofError, match="not among"):
        tree.prove(pseudonym(SECRET, "never notified"))

    # Level 2: the entry is in the signed log.
    checkpoint, _ = ProofBundle.from_text(bundle_text).verify(entry, [log.verifier])
    assert checkpoint.size == 41


def test_a_commitment_opens_only_to_its_value_and_salt() -> None:
    commitment = commit(b"Zhang San, born 2019")
    open_commitment(commitment.digest, b"Zhang San, born 2019", commitment.salt)
    with pytest.raises(PrivacyError, match="does not open"):
        open_commitment(commitment.digest, b"Li Si, born 2019", commitment.salt)
    assert commit(b"same").digest != commit(b"same").digest


def test_a_sealed_field_is_bound_to_its_case_and_field(tmp_path: Path) -> None:
    keys = CaseKeys(tmp_path / "keys.db")
    sealed = keys.seal("case-1", "name", b"Zhang San")
    assert keys.open("case-1", "name", sealed) == b"Zhang San"
    with pytest.raises(PrivacyError, match="does not decrypt"):
        keys.open("case-1", "dna", sealed)
    keys.seal("case-2", "name", b"other")
    with pytest.raises(PrivacyError, match="does not decrypt"):
        keys.open("case-2", "name", sealed)


def test_shredding_keeps_every_proof_valid_and_the_data_unrecoverable(tmp_path: Path) -> None:
    keys = CaseKeys(tmp_path / "keys.db")
    digest, sealed = keys.seal_commitment("case-1", "subject", b"Zhang San, born 2019")
    key_bytes = keys._key("case-1", create=False)
    record = case_opened_record("case-1", WHEN, "lost_child", digest)
    with Ledger.init(tmp_path / "log", "ledger.example.org/test") as log:
        index = log.append_record(record)
        log.append_many([b"other %d" % i for i in range(20)])
        log.flush()
        assert keys.open_commitment("case-1", "subject", digest, sealed) == b"Zhang San, born 2019"
        bundle = log.proof_bundle(index)
        entry = log.entry(index)

        keys.shred("case-1")
        keys.close()

        # Every proof still holds: the log never held the data, only the commitment.
        ProofBundle.from_text(bundle).verify(entry, [log.verifier])
        assert verify_store(log.store).entries == 21
        tree = MemoryTree([leaf_hash(e) for e in log.entries(0, 21)])
        assert tree.root() == log.checkpoint().root

    # The data is gone: no key to open it, and the key's bytes are not left in the file.
    reopened = CaseKeys(tmp_path / "keys.db")
    with pytest.raises(ShreddedError, match="shredded"):
        reopened.open_commitment("case-1", "subject", digest, sealed)
    assert key_bytes not in (tmp_path / "keys.db").read_bytes()
    assert b"Zhang San" not in (tmp_path / "log" / "log.db").read_bytes()
