"""Checkpoints of a transparency log (c2sp.org/tlog-checkpoint).

A checkpoint is a signed note whose text is exactly::

    <origin>
    <tree size, decimal, no leading zeroes>
    <root hash, base64>
    [extension lines...]

The log signs it with its Ed25519 key, whose name SHOULD be the origin; witnesses add
cosignatures (``chain.cosignature``). A log must never sign two checkpoints that are not
consistent with each other; ``chain.sequencer`` enforces that.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from chain.errors import CheckpointError, NoteError
from chain.merkle import HASH_SIZE, MAX_SIZE
from chain.note import Note, Signature, Signer, Verifier, b64decode, b64encode, open_note, sign_note

_SIZE = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True)
class Checkpoint:
    """The three mandatory lines of a checkpoint, and its optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise CheckpointError(
                f"a checkpoint origin must be one non-empty line, got {self.origin!r}"
            )
        if not 0 <= self.size <= MAX_SIZE:
            raise CheckpointError(f"a checkpoint size must be within 0..2**64-1, got {self.size}")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError(
                f"a checkpoint root must be {HASH_SIZE} bytes, got {len(self.root)}"
            )
        for line in self.extensions:
            if not line or "\n" in line:
                raise CheckpointError("checkpoint extension lines must be non-empty single lines")

    def body(self) -> str:
        """The note text: origin, size, root and extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_body(cls, text: str) -> Checkpoint:
        """Parse a checkpoint's note text."""
        if not text.endswith("\n"):
            raise CheckpointError("a checkpoint body must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(f"a checkpoint body needs at least 3 lines, got {len(lines)}")
        origin, size_text, root_text, *extensions = lines
        if not _SIZE.fullmatch(size_text):
            raise CheckpointError(
                f"a checkpoint size must be a decimal with no leading zeroes, got {size_text!r}"
            )
        try:
            root = b64decode(root_text, "the checkpoint root hash")
        except NoteError as exc:
            raise CheckpointError(str(exc)) from None
        return cls(origin, int(size_text), root, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signers: Iterable[Signer]) -> bytes:
    """The signed note of ``checkpoint``."""
    return sign_note(checkpoint.body(), signers)


def open_checkpoint(
    message: bytes | str,
    verifiers: Sequence[Verifier],
    *,
    origin: str | None = None,
) -> tuple[Checkpoint, Note, list[Signature]]:
    """Verify a signed checkpoint against the log's key(s) and parse its body.

    ``origin``, when given, must match the checkpoint's first line.
    """
    note, verified = open_note(message, verifiers)
    checkpoint = Checkpoint.from_body(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint origin must be {origin!r}, got {checkpoint.origin!r}")
    return checkpoint, note, verified
