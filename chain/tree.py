"""The persisted Merkle tree of a log: which hashes are stored, and how proofs read them.

Design: every complete subtree hash of every fourth tree level (0, 4, 8, ...) is stored, 256
consecutive hashes of one level to a row. Any other complete subtree hash, at level ``4k + j``
with ``j`` in 1..3, is rebuilt from at most 8 stored hashes of level ``4k`` of one row. A proof
from a log of ``n`` leaves thus runs one query per stored level (about ``log2(n) / 4``, each
fetching one or two rows; rows of upper levels stay cached) and hashes at most
``11 * log2(n) / 4`` times: for 10 million entries, six queries and about 70 hashes. Storage
is ``n * 16/15`` hashes.

The alternatives not taken: storing every level (``2n`` hashes, twice the disk for a proof
that is barely faster), or only the tlog-tiles levels 0, 8, 16, ... (``n * 256/255``
hashes, but up to 247 hashes to rebuild per tile level: a millisecond per proof in Python).
The tlog-tiles levels are among the stored ones, so tiles are served as stored rows.

Appending a batch hashes the new leaves and, level by level, the new complete nodes, from the
right edge of the old tree (its compact range); that edge is stored with the tree state, so a
restart needs no rebuild.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from chain.errors import StoreError
from chain.merkle import HASH_SIZE, NodeId, fold_nodes, parent_level
from chain.store import LogStore, TreeState

STRATUM = 4
"""Tree levels per stored level: levels 0, 4, 8, ... are stored."""

CHUNK = 256
"""Hashes of one level per stored row (a tlog tile's width)."""

_CHUNK_BYTES = CHUNK * HASH_SIZE


class StoredTree:
    """A :class:`chain.merkle.NodeReader` over a store, with a cache of full (immutable) rows."""

    def __init__(self, store: LogStore, *, cache_rows: int = 4096) -> None:
        self.store = store
        self._cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._cache_rows = cache_rows
        self._lock = threading.Lock()

    def _rows(self, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        # Readers of an HTTP server share one tree from several threads.
        with self._lock:
            return self._rows_locked(wanted)

    def _rows_locked(self, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        rows: dict[tuple[int, int], bytes] = {}
        missing: dict[int, list[int]] = {}
        for key in wanted:
            data = self._cache.get(key)
            if data is None:
                missing.setdefault(key[0], []).append(key[1])
            else:
                self._cache.move_to_end(key)
                rows[key] = data
        for level, chunks in missing.items():
            for chunk, data in self.store.read_chunks(level, chunks).items():
                rows[(level, chunk)] = data
                if len(data) == _CHUNK_BYTES:
                    self._cache[(level, chunk)] = data
                    if len(self._cache) > self._cache_rows:
                        self._cache.popitem(last=False)
        return rows

    def node_hashes(self, nodes: Sequence[NodeId]) -> list[bytes]:
        """The hashes of complete subtrees ``(level, index)``."""
        spans = []
        wanted: set[tuple[int, int]] = set()
        for level, index in nodes:
            base = level - level % STRATUM
            depth = level - base
            first = index << depth
            spans.append((base, first, 1 << depth, depth))
            wanted.add((base, first // CHUNK))
        rows = self._rows(wanted)

        hashes = []
        for base, first, count, depth in spans:
            row = rows.get((base, first // CHUNK))
            at = (first % CHUNK) * HASH_SIZE
            if row is None or len(row) < at + count * HASH_SIZE:
                raise StoreError(
                    f"the store lacks tree hashes of level {base} from index {first}; "
                    "the tree rows are missing or truncated"
                )
            level_hashes = [
                row[at + i * HASH_SIZE : at + (i + 1) * HASH_SIZE] for i in range(count)
            ]
            for _ in range(depth):
                level_hashes = parent_level(level_hashes)
            hashes.append(level_hashes[0])
        return hashes

    def plan_append(
        self, state: TreeState, leaves: Sequence[bytes]
    ) -> tuple[list[tuple[int, int, bytes]], TreeState]:
        """The rows to write and the new tree state after appending ``leaves`` to ``state``.

        Nothing is written: the caller commits rows, entries and state in one transaction.
        """
        size = state.size
        edge = _edge_by_level(size, state.edge)
        new_size = size + len(leaves)

        # Level by level: the new complete nodes, from the old edge node and the new ones.
        new: dict[int, list[bytes]] = {0: list(leaves)}
        level = 0
        while new[level]:
            before = size >> level
            run = new[level]
            if before & 1:
                run = [edge[level], *run]
            new[level + 1] = parent_level(run[: len(run) - len(run) % 2])
            level += 1

        # Stored levels: extend their last row, or start new rows.
        rows: list[tuple[int, int, bytes]] = []
        for level, hashes in new.items():
            if level % STRATUM or not hashes:
                continue
            first = size >> level
            chunk = first // CHUNK
            prefix = b""
            if first % CHUNK:
                prefix = self._rows({(level, chunk)}).get((level, chunk), b"")
                if len(prefix) != (first % CHUNK) * HASH_SIZE:
                    raise StoreError(
                        f"the store's tree row {chunk} of level {level} holds "
                        f"{len(prefix) // HASH_SIZE} hashes, expected {first % CHUNK}"
                    )
            data = prefix + b"".join(hashes)
            for at in range(0, len(data), _CHUNK_BYTES):
                rows.append((level, chunk + at // _CHUNK_BYTES, data[at : at + _CHUNK_BYTES]))

        # The new edge: for each set bit of the new size, its rightmost complete node.
        new_edge = []
        for level in range(new_size.bit_length() - 1, -1, -1):
            if not (new_size >> level) & 1:
                continue
            index = (new_size >> level) - 1
            first_new = size >> level
            if index >= first_new:
                new_edge.append(new[level][index - first_new])
            else:
                new_edge.append(edge[level])
        root = fold_nodes(new_edge) if new_edge else state.root
        return rows, TreeState(new_size, root, tuple(new_edge))


def _edge_by_level(size: int, edge: Sequence[bytes]) -> dict[int, bytes]:
    levels = [level for level in range(size.bit_length() - 1, -1, -1) if (size >> level) & 1]
    if len(levels) != len(edge):
        raise StoreError(
            f"the stored tree edge holds {len(edge)} hashes, a tree of size {size} needs "
            f"{len(levels)}"
        )
    return dict(zip(levels, edge, strict=True))
