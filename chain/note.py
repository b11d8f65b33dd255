"""Signed notes (c2sp.org/signed-note) with Ed25519 keys.

A note is UTF-8 text ending in a newline, a blank line, and one or more signature lines
``— <key name> <base64(key ID || signature)>`` (an em dash, U+2014). The key ID of an
Ed25519 key is ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``, big-endian.

Keys travel as text, in the forms of the Go ``sumdb/note`` package that the spec grew from:

- verifier key: ``<name>+<hex key ID>+<base64(type byte || public key)>``;
- signer key:   ``PRIVATE+KEY+<name>+<hex key ID>+<base64(type byte || 32-byte seed)>``.

Opening a note follows the spec's rules: signatures from unknown keys are ignored; a
signature from a known key that fails rejects the whole note; a note with no verified
signature from a known key is rejected. Other signature types (the witness cosignatures of
``chain.cosignature``) plug in by subclassing :class:`Verifier`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chain.errors import NoteError

ED25519 = 0x01
"""Signature type of plain Ed25519 note signatures."""

EM_DASH = "\u2014"
MAX_SIGNATURES = 100
_SIG_PREFIX = EM_DASH + " "
_HEX_ID = re.compile(r"[0-9a-f]{8}")


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str, what: str) -> bytes:
    """Strict standard base64 (RFC 4648, section 4), or a :class:`NoteError` naming ``what``."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise NoteError(f"{what} must be standard base64, got {text[:40]!r}") from None
    if b64encode(raw) != text:
        raise NoteError(f"{what} must be canonical standard base64, got {text[:40]!r}")
    return raw


def check_name(name: str) -> None:
    """A key name must be non-empty and hold no Unicode space and no plus."""
    if not name or "+" in name or any(c.isspace() for c in name):
        raise NoteError(f"a key name must be non-empty, without spaces or '+', got {name!r}")
    if any(ord(c) < 0x20 for c in name):
        raise NoteError(f"a key name must hold no control characters, got {name!r}")


def key_id(name: str, signature_type: int, public_key: bytes) -> int:
    """The key ID the spec recommends: ``SHA-256(name || 0x0A || type || key)[:4]``."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public_key).digest()
    return int(struct.unpack(">I", digest[:4])[0])


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Signature:
    """One signature line of a note: key name, key ID and the signature bytes after the ID."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        blob = struct.pack(">I", self.key_id) + self.signature
        return f"{_SIG_PREFIX}{self.name} {b64encode(blob)}\n"


@dataclass(frozen=True)
class Note:
    """A note's text (with its final newline) and its signature lines, verified or not."""

    text: str
    signatures: tuple[Signature, ...]

    def to_bytes(self) -> bytes:
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()


class Verifier:
    """A known key: checks the signatures it made. Plain Ed25519 (type 0x01) by default."""

    signature_type = ED25519

    def __init__(self, name: str, public_key: bytes) -> None:
        check_name(name)
        if len(public_key) != 32:
            raise NoteError(f"an Ed25519 public key must be 32 bytes, got {len(public_key)}")
        self.name = name
        self.public_key = public_key
        self.key_id = key_id(name, self.signature_type, public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> Verifier:
        """Parse ``<name>+<hex key ID>+<base64(type || key)>``; the right class for its type."""
        name, hex_id, material = _split_key(vkey, "verifier key")
        raw = b64decode(material, "the verifier key's key material")
        if not raw:
            raise NoteError("a verifier key must carry a type byte and a public key")
        kind: type[Verifier] = _VERIFIER_TYPES.get(raw[0], _Unsupported)
        if kind is _Unsupported:
            raise NoteError(f"verifier key type 0x{raw[0]:02x} is not supported; use 0x01 or 0x04")
        if cls is not Verifier and not issubclass(kind, cls):
            raise NoteError(
                f"expected a verifier key of type 0x{cls.signature_type:02x}, got 0x{raw[0]:02x}"
            )
        verifier = kind(name, raw[1:])
        if f"{verifier.key_id:08x}" != hex_id:
            raise NoteError(
                f"verifier key ID {hex_id} does not match its name and key, expected "
                f"{verifier.key_id:08x}"
            )
        return verifier

    def vkey(self) -> str:
        material = b64encode(bytes([self.signature_type]) + self.public_key)
        return f"{self.name}+{self.key_id:08x}+{material}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (the bytes after the key ID) signs the note ``text``."""
        if len(signature) != 64:
            return False
        try:
            self._key.verify(signature, text)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.vkey()!r})"


class _Unsupported(Verifier):
    pass


_VERIFIER_TYPES: dict[int, type[Verifier]] = {ED25519: Verifier}


