"""The dispatch log: an append-only Merkle log (RFC 9162) with signed, witnessed checkpoints.

A library: it knows nothing of Kafka or HTTP. The facade::

    from chain import Ledger, LogReader

    ledger = Ledger.init("var/ledger", origin="ledger.example.org/wayhome")  # once
    ledger = Ledger.open("var/ledger", batch_size=4096, batch_age_ms=500)   # or a postgresql:// DSN
    entry = ledger.dispatch_entry(case_id, tick, time, area_digest, recipients)  # -> bytes
    index = ledger.append(entry)          # -> int; batched: integrated when full or old
    ledger.tick()                         # integrate if the batch's time is up (call from a loop)
    note = ledger.flush()                 # integrate now; -> the signed checkpoint (str)
    ledger.proof_bundle(index)            # -> c2sp.org/tlog-proof@v1 text
    ledger.inclusion_proof(index, size), ledger.consistency_proof(size1, size2)
    ledger.vkey                           # the log's C2SP verifier key
    ledger.close()                        # flushes what is queued

``recipients`` are pseudonyms: ``chain.recipients.pseudonym(case_secret, subscriber_id)``, or
``pseudonyms(case_secret, subscriber_ids)`` for many at once; ``ledger.append_many(entries)``
queues many entries at once. ``chain.recipients.RecipientTree(pseudonyms).prove(p)`` and a
``ledger.proof_bundle(index)`` make the two-level proof that one subscriber was notified.
Other records: ``chain.entries.case_opened_record / sighting_record / perimeter_record /
resolution_record``, appended with ``ledger.append_record(record)``. Personal data goes
through ``chain.privacy`` (commitments, per-case keys, shredding), never into an entry.

Modules, one spec each: ``merkle`` (RFC 9162), ``note`` (signed-note), ``checkpoint``
(tlog-checkpoint), ``cosignature`` (tlog-cosignature), ``tiles`` (tlog-tiles), ``proof``
(tlog-proof), ``entries`` (RFC 8785 records), ``recipients``, ``privacy``, ``store``,
``tree``, ``sequencer``, ``witness`` (tlog-witness), ``verify``.
"""

from chain.errors import (
    ChainError,
    CheckpointError,
    EntryError,
    NoteError,
    PrivacyError,
    ProofError,
    ShreddedError,
    StoreError,
    TamperError,
    WitnessError,
)
from chain.ledger import Ledger, LogReader
from chain.recipients import pseudonym, pseudonyms, recipient_root

__all__ = [
    "ChainError",
    "CheckpointError",
    "EntryError",
    "Ledger",
    "LogReader",
    "NoteError",
    "PrivacyError",
    "ProofError",
    "ShreddedError",
    "StoreError",
    "TamperError",
    "WitnessError",
    "pseudonym",
    "pseudonyms",
    "recipient_root",
]
