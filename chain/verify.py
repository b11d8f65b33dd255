"""Verification of a whole log: from its store (a directory or database), or from its tiles.

What is checked, and what is said when it fails (a :class:`chain.errors.TamperError`, whose
``index`` names the entry when the damage is in one entry):

1. every checkpoint's signature, against the log's verifier key, and its origin;
2. every entry, in order: none missing, none out of place, each hashing to the stored (or
   served) level-0 tree hash at its index; and every entry that presents itself as a signed
   record (``chain.entries``) signed by one of the submitter keys the log accepts (stored
   with it, published at ``submitters``, or pinned by the caller). Other entries are opaque
   bytes, counted apart;
3. every checkpoint's root, recomputed from the entries;
4. every stored (or served) upper tree hash, recomputed from the level below; for a store,
   also the stored tree state (the root and right edge a writer grows the tree from),
   recomputed from all the entries;
5. consistency between every pair of checkpoints seen, including those seen on earlier runs
   (``seen``): each must be the root of a prefix of the same entries.

Step 2 names an altered, dropped or reordered entry by its index. When entries and their
tree hashes were rewritten together, step 3 finds it, and names the entries of the first
16-leaf group whose stored hash no longer matches, if any.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from chain.checkpoint import Checkpoint, open_checkpoint
from chain.entries import claims_signature, open_entry
from chain.errors import ChainError, EntryError, NoteError, StoreError, TamperError
from chain.ledger import SUBMITTERS, submitters_from_text
from chain.merkle import (
    HASH_SIZE,
    CompactRange,
    MemoryTree,
    leaf_hash,
    leaf_hashes,
    parent_level,
    verify_consistency,
)
from chain.note import Verifier, b64encode
from chain.store import LogStore, TreeState
from chain.tiles import TILE_HEIGHT, TILE_WIDTH, TileId, decode_bundle, tile_width
from chain.tree import CHUNK, STRATUM

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass
class VerifyReport:
    """What a verification covered."""

    origin: str
    size: int
    root: bytes
    entries: int
    checkpoints: int
    note: str = ""
    unsigned_tail: int = 0
    signed_records: int = 0
    details: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"log {self.origin} verified: {self.entries} entries, {self.checkpoints} "
            f"checkpoint(s), size {self.size}, root {b64encode(self.root)}; "
            f"{self.signed_records} signed record(s), each by an accepted submitter"
        )
        if self.unsigned_tail:
            text += f"; {self.unsigned_tail} integrated entries await their checkpoint"
        return text


def _split(data: bytes) -> list[bytes]:
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def _first_difference(a: Sequence[bytes], b: Sequence[bytes]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if not hmac.compare_digest(x, y):
            return i
    if len(a) != len(b):
        return min(len(a), len(b))
    return None


def _check_signed_entry(index: int, entry: bytes, submitters: Sequence[Verifier]) -> bool:
    """Whether ``entry`` is a signed record; a TamperError names it if its signature fails."""
    if not claims_signature(entry):
        return False
    try:
        open_entry(entry, submitters)
    except EntryError as exc:
        raise TamperError(
            f"entry {index} is not a record of an accepted submitter: {exc}", index
        ) from None
    return True


def verify_store(
    store: LogStore,
    verifier: Verifier | None = None,
    *,
    submitters: Sequence[Verifier] | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify a log in a store (see the module docstring); a report, or a TamperError.

    ``submitters`` pins the submitter keys to check signed entries against; by default, the
    ones stored with the log.
    """
    origin = store.get_meta("origin")
    vkey = store.get_meta("vkey")
    if origin is None or vkey is None:
        raise StoreError("this store holds no log; nothing to verify")
    if submitters is None:
        submitters = submitters_from_text(store.get_meta(SUBMITTERS) or "")
    stored_verifier = Verifier.from_vkey(vkey)
    if verifier is None:
        verifier = stored_verifier
    elif verifier.vkey() != stored_verifier.vkey():
        raise TamperError(
            f"the log's stored key {stored_verifier.vkey()} is not the expected {verifier.vkey()}"
        )

    # (1): every checkpoint signed by the log, for this origin, matching its stored columns.
    checkpoints: list[Checkpoint] = []
    stored_checkpoints = store.checkpoints()
    for stored in stored_checkpoints:
        try:
            checkpoint, _, _ = open_checkpoint(stored.note, [verifier], origin=origin)
        except NoteError as exc:
            raise TamperError(
                f"the checkpoint of size {stored.size} does not verify: {exc}"
            ) from None
        if checkpoint.size != stored.size or checkpoint.root != stored.root:
            raise TamperError(
                f"the stored columns of the checkpoint of size {stored.size} were altered"
            )
        checkpoints.append(checkpoint)
    if not checkpoints:
        raise TamperError("the log holds no signed checkpoint")

    state = store.tree_state()
    signed = checkpoints[-1].size
    if state.size < signed:
        raise TamperError(f"the tree holds {state.size} entries but size {signed} was signed")

    # (2): entries in order, each matching its stored leaf hash.
    leaves: list[bytes] = []
    stored_leaves: list[bytes] = []
    for chunk, data in store.iter_chunks(0):
        if chunk * CHUNK != len(stored_leaves):
            raise TamperError(f"the tree's leaf hashes from index {len(stored_leaves)} are missing")
        stored_leaves.extend(_split(data))
    expected = signed = 0
    for index, entry in store.iter_entry_rows():
        if index != expected:
            if index > expected:
                raise TamperError(f"entry {expected} is missing from the log", expected)
            raise TamperError(f"entry {index} appears twice in the log", index)
        if index >= state.size:
            raise TamperError(f"entry {index} lies beyond the tree of size {state.size}", index)
        leaf = leaf_hash(entry)
        if index >= len(stored_leaves) or not hmac.compare_digest(leaf, stored_leaves[index]):
            raise TamperError(
                f"entry {index} was altered, dropped or moved: its hash does not match leaf "
                f"{index} of the tree",
                index,
            )
        signed += _check_signed_entry(index, entry, submitters)
        leaves.append(leaf)
        expected += 1
        if progress and expected % 4096 == 0:
            progress(expected, state.size)
    if expected < state.size:
        raise TamperError(f"entry {expected} is missing from the log", expected)
    if len(stored_leaves) != state.size:
        raise TamperError(
            f"the tree holds {len(stored_leaves)} leaf hashes for {state.size} entries"
        )

    # (3) and (5): each checkpoint's root from the entries, hence all mutually consistent.
    _check_roots(leaves, checkpoints, lambda level: _stored_level(store, level))

    # (4): every stored upper level from the level below, and the stored tree state.
    _check_stored_levels(store, leaves)
    _check_tree_state(state, leaves)
    if progress:
        progress(state.size, state.size)
    last = checkpoints[-1]
    return VerifyReport(
        origin,
        last.size,
        last.root,
        len(leaves),
        len(checkpoints),
        note=stored_checkpoints[-1].note,
        unsigned_tail=state.size - last.size,
        signed_records=signed,
    )


