"""Offline proofs of inclusion (c2sp.org/tlog-proof@v1).

A proof bundle is::

    c2sp.org/tlog-proof@v1
    [extra <base64 opaque data>]
    index <decimal>
    <inclusion proof hashes, base64, one a line, leaf's sibling first>
    <empty line>
    <the signed checkpoint, verbatim, with any cosignatures>

It is checked offline against the log's key (and a witness policy, ``chain.witness``): the
checkpoint's signature, then the inclusion of the entry's leaf hash in its root.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chain.checkpoint import Checkpoint, open_checkpoint
from chain.errors import ProofError
from chain.merkle import leaf_hash, verify_inclusion
from chain.note import NoteError, Signature, Verifier, b64decode, b64encode

if TYPE_CHECKING:
    from chain.witness import WitnessPolicy

HEADER = "c2sp.org/tlog-proof@v1"
_INDEX = re.compile(r"index (0|[1-9][0-9]*)")


@dataclass(frozen=True)
class ProofBundle:
    index: int
    proof: tuple[bytes, ...]
    checkpoint_note: str
    extra: bytes | None = None

    def to_text(self) -> str:
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {b64encode(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(b64encode(h) for h in self.proof)
        return "\n".join(lines) + "\n\n" + self.checkpoint_note

    @classmethod
    def from_text(cls, text: str) -> ProofBundle:
        head, sep, note = text.partition("\n\n")
        if not sep:
            raise ProofError("a tlog-proof needs an empty line before its checkpoint")
        lines = head.split("\n")
        if lines[0] != HEADER:
            raise ProofError(f"a tlog-proof must start with {HEADER!r}, got {lines[0][:40]!r}")
        at = 1
        extra = None
        if at < len(lines) and lines[at].startswith("extra "):
            try:
                extra = b64decode(lines[at][len("extra ") :], "the proof's extra data")
            except NoteError as exc:
                raise ProofError(str(exc)) from None
            at += 1
        if at >= len(lines) or not _INDEX.fullmatch(lines[at]):
            raise ProofError("a tlog-proof needs an 'index <decimal>' line after its header")
        index = int(lines[at][len("index ") :])
        try:
            hashes = tuple(b64decode(line, "an inclusion proof hash") for line in lines[at + 1 :])
        except NoteError as exc:
            raise ProofError(str(exc)) from None
        return cls(index, hashes, note, extra)

    def verify(
        self,
        entry: bytes,
        verifiers: Sequence[Verifier],
        *,
        origin: str | None = None,
        policy: WitnessPolicy | None = None,
    ) -> tuple[Checkpoint, list[Signature]]:
        """Check the log's signature, the witnesses' quorum if a policy is given, and the
        entry's inclusion; the checkpoint and the log's verified signatures."""
        checkpoint, _, verified = open_checkpoint(self.checkpoint_note, verifiers, origin=origin)
        if policy is not None:
            policy.check(self.checkpoint_note)
        verify_inclusion(self.index, checkpoint.size, leaf_hash(entry), self.proof, checkpoint.root)
        return checkpoint, verified
