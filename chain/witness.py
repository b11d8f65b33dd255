"""Witnesses (c2sp.org/tlog-witness): cosign only checkpoints consistent with what was seen.

:meth:`Witness.add_checkpoint` is the ``add-checkpoint`` call without its HTTP: it takes the
request body::

    old <size>
    <consistency proof hashes, base64, one a line, at most 63>
    <empty line>
    <signed checkpoint>

and returns the response body, one cosignature line (``chain.cosignature``), or raises a
:class:`chain.errors.WitnessError` whose ``status`` is the spec's answer: 400 for a malformed
request or an old size above the new one, 404 for an unknown log, 403 when no signature from
the log's keys verifies, 409 (with ``size``, sent as ``text/x.tlog.size``) when the old size is
not the size the witness last cosigned or equal sizes carry different roots, 422 when the
consistency proof fails.

Checking the old size and recording the new checkpoint happen in one SQLite ``BEGIN
IMMEDIATE`` transaction, so two concurrent requests cannot roll the witness's view back.

:class:`WitnessPolicy` is the client side: which witnesses, and how many of them, must have
cosigned a checkpoint before it counts.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from chain.checkpoint import Checkpoint
from chain.cosignature import CosignatureSigner, CosignatureVerifier
from chain.errors import ChainError, NoteError, ProofError, WitnessError
from chain.merkle import verify_consistency
from chain.note import Signature, Verifier, b64decode, b64encode, open_note, parse_note

logger = logging.getLogger(__name__)

MAX_PROOF_LINES = 63
_OLD = re.compile(r"old (0|[1-9][0-9]*)")


def add_checkpoint_request(old_size: int, proof: Sequence[bytes], checkpoint_note: str) -> bytes:
    """The body of an ``add-checkpoint`` request."""
    lines = [f"old {old_size}"] + [b64encode(h) for h in proof]
    return ("\n".join(lines) + "\n\n" + checkpoint_note).encode()


class Witness:
    """A witness: its cosigner key, the logs it follows, and its durable view of each."""

    def __init__(
        self,
        signer: CosignatureSigner,
        logs: Mapping[str, Sequence[Verifier]],
        state_path: str | Path,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.logs = {origin: list(keys) for origin, keys in logs.items()}
        self.clock = clock
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(state_path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS witnessed (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, "
            "root BLOB NOT NULL, note TEXT NOT NULL)"
        )

    def close(self) -> None:
        self._conn.close()

    def latest(self, origin: str) -> tuple[int, bytes] | None:
        """The size and root of the last checkpoint cosigned for ``origin``."""
        row = self._conn.execute(
            "SELECT size, root FROM witnessed WHERE origin = ?", (origin,)
        ).fetchone()
        return (int(row[0]), bytes(row[1])) if row else None

    def add_checkpoint(self, body: bytes) -> bytes:
        """Check and record a checkpoint; the cosignature line(s) to answer with."""
        old_size, proof, note_text = _parse_request(body)

        # The log must be known (404) and must have signed the checkpoint (403).
        try:
            note = parse_note(note_text)
            checkpoint = Checkpoint.from_body(note.text)
        except (NoteError, ChainError) as exc:
            raise WitnessError(f"the checkpoint is malformed: {exc}", status=400) from None
        keys = self.logs.get(checkpoint.origin)
        if keys is None:
            raise WitnessError(f"this witness does not follow log {checkpoint.origin}", status=404)
        try:
            open_note(note_text, keys)
        except NoteError as exc:
            raise WitnessError(f"the log's signature does not verify: {exc}", status=403) from None
        if old_size > checkpoint.size:
            raise WitnessError(
                f"old size {old_size} exceeds the checkpoint size {checkpoint.size}", status=400
            )

        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._check_against_view(checkpoint, old_size, proof)
                self._conn.execute(
                    "INSERT INTO witnessed (origin, size, root, note) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, "
                    "root = excluded.root, note = excluded.note",
                    (checkpoint.origin, checkpoint.size, checkpoint.root, note_text),
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        timestamp = int(self.clock())
        signature = self.signer.cosign(note.text.encode(), timestamp)
        logger.info("cosigned origin=%s size=%d", checkpoint.origin, checkpoint.size)
        return signature.line().encode()

    def _check_against_view(
        self, checkpoint: Checkpoint, old_size: int, proof: list[bytes]
    ) -> None:
        row = self._conn.execute(
            "SELECT size, root FROM witnessed WHERE origin = ?", (checkpoint.origin,)
        ).fetchone()
        known_size, known_root = (int(row[0]), bytes(row[1])) if row else (0, None)
        if old_size != known_size:
            raise WitnessError(
                f"old size {old_size} is not the size {known_size} this witness last cosigned",
                status=409,
                size=known_size,
            )
        if old_size == checkpoint.size:
            if proof:
                raise WitnessError("equal sizes need an empty consistency proof", status=422)
            if known_root is not None and known_root != checkpoint.root:
                raise WitnessError(
                    f"size {old_size} was cosigned with another root: the log forked",
                    status=409,
                    size=known_size,
                )
            return
        if old_size == 0:
            if proof:
                raise WitnessError("a consistency proof from size 0 must be empty", status=422)
            return
        assert known_root is not None
        try:
            verify_consistency(old_size, checkpoint.size, proof, known_root, checkpoint.root)
        except ProofError as exc:
            raise WitnessError(
                f"the consistency proof does not verify: {exc}", status=422
            ) from None


def _parse_request(body: bytes) -> tuple[int, list[bytes], str]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessError("the request body must be UTF-8 text", status=400) from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise WitnessError("the request needs an empty line before the checkpoint", status=400)
    lines = head.split("\n")
    match = _OLD.fullmatch(lines[0])
    if match is None:
        raise WitnessError("the request must start with 'old <size>'", status=400)
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessError(f"a consistency proof has at most {MAX_PROOF_LINES} lines", status=400)
    try:
        proof = [b64decode(line, "a consistency proof line") for line in lines[1:]]
    except NoteError as exc:
        raise WitnessError(str(exc), status=400) from None
    return int(match.group(1)), proof, note


class WitnessPolicy:
    """Which witnesses must cosign, and how many of them, before a checkpoint counts."""

    def __init__(self, witnesses: Sequence[CosignatureVerifier], quorum: int) -> None:
        if not 0 <= quorum <= len(witnesses):
            raise WitnessError(
                f"a quorum must be within 0..{len(witnesses)} witnesses, got {quorum}", status=400
            )
        self.witnesses = list(witnesses)
        self.quorum = quorum

    def check(self, checkpoint_note: str | bytes) -> list[str]:
        """The names of the known witnesses whose cosignature verified; refuses below quorum.

        A cosignature that does not verify, or comes from an unknown key, does not count; it
        does not spoil the others, since anyone can add a line to a note in transit.
        """
        if self.quorum == 0:
            return []
        try:
            note = parse_note(checkpoint_note)
        except NoteError as exc:
            raise WitnessError(f"the checkpoint is not a signed note: {exc}") from None
        known = {(w.name, w.key_id): w for w in self.witnesses}
        text = note.text.encode()
        names: set[str] = set()
        failed = 0
        for signature in note.signatures:
            witness = known.get((signature.name, signature.key_id))
            if witness is None:
                continue
            if witness.verify(text, signature.signature):
                names.add(signature.name)
            else:
                failed += 1
        if len(names) < self.quorum:
            bad = f" ({failed} more from known witnesses did not verify)" if failed else ""
            raise WitnessError(
                f"the checkpoint carries {len(names)} valid cosignature(s) from the policy's "
                f"witnesses{bad}, the policy needs {self.quorum}"
            )
        return sorted(names)


def cosignatures_of(
    checkpoint_note: str | bytes, reply: str, witness: CosignatureVerifier
) -> list[Signature]:
    """The cosignatures in a witness's ``add-checkpoint`` reply that verify against its key.

    Lines of other keys are left out; a line of the witness's key that does not verify, or a
    reply with none that does, is refused.
    """
    note = parse_note(checkpoint_note)
    try:
        lines = parse_note(note.text + "\n" + reply).signatures
    except NoteError as exc:
        raise WitnessError(
            f"witness {witness.name} replied with no cosignature lines: {exc}"
        ) from None
    text = note.text.encode()
    verified = []
    for signature in lines:
        if (signature.name, signature.key_id) != (witness.name, witness.key_id):
            continue
        if not witness.verify(text, signature.signature):
            raise WitnessError(
                f"the cosignature of witness {witness.name} does not verify against its key"
            )
        verified.append(signature)
    if not verified:
        raise WitnessError(
            f"witness {witness.name} replied with no cosignature of its key "
            f"{witness.vkey()}, expected one"
        )
    return verified
