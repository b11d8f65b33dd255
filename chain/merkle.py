"""The Merkle tree of RFC 9162 (and RFC 6962) over SHA-256: hashes, proofs and their checks.

Spec: RFC 9162, section 2.1 -- ``MTH``, leaf hashes ``SHA-256(0x00 || d)``, interior hashes
``SHA-256(0x01 || left || right)``, ``PATH`` (section 2.1.3.1), ``PROOF``/``SUBPROOF``
(section 2.1.4.1), and the verification algorithms of sections 2.1.3.2 and 2.1.4.2.

Proofs are produced without the recursion of the RFC: every hash in a proof is the hash of a
range of leaves ``[start, end)`` that is either a complete, aligned subtree (``end - start`` a
power of two, ``start`` a multiple of it) or the right edge of the tree (``end`` = tree size).
:func:`inclusion_ranges` and :func:`consistency_ranges` walk the tree once, top down, to list
those ranges; :func:`range_nodes` splits a range into complete subtrees ``(level, index)``;
a :class:`NodeReader` (the log's store, or :class:`MemoryTree`) returns their hashes. A proof
from a tree of ``n`` leaves thus reads ``O(log n)`` stored hashes.

Verification follows the RFC's algorithms step by step, and the edge rules of the conformance
vectors: sizes within ``0..2**64-1``, ``index < size``, ``size1 <= size2``, an empty proof
(and equal roots) for equal sizes, no consistency proof from the empty tree, 32-byte hashes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Protocol

from chain.errors import ProofError

HASH_SIZE = 32
MAX_SIZE = 2**64 - 1
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_sha256 = hashlib.sha256

NodeId = tuple[int, int]
"""A complete subtree: ``(level, index)`` covers leaves ``[index << level, (index+1) << level)``."""


def leaf_hash(data: bytes) -> bytes:
    """The RFC 9162 leaf hash of one entry: ``SHA-256(0x00 || data)``."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def leaf_hashes(entries: Iterable[bytes]) -> list[bytes]:
    """The leaf hashes of many entries, in order."""
    sha = _sha256
    prefix = _LEAF_PREFIX
    return [sha(prefix + data).digest() for data in entries]


