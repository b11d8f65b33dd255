"""Log entries: canonical records (RFC 8785 JSON), each signed by its submitter with Ed25519.

Five kinds of record, each built by one function here so that no other field can slip in:

- ``dispatch``: case, tick, time, digest of the area, recipient count and recipient root;
- ``case_opened``: case, time, category, and a salted commitment to the case's private
  fields (``chain.privacy``);
- ``sighting``: case, time, commitment to the sighting's details, digest of its area;
- ``perimeter``: case, time, digest of the police perimeter, and whether it adds or replaces;
- ``resolution``: case, time, and how it ended.

No record holds personal data: only ids chosen by the operator, digests, commitments and
pseudonym roots. :func:`check_record` holds each kind to its exact fields and their types,
both when an entry is signed and when it is opened, so a record carrying any other field
(a name, an id number) is refused rather than written. An entry is the RFC 8785 canonical
JSON of::

    {"record": {...}, "sig": {"key_id": "<hex>", "name": "<key name>", "value": "<base64>"}}

where ``value`` is the Ed25519 signature of ``wayhome/entry/v1\\n`` followed by the canonical
record. Canonical bytes make the entry's leaf hash a function of its content alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785

from chain.errors import EntryError, NoteError
from chain.note import Signer, Verifier, b64decode, b64encode
from chain.recipients import recipient_root
from chain.tiles import MAX_ENTRY_BYTES

ENTRY_CONTEXT = b"wayhome/entry/v1\n"
KINDS = ("dispatch", "case_opened", "sighting", "perimeter", "resolution")
OUTCOMES = ("found", "found_deceased", "cancelled", "false_report", "expired")
_CASE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CATEGORY = re.compile(r"[a-z0-9_]{1,64}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def canonical(value: Any) -> bytes:
    """RFC 8785 canonical JSON bytes."""
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise EntryError(f"a record must be plain JSON (RFC 8785): {exc}") from None


def _time(value: datetime) -> str:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise EntryError(f"a record time must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _case(case_id: str) -> str:
    if not isinstance(case_id, str) or not _CASE_ID.fullmatch(case_id):
        raise EntryError(
            f"a case id must be 1-128 letters, digits or '._:-', got {str(case_id)[:40]!r}"
        )
    return case_id


def _digest(name: str, value: bytes) -> str:
    if not isinstance(value, bytes) or len(value) != 32:
        raise EntryError(f"{name} must be a 32-byte digest, got {value!r:.40}")
    return b64encode(value)


def dispatch_record(
    case_id: str,
    tick: int,
    time: datetime,
    area_digest: bytes,
    recipients: Sequence[bytes],
) -> dict[str, Any]:
    """The record of one dispatch tick; ``recipients`` are pseudonyms (``chain.recipients``)."""
    if not isinstance(tick, int) or tick < 0:
        raise EntryError(f"a tick must be a non-negative integer, got {tick!r}")
    return {
        "kind": "dispatch",
        "case": _case(case_id),
        "tick": tick,
        "time": _time(time),
        "area": _digest("the area digest", area_digest),
        "recipients": {"count": len(recipients), "root": b64encode(recipient_root(recipients))},
    }


def case_opened_record(
    case_id: str, time: datetime, category: str, subject_commitment: bytes
) -> dict[str, Any]:
    """A case was opened; the child's details stay off the log behind a commitment."""
    if not isinstance(category, str) or not _CATEGORY.fullmatch(category):
        raise EntryError(f"a category must be 1-64 of a-z, 0-9 or '_', got {category!r}")
    return {
        "kind": "case_opened",
        "case": _case(case_id),
        "time": _time(time),
        "category": category,
        "subject": _digest("the subject commitment", subject_commitment),
    }


def sighting_record(
    case_id: str, time: datetime, details_commitment: bytes, area_digest: bytes
) -> dict[str, Any]:
    return {
        "kind": "sighting",
        "case": _case(case_id),
        "time": _time(time),
        "details": _digest("the sighting commitment", details_commitment),
        "area": _digest("the area digest", area_digest),
    }


def perimeter_record(
    case_id: str, time: datetime, area_digest: bytes, mode: str = "add"
) -> dict[str, Any]:
    if mode not in ("add", "replace"):
        raise EntryError(f"a perimeter mode must be 'add' or 'replace', got {mode!r}")
    return {
        "kind": "perimeter",
        "case": _case(case_id),
        "time": _time(time),
        "area": _digest("the perimeter digest", area_digest),
        "mode": mode,
    }


