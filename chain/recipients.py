"""Who was notified, kept off the log but provable: pseudonyms and the recipient tree.

A dispatch entry carries the number of recipients and the root of an RFC 9162 Merkle tree
over their pseudonyms, in the order the dispatcher lists them; never the subscribers' ids.
A pseudonym is ``HMAC-SHA256(case_secret, subscriber id)``: stable within a case, unlinkable
across cases, and meaningless to whoever lacks the case secret.

That one subscriber was notified is then shown by a two-level proof: the subscriber's
pseudonym is in the recipient tree (a :class:`RecipientProof` to the root in the entry), and
the entry is in the log (a tlog-proof bundle to a signed checkpoint, ``chain.proof``).

Speed: a root over a million pseudonyms is about two million SHA-256 calls; they run level by
level in list comprehensions over ``hashlib`` (see ``chain.merkle.parent_level``), with no
per-node Python objects beyond the hashes themselves.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chain.errors import EntryError, ProofError
from chain.merkle import (
    MemoryTree,
    leaf_hashes,
    root_from_leaf_hashes,
    verify_inclusion,
)
from chain.note import b64decode, b64encode

PSEUDONYM_BYTES = 32


def pseudonym(case_secret: bytes, subscriber_id: str) -> bytes:
    """The pseudonym of a subscriber within one case."""
    if len(case_secret) < 16:
        raise EntryError(f"a case secret must be at least 16 bytes, got {len(case_secret)}")
    return hmac.digest(case_secret, subscriber_id.encode(), "sha256")


def pseudonyms(case_secret: bytes, subscriber_ids: Iterable[str]) -> list[bytes]:
    """The pseudonyms of many subscribers of one case, in order (one-shot HMAC each)."""
    if len(case_secret) < 16:
        raise EntryError(f"a case secret must be at least 16 bytes, got {len(case_secret)}")
    digest = hmac.digest
    return [
        digest(case_secret, subscriber_id.encode(), "sha256") for subscriber_id in subscriber_ids
    ]


def recipient_root(pseudonyms: Sequence[bytes]) -> bytes:
    """The Merkle root over recipients' pseudonyms, in the given order."""
    return root_from_leaf_hashes(leaf_hashes(pseudonyms))


@dataclass(frozen=True)
class RecipientProof:
    """That a pseudonym is recipient ``index`` of ``count`` under a recipient root."""

    index: int
    count: int
    path: tuple[bytes, ...]

    def verify(self, pseudonym_: bytes, root: bytes) -> None:
        verify_inclusion(self.index, self.count, leaf_hashes([pseudonym_])[0], self.path, root)

    def to_dict(self) -> dict[str, object]:
        return {"index": self.index, "count": self.count, "path": [b64encode(h) for h in self.path]}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> RecipientProof:
        index, count, path = data.get("index"), data.get("count"), data.get("path")
        if not isinstance(index, int) or not isinstance(count, int) or not isinstance(path, list):
            raise ProofError("a recipient proof needs an integer index and count, and a path list")
        return cls(index, count, tuple(b64decode(str(h), "a recipient proof hash") for h in path))


class RecipientTree:
    """The whole recipient tree of one dispatch, to prove any recipient in it."""

    def __init__(self, pseudonyms: Sequence[bytes]) -> None:
        self.pseudonyms = list(pseudonyms)
        self._tree = MemoryTree(leaf_hashes(self.pseudonyms))
        self._positions: dict[bytes, int] | None = None

    @property
    def count(self) -> int:
        return len(self.pseudonyms)

    @property
    def root(self) -> bytes:
        return self._tree.root()

    def prove(self, pseudonym_: bytes) -> RecipientProof:
        """The proof that ``pseudonym_`` is among the recipients."""
        if self._positions is None:
            self._positions = {p: i for i, p in enumerate(self.pseudonyms)}
        index = self._positions.get(pseudonym_)
        if index is None:
            raise ProofError("this pseudonym is not among the dispatch's recipients")
        return RecipientProof(index, self.count, tuple(self._tree.inclusion_proof(index)))