def parent_level(hashes: Sequence[bytes]) -> list[bytes]:
    """The hashes one level up from an even-length run of sibling hashes."""
    sha = _sha256
    prefix = _NODE_PREFIX
    pairs = iter(hashes)
    return [sha(prefix + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """``MTH`` of a whole list of leaf hashes, level by level (no recursion, no copies of D)."""
    if not hashes:
        return EMPTY_ROOT

    # Carry the odd last hash of a level aside; it is joined, right to left, at the end.
    level: Sequence[bytes] = hashes
    carried: list[bytes] = []
    while len(level) > 1:
        if len(level) % 2:
            carried.append(level[-1])
            level = parent_level(level[:-1])
        else:
            level = parent_level(level)
    if not carried:
        return level[0]
    # The carried hashes are complete subtrees, lowest level first: join them right to left.
    right = carried[0]
    for left in carried[1:]:
        right = node_hash(left, right)
    return node_hash(level[0], right)


def root(entries: Iterable[bytes]) -> bytes:
    """``MTH(D[n])`` of a list of entries."""
    return root_from_leaf_hashes(leaf_hashes(entries))


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def check_size(name: str, value: int) -> None:
    """Refuse a tree size or index outside ``0..2**64-1``."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SIZE:
        raise ProofError(f"{name} must be an integer within 0..2**64-1, got {value!r}")


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form ``PATH(index, D[size])``, leaf's sibling first."""
    check_size("index", index)
    check_size("size", size)
    if index >= size:
        raise ProofError(f"index must be smaller than the tree size {size}, got {index}")

    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form ``PROOF(size1, D[size2])``, in the RFC's order."""
    check_size("size1", size1)
    check_size("size2", size2)
    if size1 > size2:
        raise ProofError(f"size1 must not exceed size2, got {size1} > {size2}")
    if size1 == 0 or size1 == size2:
        return []

    ranges: list[tuple[int, int]] = []
    start, end = 0, size2
    whole_old_tree = True
    while True:
        if size1 == end:
            if not whole_old_tree:
                ranges.append((start, end))
            break
        k = _largest_power_of_two_below(end - start)
        if size1 <= start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
            whole_old_tree = False
    ranges.reverse()
    return ranges


def range_nodes(start: int, end: int) -> list[NodeId]:
    """Split ``[start, end)`` into complete subtrees, left to right (largest first).

    ``start`` must be aligned to a power of two at least as large as ``end - start``, which
    holds for every range of :func:`inclusion_ranges` and :func:`consistency_ranges`.
    """
    nodes: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def fold_nodes(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from the hashes of its :func:`range_nodes`, joined right to left."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


class NodeReader(Protocol):
    """Anything that returns the hashes of complete subtrees of a tree."""

    def node_hashes(self, nodes: Sequence[NodeId]) -> list[bytes]: ...


def hashes_of_ranges(reader: NodeReader, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """The hash of each range, reading all the complete subtrees needed in one call."""
    split = [range_nodes(start, end) for start, end in ranges]
    wanted = [node for nodes in split for node in nodes]
    found = reader.node_hashes(wanted)
    hashes: list[bytes] = []
    at = 0
    for nodes in split:
        hashes.append(fold_nodes(found[at : at + len(nodes)]))
        at += len(nodes)
    return hashes


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """``PATH(index, D[size])``: the inclusion proof of leaf ``index`` in the tree of ``size``."""
    return hashes_of_ranges(reader, inclusion_ranges(index, size))


def consistency_proof(size1: int, size2: int, reader: NodeReader) -> list[bytes]:
    """``PROOF(size1, D[size2])``: the consistency proof from ``size1`` to ``size2``."""
    return hashes_of_ranges(reader, consistency_ranges(size1, size2))


def tree_root(size: int, reader: NodeReader) -> bytes:
    """``MTH(D[size])`` from stored complete subtrees."""
    if size == 0:
        return EMPTY_ROOT
    return hashes_of_ranges(reader, [(0, size)])[0]


def _check_hash(name: str, value: bytes) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        got = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise ProofError(f"{name} must be a {HASH_SIZE}-byte SHA-256 hash, got {got} bytes")


def _check_proof(proof: Sequence[bytes]) -> None:
    for i, item in enumerate(proof):
        _check_hash(f"proof hash {i}", item)


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``index`` (RFC 9162, 2.1.3.2 steps 1-4)."""
    check_size("index", index)
    check_size("size", size)
    if index >= size:
        raise ProofError(f"index must be smaller than the tree size {size}, got {index}")
    _check_hash("leaf hash", leaf)
    _check_proof(proof)

    # (1)-(2): fn is the leaf's index, sn the last index, r the running hash.
    fn, sn, r = index, size - 1, bytes(leaf)
    # (3): one step per proof hash, left or right of r depending on fn's low bit.
    for p in proof:
        if sn == 0:
            raise ProofError(
                f"inclusion proof has {len(proof)} hashes, more than size {size} needs"
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # (4): the proof must reach the root exactly.
    if sn != 0:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, fewer than size {size} needs")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf`` is at ``index`` in the tree of ``size`` whose root is ``root``.

    Raises :class:`ProofError` saying why when it is not.
    """
    _check_hash("root", root)
    computed = root_from_inclusion_proof(index, size, leaf, proof)
    if not hmac.compare_digest(computed, root):
        raise ProofError(
            f"inclusion proof of index {index} in size {size} does not lead to the root"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` with ``root2`` extends the tree of ``size1`` with ``root1``.

    RFC 9162, section 2.1.4.2. Raises :class:`ProofError` saying why when it does not.
    """
    check_size("size1", size1)
    check_size("size2", size2)
    if size1 > size2:
        raise ProofError(f"size1 must not exceed size2, got {size1} > {size2}")
    if size1 == 0:
        raise ProofError(
            "a consistency proof from the empty tree proves nothing; size1 must be > 0"
        )
    if size1 == size2:
        if proof:
            raise ProofError(f"equal sizes need an empty proof, got {len(proof)} hashes")
        if not hmac.compare_digest(bytes(root1), bytes(root2)):
            raise ProofError(f"equal sizes {size1} need equal roots, and the roots differ")
        return
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    if not proof:
        raise ProofError(f"a consistency proof from {size1} to {size2} cannot be empty")
    _check_proof(proof)

    # (2): an old tree that is a complete subtree is its own first proof node.
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, bytes(root1))
    # (3)-(5): fn walks the old tree's last leaf, sn the new tree's.
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    # (6): fold each remaining hash into both roots, or into the new root only.
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof from {size1} to {size2} has too many hashes")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # (7): both roots must come out, and the walk must end at the top.
    if sn != 0:
        raise ProofError(f"consistency proof from {size1} to {size2} has too few hashes")
    if not hmac.compare_digest(fr, root1):
        raise ProofError(f"consistency proof does not lead to the root of size {size1}")
    if not hmac.compare_digest(sr, root2):
        raise ProofError(f"consistency proof does not lead to the root of size {size2}")


class CompactRange:
    """The right edge of a growing tree: one hash per complete subtree, largest first.

    Enough to append leaves and compute the root of every prefix in one pass, with memory
    ``O(log n)``; used to verify a whole log while streaming its entries.
    """

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if len(hashes) != bin(size).count("1"):
            raise ProofError(
                f"a compact range of size {size} needs {bin(size).count('1')} hashes, "
                f"got {len(hashes)}"
            )
        self.size = size
        self.hashes = list(hashes)

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash, merging the complete subtrees it closes."""
        self.hashes.append(leaf)
        size = self.size
        while size & 1:
            right = self.hashes.pop()
            left = self.hashes.pop()
            self.hashes.append(node_hash(left, right))
            size >>= 1
        self.size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """``MTH`` of the leaves appended so far."""
        if not self.hashes:
            return EMPTY_ROOT
        return fold_nodes(self.hashes)


class MemoryTree:
    """A whole tree kept in memory, every level of it: for small trees, tests and recipients."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        self.extend_hashes(list(leaves))

    @classmethod
    def from_entries(cls, entries: Iterable[bytes]) -> MemoryTree:
        return cls(leaf_hashes(entries))

    @property
    def size(self) -> int:
        return len(self.levels[0])

    def extend_hashes(self, leaves: Sequence[bytes]) -> None:
        """Append leaf hashes, filling every level's new complete nodes."""
        self.levels[0].extend(leaves)
        level = 0
        while len(self.levels[level]) > 1:
            below = self.levels[level]
            if len(self.levels) == level + 1:
                self.levels.append([])
            above = self.levels[level + 1]
            first = len(above) * 2
            above.extend(parent_level(below[first : len(below) - len(below) % 2]))
            level += 1

    def node_hashes(self, nodes: Sequence[NodeId]) -> list[bytes]:
        return [self.levels[level][index] for level, index in nodes]

    def root(self, size: int | None = None) -> bytes:
        return tree_root(self.size if size is None else size, self)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self.size if size is None else size, self)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        return consistency_proof(size1, self.size if size2 is None else size2, self)