def _stored_level(store: LogStore, level: int) -> list[bytes]:
    hashes: list[bytes] = []
    for _, data in store.iter_chunks(level):
        hashes.extend(_split(data))
    return hashes


def _check_roots(
    leaves: Sequence[bytes],
    checkpoints: Sequence[Checkpoint],
    level_reader: Callable[[int], list[bytes]] | None = None,
) -> None:
    """Every checkpoint's root from the leaves; a mismatch names the first altered group."""
    compact = CompactRange()
    previous: Checkpoint | None = None
    for checkpoint in sorted(checkpoints, key=lambda c: c.size):
        if checkpoint.size > len(leaves):
            raise TamperError(
                f"the checkpoint of size {checkpoint.size} covers more than the "
                f"{len(leaves)} entries"
            )
        compact.extend(leaves[compact.size : checkpoint.size])
        if not hmac.compare_digest(compact.root(), checkpoint.root):
            index = _locate(leaves[: checkpoint.size], level_reader)
            where = (
                f"; the first damaged entries are {index}..{index + 15}"
                if index is not None
                else ""
            )
            raise TamperError(
                f"entries 0..{checkpoint.size - 1} do not hash to the root signed at size "
                f"{checkpoint.size}: the log was rewritten{where}",
                index,
            )
        if (
            previous is not None
            and previous.size == checkpoint.size
            and previous.root != checkpoint.root
        ):
            raise TamperError(f"two checkpoints of size {checkpoint.size} carry different roots")
        previous = checkpoint


def _locate(
    leaves: Sequence[bytes], level_reader: Callable[[int], list[bytes]] | None
) -> int | None:
    if level_reader is None:
        return None
    stored = level_reader(STRATUM)
    level = list(leaves[: len(leaves) - len(leaves) % (1 << STRATUM)])
    for _ in range(STRATUM):
        level = parent_level(level)
    at = _first_difference(level, stored[: len(level)])
    return None if at is None else at << STRATUM


def _check_stored_levels(store: LogStore, leaves: Sequence[bytes]) -> None:
    level_hashes = list(leaves)
    level = 0
    while len(level_hashes) > 1:
        level_hashes = parent_level(level_hashes[: len(level_hashes) - len(level_hashes) % 2])
        level += 1
        if level % STRATUM == 0:
            stored = _stored_level(store, level)
            at = _first_difference(level_hashes, stored)
            if at is not None:
                first = at << level
                raise TamperError(
                    f"the tree hash of entries {first}..{first + (1 << level) - 1} (level {level}) "
                    "was altered",
                    None,
                )


