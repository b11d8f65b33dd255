"""The Ledger facade: appending in batches, signing, proofs and tiles from the stored tree."""

from __future__ import annotations

import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain import Ledger, LogReader
from chain.checkpoint import open_checkpoint
from chain.entries import open_entry
from chain.errors import EntryError, StoreError
from chain.merkle import (
    MemoryTree,
    consistency_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from chain.proof import ProofBundle
from chain.recipients import pseudonym
from chain.tiles import TileId, decode_bundle, tiles_for_size

ORIGIN = "ledger.example.org/test"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _entries(n: int, start: int = 0) -> list[bytes]:
    return [b"entry %d" % i for i in range(start, start + n)]


def test_a_new_log_signs_the_empty_tree(tmp_path: Path) -> None:
    with Ledger.init(tmp_path / "log", ORIGIN) as log:
        checkpoint, _, _ = open_checkpoint(log.checkpoint_note(), [log.verifier], origin=ORIGIN)
        assert checkpoint.size == 0
        assert log.vkey.startswith(ORIGIN + "+")


def test_init_refuses_an_existing_log(tmp_path: Path) -> None:
    Ledger.init(tmp_path / "log", ORIGIN).close()
    with pytest.raises(StoreError, match="already exists"):
        Ledger.init(tmp_path / "log", ORIGIN)


def test_opening_a_missing_log_says_to_init_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="wayhome ledger init"):
        Ledger.open(tmp_path / "nothing")


def test_a_full_batch_is_integrated_and_signed_as_one_checkpoint(tmp_path: Path) -> None:
    with Ledger.init(tmp_path / "log", ORIGIN, batch_size=10, batch_age_ms=10_000) as log:
        indices = log.append_many(_entries(25))
        assert indices == list(range(25))
        assert [c.size for c in log.store.checkpoints()] == [0, 10, 20]
        assert len(log.sequencer.pending) == 5
        log.flush()
        assert [c.size for c in log.store.checkpoints()] == [0, 10, 20, 25]


def test_an_old_batch_is_integrated_on_the_next_tick(tmp_path: Path) -> None:
    clock = FakeClock()
    with Ledger.init(
        tmp_path / "log", ORIGIN, batch_size=1000, batch_age_ms=500, clock=clock
    ) as log:
        log.append(b"first")
        clock.now = 0.4
        assert log.tick() is None
        clock.now = 0.5
        note = log.tick()
        assert note is not None and "\n1\n" in note
        assert log.size == 1


