"""Witness cosignatures on checkpoints (c2sp.org/tlog-cosignature), the Ed25519 kind.

A cosignature is a note signature line of signature type ``0x04``: the key ID is
``SHA-256(name || 0x0A || 0x04 || public key)[:4]``, and the signature bytes are a
``timestamped_signature``: an 8-byte big-endian POSIX timestamp, then the Ed25519
signature of::

    cosignature/v1
    time <timestamp>
    <the whole checkpoint body>

It states that, at that time, this was the largest consistent checkpoint the witness had
seen for the log. ML-DSA-44 cosignatures (type 0x06) are not implemented.
"""

from __future__ import annotations

import struct

from chain.errors import NoteError
from chain.note import Signature, Signer, Verifier, register_verifier_type

COSIGNATURE_V1 = 0x04
MAX_TIMESTAMP = 2**63 - 1


def cosigned_message(checkpoint_body: bytes, timestamp: int) -> bytes:
    """The bytes a v1 Ed25519 cosignature signs."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"a cosignature timestamp must be within 0..2**63-1, got {timestamp}")
    return b"cosignature/v1\ntime %d\n" % timestamp + checkpoint_body


class CosignatureVerifier(Verifier):
    """A witness's public key: checks its timestamped cosignatures."""

    signature_type = COSIGNATURE_V1

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != 8 + 64:
            return False
        (timestamp,) = struct.unpack(">Q", signature[:8])
        if timestamp > MAX_TIMESTAMP:
            return False
        return super().verify(cosigned_message(text, timestamp), signature[8:])


register_verifier_type(CosignatureVerifier)


def witness_verifier(vkey: str) -> CosignatureVerifier:
    """A witness's verifier key, which must be of the cosignature type."""
    verifier = Verifier.from_vkey(vkey)
    if not isinstance(verifier, CosignatureVerifier):
        raise NoteError(
            f"a witness key must be of type 0x{COSIGNATURE_V1:02x}, "
            f"got 0x{verifier.signature_type:02x} in {vkey[:60]!r}"
        )
    return verifier


def cosignature_time(signature: Signature) -> int:
    """The POSIX timestamp carried by a cosignature."""
    if len(signature.signature) != 72:
        raise NoteError(f"a v1 cosignature must be 72 bytes, got {len(signature.signature)}")
    return int(struct.unpack(">Q", signature.signature[:8])[0])


class CosignatureSigner(Signer):
    """A witness's Ed25519 key: cosigns checkpoint bodies at a given time."""

    signature_type = COSIGNATURE_V1

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self.public_key)

    def sign(self, text: bytes) -> Signature:
        raise NoteError("a cosigner signs with a timestamp; call cosign(body, timestamp)")

    def cosign(self, checkpoint_body: bytes, timestamp: int) -> Signature:
        signed = self.private_key.sign(cosigned_message(checkpoint_body, timestamp))
        return Signature(self.name, self.key_id, struct.pack(">Q", timestamp) + signed)