def _check_tree_state(state: TreeState, leaves: Sequence[bytes]) -> None:
    """The stored root and right edge must be those of the tree over all the entries."""
    compact = CompactRange()
    compact.extend(leaves)
    if not hmac.compare_digest(state.root, compact.root()):
        raise TamperError(
            f"the stored tree root is not the root of the log's {len(leaves)} entries: "
            "the tree state was altered"
        )
    edge_matches = len(state.edge) == len(compact.hashes) and all(
        hmac.compare_digest(a, b) for a, b in zip(state.edge, compact.hashes, strict=True)
    )
    if not edge_matches:
        raise TamperError(
            f"the stored tree edge is not the right edge of the log's {len(leaves)} entries: "
            "the tree state was altered, and the log cannot grow from it"
        )


class TileSource(Protocol):
    """Where a log's tlog-tiles resources come from: a server, or a :class:`LogReader`."""

    def read_path(self, path: str) -> bytes: ...


def follow(
    source: TileSource,
    verifier: Verifier,
    *,
    seen: Sequence[str] = (),
    submitters: Sequence[Verifier] | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Verify a log from its checkpoint, tiles and entry bundles, as any tlog client can.

    ``seen`` are signed checkpoints of the same log from earlier runs: each must be the root
    of a prefix of the entries served now, or the log has forked. ``submitters`` pins the
    submitter keys; by default, the ones the log publishes at ``submitters``.
    """
    if submitters is None:
        try:
            submitters = submitters_from_text(source.read_path(SUBMITTERS).decode())
        except (ChainError, UnicodeDecodeError) as exc:
            raise ChainError(
                f"the log publishes no readable submitter keys at {SUBMITTERS} ({exc}); "
                "pass the keys to trust instead"
            ) from None
    note = source.read_path("checkpoint").decode()
    try:
        checkpoint, _, _ = open_checkpoint(note, [verifier])
    except NoteError as exc:
        raise TamperError(f"the log's checkpoint does not verify: {exc}") from None
    size = checkpoint.size

    # (2): entry bundles against level-0 tiles.
    leaves: list[bytes] = []
    signed = 0
    tiles = (size + TILE_WIDTH - 1) // TILE_WIDTH
    for n in range(tiles):
        width = tile_width(0, n, size)
        tile_hashes = _split(source.read_path(TileId(0, n, width).path()))
        try:
            entries = decode_bundle(source.read_path(TileId(None, n, width).path()))
        except ChainError as exc:
            raise TamperError(f"entry bundle {n} is malformed: {exc}", n * TILE_WIDTH) from None
        computed = leaf_hashes(entries)
        at = _first_difference(computed, tile_hashes)
        if at is not None or len(tile_hashes) != width:
            index = n * TILE_WIDTH + (at if at is not None else len(tile_hashes))
            raise TamperError(
                f"entry {index} served does not match the log's tree: altered, dropped or moved",
                index,
            )
        for at, entry in enumerate(entries, n * TILE_WIDTH):
            signed += _check_signed_entry(at, entry, submitters)
        leaves.extend(computed)
        if progress:
            progress(len(leaves), size)

    # (3), (5): the new root and every earlier checkpoint's root from the same entries.
    earlier: list[Checkpoint] = []
    for old in seen:
        try:
            old_checkpoint, _, _ = open_checkpoint(old, [verifier], origin=checkpoint.origin)
        except NoteError as exc:
            raise TamperError(f"a checkpoint seen before does not verify: {exc}") from None
        if old_checkpoint.size > size:
            raise TamperError(
                f"the log now serves size {size}, smaller than size {old_checkpoint.size} "
                "seen before"
            )
        earlier.append(old_checkpoint)
    _check_roots(leaves, [*earlier, checkpoint])

    # (4): upper tiles from the level below.
    tree = MemoryTree(leaves)
    for level in range(1, 64):
        count = size >> (TILE_HEIGHT * level)
        if count == 0:
            break
        for n in range((count + TILE_WIDTH - 1) // TILE_WIDTH):
            width = tile_width(level, n, size)
            served = _split(source.read_path(TileId(level, n, width).path()))
            first = n * TILE_WIDTH
            wanted = tree.node_hashes([(TILE_HEIGHT * level, first + i) for i in range(width)])
            at = _first_difference(wanted, served)
            if at is not None:
                raise TamperError(f"tile {TileId(level, n, width).path()} was altered at hash {at}")

    # Consistency proofs between successive checkpoints, as a witness would check them.
    ordered = sorted({(c.size, c.root) for c in [*earlier, checkpoint] if c.size})
    for (size1, root1), (size2, root2) in zip(ordered, ordered[1:], strict=False):
        verify_consistency(size1, size2, tree.consistency_proof(size1, size2), root1, root2)
    return VerifyReport(
        checkpoint.origin,
        size,
        checkpoint.root,
        len(leaves),
        1 + len(earlier),
        note=note,
        signed_records=signed,
    )
