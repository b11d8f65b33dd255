"""RFC 9162 proofs against the public conformance vectors (transparency-dev/merkle).

Every file of ``vectors/rfc9162/inclusion`` and ``vectors/rfc9162/consistency`` is one test,
happy path or negative (``wantErr``), named by its path.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from chain.errors import ProofError
from chain.merkle import verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "rfc9162"


def _cases(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


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
        with pytest.raises(ProofError):
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
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)