def register_verifier_type(kind: type[Verifier]) -> None:
    """Make :meth:`Verifier.from_vkey` parse keys of ``kind.signature_type``."""
    _VERIFIER_TYPES[kind.signature_type] = kind


def _split_key(text: str, what: str) -> tuple[str, str, str]:
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError(f"a {what} must read <name>+<hex key ID>+<base64 key>, got {text[:60]!r}")
    name, hex_id, material = parts
    check_name(name)
    if not _HEX_ID.fullmatch(hex_id):
        raise NoteError(f"a key ID must be 8 lowercase hex digits, got {hex_id!r}")
    return name, hex_id, material


class Signer:
    """An Ed25519 signing key with its name: signs note texts."""

    signature_type = ED25519

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        check_name(name)
        self.name = name
        self.private_key = private_key
        self.public_key = raw_public_key(private_key.public_key())
        self.key_id = key_id(name, self.signature_type, self.public_key)

    @classmethod
    def generate(cls, name: str) -> Self:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Self:
        if len(seed) != 32:
            raise NoteError(f"an Ed25519 seed must be 32 bytes, got {len(seed)}")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_skey(cls, skey: str) -> Self:
        """Parse ``PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>``."""
        prefix = "PRIVATE+KEY+"
        if not skey.startswith(prefix):
            raise NoteError("a signer key must start with 'PRIVATE+KEY+'")
        name, hex_id, material = _split_key(skey[len(prefix) :], "signer key")
        raw = b64decode(material, "the signer key's key material")
        if len(raw) != 33 or raw[0] != cls.signature_type:
            raise NoteError(
                f"a signer key must hold type 0x{cls.signature_type:02x} and a 32-byte seed"
            )
        signer = cls.from_seed(name, raw[1:])
        if f"{signer.key_id:08x}" != hex_id:
            raise NoteError(f"signer key ID {hex_id} does not match its name and key")
        return signer

    def skey(self) -> str:
        seed = self.private_key.private_bytes_raw()
        material = b64encode(bytes([self.signature_type]) + seed)
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{material}"

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.public_key)

    def vkey(self) -> str:
        return self.verifier().vkey()

    def sign(self, text: bytes) -> Signature:
        return Signature(self.name, self.key_id, self.private_key.sign(text))


def check_text(text: str) -> None:
    """Note text must end in a newline, and hold no control character other than newline."""
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("note text must hold no control characters other than newline")


def sign_note(text: str, signers: Iterable[Signer], *, keep: Sequence[Signature] = ()) -> bytes:
    """The signed note of ``text``: its signature lines, the ``keep`` ones first."""
    check_text(text)
    encoded = text.encode()
    signatures = list(keep) + [signer.sign(encoded) for signer in signers]
    if not signatures:
        raise NoteError("a signed note needs at least one signature")
    return Note(text, tuple(signatures)).to_bytes()


def parse_note(message: bytes | str) -> Note:
    """Split a signed note into its text and signature lines, checking their syntax only."""
    if isinstance(message, bytes):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("a signed note must be valid UTF-8") from None
    if any(ord(c) < 0x20 and c != "\n" for c in message):
        raise NoteError("a signed note must hold no control characters other than newline")
    if not message.endswith("\n"):
        raise NoteError("a signed note must end with a newline after its last signature")

    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("a signed note must separate its text from its signatures by a blank line")
    text = message[: split + 1]
    lines = message[split + 2 : -1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a signed note may carry at most {MAX_SIGNATURES} signatures")

    signatures = []
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise NoteError(
                f"a signature line must start with an em dash and a space: {line[:40]!r}"
            )
        name, _, encoded = line[len(_SIG_PREFIX) :].partition(" ")
        check_name(name)
        if " " in encoded:
            raise NoteError(f"a signature line must hold a name and one base64 blob: {line[:60]!r}")
        blob = b64decode(encoded, f"the signature of {name}")
        if len(blob) < 5:
            raise NoteError(f"the signature of {name} must hold a key ID and a signature")
        (kid,) = struct.unpack(">I", blob[:4])
        signatures.append(Signature(name, kid, blob[4:]))
    return Note(text, tuple(signatures))


def open_note(message: bytes | str, verifiers: Iterable[Verifier]) -> tuple[Note, list[Signature]]:
    """Parse and verify a note; returns it and the signatures of known keys that verified.

    Raises :class:`NoteError` when a known key's signature fails, or none verifies.
    """
    note = parse_note(message)
    known = {(v.name, v.key_id): v for v in verifiers}
    text = note.text.encode()
    verified: list[Signature] = []
    for signature in note.signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        if not verifier.verify(text, signature.signature):
            raise NoteError(f"the signature of {signature.name} on this note does not verify")
        verified.append(signature)
    if not verified:
        raise NoteError("no signature on this note is from a known key")
    return note, verified
