"""Errors of the chain package.

One root, :class:`ChainError`, and one subclass per kind of failure::

    ChainError (ValueError)
    ├── ProofError          an inclusion or consistency proof does not verify
    ├── NoteError           a signed note, key or signature is malformed or does not verify
    │   └── CheckpointError a checkpoint body is malformed or not the expected log's
    ├── EntryError          a log entry is malformed, too large or wrongly signed
    ├── StoreError          the log's storage is missing, locked or inconsistent
    ├── TamperError         verification found the log altered; ``index`` names the entry
    ├── PrivacyError        a commitment or an encrypted field cannot be opened
    │   └── ShreddedError   the case's data key was destroyed
    └── WitnessError        a witness refused a checkpoint; ``status`` is the HTTP status

Messages are sentences that say what was wrong and what would be right.
"""

from __future__ import annotations


class ChainError(ValueError):
    """Root of every error raised by the chain package."""


class ProofError(ChainError):
    """An inclusion or consistency proof is malformed or does not verify."""


class NoteError(ChainError):
    """A signed note, verifier key or signature is malformed or does not verify."""


class CheckpointError(NoteError):
    """A checkpoint body is malformed, or is not from the expected log."""


class EntryError(ChainError):
    """A log entry is malformed, too large, or its submitter's signature does not verify."""


class StoreError(ChainError):
    """The log's storage is missing, not initialised, or inconsistent."""


class TamperError(ChainError):
    """Verification found the log altered.

    ``index`` is the index of the first entry found altered, missing or out of place, or
    ``None`` when the damage is not in one entry (a forged signature, a rewritten tree).
    """

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class PrivacyError(ChainError):
    """A commitment does not open, or an encrypted field cannot be decrypted."""


class ShreddedError(PrivacyError):
    """The case's data key was destroyed, so its private fields are gone for good."""


class WitnessError(ChainError):
    """A witness refused a checkpoint; ``status`` is the HTTP status of the refusal."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None, size: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status
        self.size = size