def test_roots_and_proofs_match_a_tree_built_in_memory(tmp_path: Path) -> None:
    entries = _entries(1500)
    reference = MemoryTree.from_entries(entries)
    with Ledger.init(tmp_path / "log", ORIGIN, batch_size=333) as log:
        log.append_many(entries)
        log.flush()
        for stored in log.store.checkpoints():
            assert stored.root == reference.root(stored.size)
        for size in (1, 2, 255, 256, 257, 999, 1332, 1500):
            for index in {0, size // 3, size - 1}:
                proof = log.inclusion_proof(index, size)
                assert proof == reference.inclusion_proof(index, size)
                verify_inclusion(
                    index, size, leaf_hash(entries[index]), proof, reference.root(size)
                )
            for old in {1, size // 2 or 1, size}:
                # Most of these sizes were never signed: ask the stored tree itself.
                proof = consistency_proof(old, size, log.tree)
                verify_consistency(old, size, proof, reference.root(old), reference.root(size))
        for stored in log.store.checkpoints()[1:]:
            assert log.consistency_proof(1, stored.size) == reference.consistency_proof(
                1, stored.size
            )


def test_a_proof_bundle_verifies_offline_against_the_log_key(tmp_path: Path) -> None:
    with Ledger.init(tmp_path / "log", ORIGIN) as log:
        log.append_many(_entries(300))
        log.flush()
        bundle = ProofBundle.from_text(log.proof_bundle(123, extra=b"context"))
        assert bundle.extra == b"context"
        checkpoint, _ = bundle.verify(b"entry 123", [log.verifier], origin=ORIGIN)
        assert checkpoint.size == 300
        assert ProofBundle.from_text(bundle.to_text()) == bundle
        with pytest.raises(Exception, match="does not lead to the root"):
            bundle.verify(b"entry 124", [log.verifier])


def test_a_reopened_log_continues_where_it_stopped(tmp_path: Path) -> None:
    with Ledger.init(tmp_path / "log", ORIGIN, batch_size=7) as log:
        log.append_many(_entries(20))
    with Ledger.open(tmp_path / "log", batch_size=7) as log:
        assert log.size == 20
        assert log.append(b"entry 20") == 20
        log.flush()
        assert log.checkpoint().root == MemoryTree.from_entries(_entries(21)).root()


def test_an_entry_longer_than_a_bundle_allows_is_refused_and_changes_nothing(
    tmp_path: Path,
) -> None:
    with Ledger.init(tmp_path / "log", ORIGIN) as log:
        with pytest.raises(EntryError, match="at most 65535 bytes"):
            log.append(b"x" * 65536)
        assert log.next_index == 0


def test_tiles_and_bundles_hold_the_tree_hashes_and_the_entries(tmp_path: Path) -> None:
    entries = _entries(70_000 // 100)
    reference = MemoryTree.from_entries(entries)
    with Ledger.init(tmp_path / "log", ORIGIN) as log:
        log.append_many(entries)
        log.flush()
        for tile in tiles_for_size(len(entries)):
            data = log.read_tile(tile)
            level = tile.level or 0
            first = tile.index * 256
            expected = reference.node_hashes([(8 * level, first + i) for i in range(tile.width)])
            assert data == b"".join(expected)
        bundle = log.read_path(TileId(None, 2, 700 - 512).path())
        assert decode_bundle(bundle) == entries[512:]
        with pytest.raises(StoreError, match="beyond the log's signed size"):
            log.read_tile(TileId(0, 3, 1))


def test_the_dispatch_entry_is_signed_by_the_submitter_and_carries_no_ids(tmp_path: Path) -> None:
    secret = b"case secret 0123456789"
    recipients = [pseudonym(secret, f"subscriber-{i}") for i in range(5)]
    with Ledger.init(tmp_path / "log", ORIGIN) as log:
        entry = log.dispatch_entry(
            "case-7", 3, datetime(2026, 5, 1, 8, tzinfo=UTC), bytes(32), recipients
        )
        record = open_entry(entry, [log.submitter.verifier()])
        assert record["recipients"]["count"] == 5
        assert b"subscriber-" not in entry
        index = log.append(entry)
        log.flush()
        assert log.entry(index) == entry


def test_a_reader_serves_what_the_writer_signed(tmp_path: Path) -> None:
    with Ledger.init(tmp_path / "log", ORIGIN) as log:
        log.append_many(_entries(10))
        log.flush()
    with LogReader.open(tmp_path / "log") as reader:
        assert reader.size == 10
        assert reader.entries(3, 5) == _entries(2, 3)


@pytest.mark.postgis
def test_a_postgresql_log_behaves_as_the_sqlite_one(postgis_dsn: str) -> None:
    from chain.note import Signer
    from chain.verify import verify_store

    signer = Signer.generate(ORIGIN)
    prefix = f"ledger_{uuid.uuid4().hex[:12]}_"
    entries = _entries(600)
    with pytest.raises(StoreError, match="signer key passed in"):
        Ledger.init(postgis_dsn, ORIGIN, table_prefix=prefix)
    with Ledger.init(
        postgis_dsn, ORIGIN, signer=signer, table_prefix=prefix, batch_size=250
    ) as log:
        log.append_many(entries)
        log.flush()
        assert log.checkpoint().root == MemoryTree.from_entries(entries).root()
        assert [c.size for c in log.store.checkpoints()] == [0, 250, 500, 600]
        proof = log.inclusion_proof(599)
        verify_inclusion(599, 600, leaf_hash(entries[599]), proof, log.checkpoint().root)
    with pytest.raises(StoreError, match="already holds a log"):
        Ledger.init(postgis_dsn, ORIGIN, signer=signer, table_prefix=prefix)
    with Ledger.open(postgis_dsn, signer=signer, table_prefix=prefix) as log:
        assert log.size == 600
        assert verify_store(log.store).entries == 600
    with LogReader.open(postgis_dsn, table_prefix=prefix) as reader:
        assert reader.entries(598, 600) == entries[598:]


def test_a_batch_whose_commit_fails_stays_pending_and_is_retried(tmp_path: Path) -> None:
    with Ledger.init(tmp_path / "log", ORIGIN, batch_size=1000) as log:
        log.append_many(_entries(5))
        original = log.store.commit

        def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise StoreError("the disk is full")

        log.store.commit = failing  # type: ignore[method-assign]
        with pytest.raises(StoreError, match="disk is full"):
            log.flush()
        assert len(log.sequencer.pending) == 5
        log.store.commit = original  # type: ignore[method-assign]
        log.flush()
        assert log.size == 5
        assert log.entries(0, 5) == _entries(5)


def test_init_refuses_a_bad_origin_and_creates_nothing(tmp_path: Path) -> None:
    from chain.errors import NoteError

    with pytest.raises(NoteError, match="without spaces"):
        Ledger.init(tmp_path / "log", "bad origin")
    assert not (tmp_path / "log").exists()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 700), min_size=1, max_size=6), st.data())
def test_any_split_into_batches_stores_the_same_tree(
    batches: list[int], data: st.DataObject
) -> None:
    entries = _entries(sum(batches))
    reference = MemoryTree.from_entries(entries)
    with (
        tempfile.TemporaryDirectory() as directory,
        Ledger.init(Path(directory) / "log", ORIGIN) as log,
    ):
        at = 0
        for size in batches:
            log.append_many(entries[at : at + size])
            log.flush()
            at += size
            assert log.checkpoint().root == reference.root(at)
        n = len(entries)
        index = data.draw(st.integers(0, n - 1))
        size = data.draw(st.integers(index + 1, n))
        assert log.inclusion_proof(index, size) == reference.inclusion_proof(index, size)
        old = data.draw(st.integers(1, size))
        assert consistency_proof(old, size, log.tree) == reference.consistency_proof(old, size)
        assert log.consistency_proof(old, n) == reference.consistency_proof(old, n)