def resolution_record(case_id: str, time: datetime, outcome: str) -> dict[str, Any]:
    if outcome not in OUTCOMES:
        raise EntryError(f"an outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    return {"kind": "resolution", "case": _case(case_id), "time": _time(time), "outcome": outcome}


def _is_case(value: Any) -> bool:
    return isinstance(value, str) and _CASE_ID.fullmatch(value) is not None


def _is_time(value: Any) -> bool:
    return isinstance(value, str) and _TIME.fullmatch(value) is not None


def _is_digest(value: Any) -> bool:
    try:
        return isinstance(value, str) and len(b64decode(value, "a digest")) == 32
    except NoteError:
        return False


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_recipients(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == {"count", "root"}
        and _is_count(value["count"])
        and _is_digest(value["root"])
    )


_FIELDS: dict[str, dict[str, tuple[str, Callable[[Any], bool]]]] = {
    "dispatch": {
        "case": ("a case id", _is_case),
        "tick": ("a non-negative integer", _is_count),
        "time": ("a UTC time to the millisecond", _is_time),
        "area": ("a base64 32-byte digest", _is_digest),
        "recipients": ("a count and a base64 32-byte root", _is_recipients),
    },
    "case_opened": {
        "case": ("a case id", _is_case),
        "time": ("a UTC time to the millisecond", _is_time),
        "category": (
            "1-64 of a-z, 0-9 or '_'",
            lambda v: isinstance(v, str) and _CATEGORY.fullmatch(v) is not None,
        ),
        "subject": ("a base64 32-byte commitment", _is_digest),
    },
    "sighting": {
        "case": ("a case id", _is_case),
        "time": ("a UTC time to the millisecond", _is_time),
        "details": ("a base64 32-byte commitment", _is_digest),
        "area": ("a base64 32-byte digest", _is_digest),
    },
    "perimeter": {
        "case": ("a case id", _is_case),
        "time": ("a UTC time to the millisecond", _is_time),
        "area": ("a base64 32-byte digest", _is_digest),
        "mode": ("'add' or 'replace'", lambda v: v in ("add", "replace")),
    },
    "resolution": {
        "case": ("a case id", _is_case),
        "time": ("a UTC time to the millisecond", _is_time),
        "outcome": (f"one of {', '.join(OUTCOMES)}", lambda v: v in OUTCOMES),
    },
}
"""Each kind's fields besides ``kind``: what each must be, and its check."""


def check_record(record: Any) -> None:
    """Refuse a record that is not exactly one of the five kinds: no field more, none less,
    each of its type. Nothing but these fields can then reach the log."""
    if not isinstance(record, dict):
        raise EntryError(f"a record must be a JSON object, got {type(record).__name__}")
    kind = record.get("kind")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise EntryError(f"a record kind must be one of {', '.join(KINDS)}, got {kind!r}")
    fields = _FIELDS[kind]
    extra = sorted(set(record) - set(fields) - {"kind"})
    if extra:
        raise EntryError(
            f"a {kind} record holds only the fields {', '.join(sorted(fields))}, "
            f"got {', '.join(extra)} too"
        )
    missing = sorted(set(fields) - set(record))
    if missing:
        raise EntryError(f"a {kind} record lacks the field(s) {', '.join(missing)}")
    for name, (what, check) in fields.items():
        if not check(record[name]):
            raise EntryError(
                f"the {name} of a {kind} record must be {what}, got {str(record[name])[:40]!r}"
            )


def sign_entry(record: dict[str, Any], signer: Signer) -> bytes:
    """The entry bytes: the canonical record with its submitter's signature."""
    check_record(record)
    body = canonical(record)
    signature = signer.private_key.sign(ENTRY_CONTEXT + body)
    entry = canonical(
        {
            "record": record,
            "sig": {
                "key_id": f"{signer.key_id:08x}",
                "name": signer.name,
                "value": b64encode(signature),
            },
        }
    )
    if len(entry) > MAX_ENTRY_BYTES:
        raise EntryError(f"an entry must be at most {MAX_ENTRY_BYTES} bytes, got {len(entry)}")
    return entry


@dataclass(frozen=True)
class SignedEntry:
    record: dict[str, Any]
    name: str
    key_id: int
    signature: bytes


def parse_entry(entry: bytes) -> SignedEntry:
    """Read an entry without checking its signature; refuses non-canonical bytes."""
    try:
        value = json.loads(entry)
        record, sig = value["record"], value["sig"]
        parsed = SignedEntry(
            record, str(sig["name"]), int(sig["key_id"], 16), b64decode(sig["value"], "signature")
        )
    except (ValueError, KeyError, TypeError, NoteError) as exc:
        raise EntryError(f"an entry must be a signed record: {exc}") from None
    if canonical(value) != bytes(entry):
        raise EntryError("an entry must be RFC 8785 canonical JSON")
    return parsed


def claims_signature(entry: bytes) -> bool:
    """Whether an entry presents itself as a signed record (a JSON object with a ``record`` or
    a ``sig``), so that its signature must be checked; other entries are opaque bytes."""
    if entry.lstrip()[:1] != b"{":
        return False
    try:
        value = json.loads(entry)
    except ValueError:
        return False
    return isinstance(value, dict) and ("record" in value or "sig" in value)


def open_entry(entry: bytes, verifiers: Iterable[Verifier]) -> dict[str, Any]:
    """The record of an entry whose submitter's signature verifies against a known key."""
    parsed = parse_entry(entry)
    for verifier in verifiers:
        if verifier.name == parsed.name and verifier.key_id == parsed.key_id:
            if verifier.verify(ENTRY_CONTEXT + canonical(parsed.record), parsed.signature):
                check_record(parsed.record)
                return parsed.record
            raise EntryError(f"the signature of {parsed.name} on this entry does not verify")
    raise EntryError(f"this entry is signed by {parsed.name}, which is not a known submitter")
