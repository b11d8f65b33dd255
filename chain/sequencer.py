"""The sequencer: assigns indices, integrates batches, and signs one checkpoint per batch.

Batching: entries wait in memory until ``batch_size`` of them are pending or the oldest has
waited ``batch_age_ms``, whichever comes first; the caller's next :meth:`Sequencer.add` or
:meth:`Sequencer.tick` then integrates the batch. There is no background thread: the caller
owns the loop (and the clock, so tests and replays run without sleeping).

Crash safety, in this order, for each batch:

1. the entries, the new tree hashes and the new tree state are committed in ONE transaction;
2. only then is the checkpoint for that state signed and recorded.

An entry is acknowledged (durable) once step 1 has committed: :meth:`Sequencer.integrate`
returns, or the :meth:`Sequencer.add` call that completed the batch returns. A crash before
step 1 loses only unacknowledged entries; a crash between 1 and 2 leaves a persisted tree
without its checkpoint, and opening the log again signs that persisted state. Ed25519 signatures are
deterministic and the state is fixed on disk, so a re-signed checkpoint is byte-identical;
and before signing, the new tree is proven consistent with the last signed checkpoint, so the
log never signs two roots for one size, nor a tree that does not extend what it signed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from chain.checkpoint import Checkpoint, sign_checkpoint
from chain.errors import EntryError, ProofError, StoreError
from chain.merkle import consistency_proof, fold_nodes, leaf_hashes, verify_consistency
from chain.note import Signer
from chain.store import LogStore, StoredCheckpoint, TreeState
from chain.tiles import MAX_ENTRY_BYTES
from chain.tree import StoredTree

logger = logging.getLogger(__name__)


class Sequencer:
    """Sequences entries of one log into its store and signs its checkpoints."""

    def __init__(
        self,
        store: LogStore,
        signer: Signer,
        origin: str,
        *,
        batch_size: int = 4096,
        batch_age_ms: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if batch_age_ms < 0:
            raise ValueError(f"batch_age_ms must be at least 0, got {batch_age_ms}")
        self.store = store
        self.signer = signer
        self.origin = origin
        self.batch_size = batch_size
        self.batch_age_ms = batch_age_ms
        self.clock = clock
        self.tree = StoredTree(store)
        self.state = store.tree_state()
        self.pending: list[bytes] = []
        self._oldest = 0.0
        self.recover()

    @property
    def next_index(self) -> int:
        return self.state.size + len(self.pending)

    def recover(self) -> StoredCheckpoint:
        """Sign the persisted tree if the last run stopped before signing it."""
        self._check_state(self.state)
        latest = self.store.latest_checkpoint()
        if latest is None or latest.size < self.state.size:
            if latest is not None:
                logger.info(
                    "signing persisted tree size=%d left unsigned (last checkpoint size=%d)",
                    self.state.size,
                    latest.size,
                )
            return self._sign(self.state)
        if latest.size > self.state.size:
            raise StoreError(
                f"the store holds a checkpoint of size {latest.size} but a tree of size "
                f"{self.state.size}; the tree tables were rolled back or altered"
            )
        return latest

    def add(self, entry: bytes) -> int:
        """Queue one entry; returns its index. Integrates the batch when it is full or old."""
        if not isinstance(entry, bytes | bytearray):
            raise EntryError(f"an entry must be bytes, got {type(entry).__name__}")
        if len(entry) > MAX_ENTRY_BYTES:
            raise EntryError(f"an entry must be at most {MAX_ENTRY_BYTES} bytes, got {len(entry)}")
        if not self.pending:
            self._oldest = self.clock()
        index = self.next_index
        self.pending.append(bytes(entry))
        if self.due():
            self.integrate()
        return index

    def add_many(self, entries: Sequence[bytes]) -> list[int]:
        """Queue many entries, integrating each batch as it fills; their indices."""
        first = self.next_index
        at = 0
        while at < len(entries):
            if not self.pending:
                self._oldest = self.clock()
            room = self.batch_size - len(self.pending)
            chunk = [bytes(entry) for entry in entries[at : at + room]]
            for entry in chunk:
                if len(entry) > MAX_ENTRY_BYTES:
                    raise EntryError(
                        f"an entry must be at most {MAX_ENTRY_BYTES} bytes, got {len(entry)}"
                    )
            self.pending.extend(chunk)
            at += len(chunk)
            if self.due():
                self.integrate()
        return list(range(first, first + len(entries)))

    def due(self) -> bool:
        """Whether the pending batch is full or has waited ``batch_age_ms``."""
        if not self.pending:
            return False
        if len(self.pending) >= self.batch_size:
            return True
        return (self.clock() - self._oldest) * 1000 >= self.batch_age_ms

    def tick(self) -> StoredCheckpoint | None:
        """Integrate the pending batch if it is due; the new checkpoint, or ``None``."""
        return self.integrate() if self.due() else None

    def integrate(self) -> StoredCheckpoint:
        """Persist the pending entries and the tree over them, then sign the new checkpoint."""
        if not self.pending:
            latest = self.store.latest_checkpoint()
            return latest if latest is not None else self._sign(self.state)
        self._check_state(self.state)
        batch = self.pending
        rows, state = self.tree.plan_append(self.state, leaf_hashes(batch))
        # (1): entries, tree rows and tree state, in one transaction. Should it fail, the batch
        # stays pending and the next call tries again.
        self.store.commit(self.state.size, batch, rows, state)
        self.pending = []
        self.state = state
        logger.debug("integrated batch entries=%d size=%d", len(batch), state.size)
        # (2): only then the signature.
        return self._sign(state)

    def _check_state(self, state: TreeState) -> None:
        """Refuse to grow a tree whose right edge no longer gives its root."""
        if state.size and fold_nodes(state.edge) != state.root:
            raise StoreError(
                f"the stored tree of size {state.size} is not consistent with its own root; "
                "the tree tables were altered, and nothing more will be appended or signed"
            )

    def _sign(self, state: TreeState) -> StoredCheckpoint:
        self._check_state(state)
        latest = self.store.latest_checkpoint()
        if latest is not None:
            self._check_extends(latest, state)
            if latest.size == state.size:
                return latest
        checkpoint = Checkpoint(self.origin, state.size, state.root)
        note = sign_checkpoint(checkpoint, [self.signer]).decode()
        stored = StoredCheckpoint(state.size, state.root, note)
        self.store.add_checkpoint(stored)
        logger.debug("signed checkpoint origin=%s size=%d", self.origin, state.size)
        return stored

    def _check_extends(self, latest: StoredCheckpoint, state: TreeState) -> None:
        """Refuse to sign a tree that is not a consistent extension of the last checkpoint."""
        if state.size < latest.size:
            raise StoreError(
                f"refusing to sign size {state.size}: a checkpoint of size {latest.size} is "
                "already signed"
            )
        if latest.size == 0:
            return
        proof: Sequence[bytes] = (
            consistency_proof(latest.size, state.size, self.tree)
            if latest.size < state.size
            else []
        )
        try:
            verify_consistency(latest.size, state.size, proof, latest.root, state.root)
        except ProofError as exc:
            raise StoreError(
                f"refusing to sign size {state.size}: the tree is not consistent with the signed "
                f"checkpoint of size {latest.size} ({exc})"
            ) from None
