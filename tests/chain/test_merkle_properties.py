"""Properties of the Merkle proofs: every honest proof verifies, every mutation fails.

Honest proofs: every ``(index < n)`` inclusion proof and every ``(m <= n)`` consistency proof
of every tree up to 300 leaves, checked by the RFC 9162 verifiers; and, for small trees, equal
to the textbook recursion of RFC 9162 (``PATH``, ``PROOF``). Mutations: every single-bit flip
(exhaustively up to 16 leaves, sampled by Hypothesis up to 300 leaves), a dropped, added,
duplicated or swapped hash (every 13th tree size), and a wrong index or size checked
against that size's true root.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.errors import ProofError
from chain.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryTree,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

MAX_LEAVES = 300
ENTRIES = [b"entry %d" % i for i in range(MAX_LEAVES)]
TREE = MemoryTree.from_entries(ENTRIES)
ROOTS = [TREE.root(n) for n in range(MAX_LEAVES + 1)]
LEAVES = TREE.levels[0]


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    """RFC 9162 MTH, by its definition."""
    if not d:
        return EMPTY_ROOT
    if len(d) == 1:
        return leaf_hash(d[0])
    k = _split(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 9162 PATH(m, D[n]), by its definition."""
    if len(d) == 1:
        return []
    k = _split(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], whole: bool) -> list[bytes]:
    """RFC 9162 SUBPROOF(m, D[n], b), by its definition."""
    if m == len(d):
        return [] if whole else [mth(d)]
    k = _split(len(d))
    if m <= k:
        return subproof(m, d[:k], whole) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def test_roots_match_the_definition_of_mth() -> None:
    for n in range(0, 70):
        assert ROOTS[n] == mth(ENTRIES[:n]) == root(ENTRIES[:n])
        compact = CompactRange()
        compact.extend(LEAVES[:n])
        assert compact.root() == ROOTS[n]


def test_proofs_match_the_recursive_definitions_up_to_64_leaves() -> None:
    for n in range(1, 65):
        for i in range(n):
            assert TREE.inclusion_proof(i, n) == path(i, ENTRIES[:n])
        for m in range(1, n):
            assert TREE.consistency_proof(m, n) == subproof(m, ENTRIES[:n], True)


def test_every_inclusion_proof_up_to_300_leaves_verifies() -> None:
    for n in range(1, MAX_LEAVES + 1):
        for i in range(n):
            verify_inclusion(i, n, LEAVES[i], TREE.inclusion_proof(i, n), ROOTS[n])


def test_every_consistency_proof_up_to_300_leaves_verifies() -> None:
    for n in range(1, MAX_LEAVES + 1):
        for m in range(1, n + 1):
            verify_consistency(m, n, TREE.consistency_proof(m, n), ROOTS[m], ROOTS[n])


def _mutations(proof: list[bytes]) -> list[list[bytes]]:
    """Every structural mutation of a proof: drop, add, duplicate, swap."""
    out = []
    for k in range(len(proof)):
        out.append(proof[:k] + proof[k + 1 :])
        out.append(proof[:k] + [proof[k]] + proof[k:])
    for k in range(len(proof) + 1):
        out.append(proof[:k] + [leaf_hash(b"intruder")] + proof[k:])
    for k in range(len(proof) - 1):
        if proof[k] != proof[k + 1]:
            out.append(proof[:k] + [proof[k + 1], proof[k]] + proof[k + 2 :])
    return out


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _inclusion_fails(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> bool:
    try:
        verify_inclusion(index, size, leaf, proof, root)
    except ProofError:
        return True
    return False


def _consistency_fails(
    size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes
) -> bool:
    try:
        verify_consistency(size1, size2, proof, root1, root2)
    except ProofError:
        return True
    return False


def test_every_structural_mutation_of_an_inclusion_proof_fails() -> None:
    for n in range(1, MAX_LEAVES + 1, 13):
        for i in range(n):
            proof = TREE.inclusion_proof(i, n)
            for bad in _mutations(proof):
                assert _inclusion_fails(i, n, LEAVES[i], bad, ROOTS[n])
            for j in (i - 1, i + 1):
                if 0 <= j < n:
                    assert _inclusion_fails(j, n, LEAVES[i], proof, ROOTS[n])
            for n2 in (n - 1, n + 1, 2 * n):
                if i < n2 <= MAX_LEAVES:
                    assert _inclusion_fails(i, n2, LEAVES[i], proof, ROOTS[n2])


def test_every_structural_mutation_of_a_consistency_proof_fails() -> None:
    for n in range(2, MAX_LEAVES + 1, 13):
        for m in range(1, n):
            proof = TREE.consistency_proof(m, n)
            for bad in _mutations(proof):
                assert _consistency_fails(m, n, bad, ROOTS[m], ROOTS[n])
            for m2 in (m - 1, m + 1):
                if 1 <= m2 < n:
                    assert _consistency_fails(m2, n, proof, ROOTS[m2], ROOTS[n])
            for n2 in (n - 1, n + 1):
                if m < n2 <= MAX_LEAVES:
                    assert _consistency_fails(m, n2, proof, ROOTS[m], ROOTS[n2])


def test_every_single_bit_flip_fails_in_trees_up_to_16_leaves() -> None:
    for n in range(1, 17):
        for i in range(n):
            proof = TREE.inclusion_proof(i, n)
            for k in range(len(proof)):
                for bit in range(256):
                    bad = proof[:k] + [_flip(proof[k], bit)] + proof[k + 1 :]
                    assert _inclusion_fails(i, n, LEAVES[i], bad, ROOTS[n])
        for m in range(1, n):
            proof = TREE.consistency_proof(m, n)
            for k in range(len(proof)):
                for bit in range(256):
                    bad = proof[:k] + [_flip(proof[k], bit)] + proof[k + 1 :]
                    assert _consistency_fails(m, n, bad, ROOTS[m], ROOTS[n])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_flipped_bit_anywhere_fails_an_inclusion_proof(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, MAX_LEAVES))
    i = data.draw(st.integers(0, n - 1))
    proof = TREE.inclusion_proof(i, n)
    parts = [LEAVES[i], ROOTS[n], *proof]
    k = data.draw(st.integers(0, len(parts) - 1))
    parts[k] = _flip(parts[k], data.draw(st.integers(0, 255)))
    assert _inclusion_fails(i, n, parts[0], parts[2:], parts[1])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_flipped_bit_anywhere_fails_a_consistency_proof(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, MAX_LEAVES))
    m = data.draw(st.integers(1, n - 1))
    parts = [ROOTS[m], ROOTS[n], *TREE.consistency_proof(m, n)]
    k = data.draw(st.integers(0, len(parts) - 1))
    parts[k] = _flip(parts[k], data.draw(st.integers(0, 255)))
    assert _consistency_fails(m, n, parts[2:], parts[0], parts[1])


@pytest.mark.parametrize(
    ("index", "size", "message"),
    [
        (5, 5, "index must be smaller"),
        (-1, 5, "within 0..2\\*\\*64-1"),
        (0, 2**64, "within 0..2\\*\\*64-1"),
    ],
)
def test_inclusion_refuses_indices_outside_the_tree(index: int, size: int, message: str) -> None:
    with pytest.raises(ProofError, match=message):
        verify_inclusion(index, size, LEAVES[0], [], ROOTS[1])


def test_a_proof_of_the_largest_tree_size_is_checked_not_crashed() -> None:
    size = 2**64 - 1
    with pytest.raises(ProofError, match="fewer than size"):
        verify_inclusion(size - 1, size, LEAVES[0], [LEAVES[1]] * 10, ROOTS[1])
