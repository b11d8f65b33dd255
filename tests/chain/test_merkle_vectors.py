"""RFC 9162 proofs against the public conformance vectors (transparency-dev/merkle).

Every file of ``vectors/rfc9162/inclusion`` and ``vectors/rfc9162/consistency`` is one test,
happy path or negative (``wantErr``), named by its path. A negative vector must fail for the
reason its ``desc`` names: each desc is matched to the refusals it may cause. A vector that
mutates a size or an index may trip any of several checks first, so those accept several.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from chain.errors import ProofError
from chain.merkle import verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "rfc9162"


def _cases(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


_HASH_SIZE = "must be a 32-byte SHA-256 hash"
_SIZE_MUTATION = (
    "too many hashes|too few hashes|from the empty tree|must not exceed|need an empty proof"
    "|need equal roots|does not lead to the root"
)
_INDEX_MUTATION = "smaller than the tree size|does not lead to the root|fewer than|more than"

REASONS = {
    "inclusion": [
        (r"modified proof|random root", "does not lead to the root"),
        (r"garbage|wrong leaf|empty leaf|^random leaf|empty root and leaf$", _HASH_SIZE),
        (r"inserted component|preceding root|trailing root", "more than size"),
        (r"removed component", "fewer than size"),
        (r"empty root", f"{_HASH_SIZE}|{_INDEX_MUTATION}"),
        (r"leafIdx|treeSize", _INDEX_MUTATION),
    ],
    "consistency": [
        (r"modified proof|swapped roots", "does not lead to the root"),
        (r"garbage|wrong root|sizes do not watch", _HASH_SIZE),
        (r"preceding|trailing root", "too many hashes"),
        (r"truncated proof", "too few hashes"),
        (r"^empty proof", "cannot be empty"),
        (r"zero", "from the empty tree proves nothing"),
        (r"roots do not not match|sizes are equal \(one\)", "need equal roots"),
        (r"proof is not empty", "need an empty proof"),
        (r"greater than", "must not exceed"),
        (r"size[12] (XOR|div|mul|plus|sub)", _SIZE_MUTATION),
    ],
}


def _reason(kind: str, desc: str) -> str:
    for pattern, reason in REASONS[kind]:
        if re.search(pattern, desc):
            return reason
    raise AssertionError(f"no expected reason for the {kind} vector {desc!r}")


def test_vectors_are_present() -> None:
    assert len(_cases("inclusion")) > 50
    assert len(_cases("consistency")) > 50


@pytest.mark.parametrize(
    "path", _cases("inclusion"), ids=lambda p: str(p.relative_to(VECTORS / "inclusion"))
)
def test_inclusion_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    proof = [_b64(h) for h in case["proof"] or []]
    args = (case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), proof, _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError, match=_reason("inclusion", case["desc"])):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize(
    "path", _cases("consistency"), ids=lambda p: str(p.relative_to(VECTORS / "consistency"))
)
def test_consistency_vector(path: Path) -> None:
    case = json.loads(path.read_text())
    proof = [_b64(h) for h in case["proof"] or []]
    args = (case["size1"], case["size2"], proof, _b64(case["root1"]), _b64(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(ProofError, match=_reason("consistency", case["desc"])):
            verify_consistency(*args)
    else:
        verify_consistency(*args)
