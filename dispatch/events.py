"""Events on the ``cases`` and ``subscribers`` topics, carried in CloudEvents binary mode.

Bodies are JSON described by the pydantic models below. The CloudEvents attributes travel in
Kafka headers, per the CloudEvents Kafka protocol binding (binary content mode): ``ce_specversion``
(``1.0``), ``ce_id``, ``ce_type``, ``ce_source``, ``ce_time`` and ``content-type``
(``application/json``). The message key is the case id (``cases``) or the subscriber id
(``subscribers``).

Every event has a stable id (``ce_id``), so a consumer that sees an event twice does the work
once. A platform producing to ``cases`` with a plain client (kcat, its own producer) may leave
the headers out: the body's ``type`` field then names the event, and the id is derived from the
message's key and bytes, which is stable across redeliveries of the same message.

Only a case's public fields travel here. A case filed through the API has its private fields
(a name, identity numbers) encrypted at rest by the API and replaced by ``private_commitment``,
a salted commitment to them; a case filed straight onto the topic carries public fields only.
Every model forbids extra fields, so a private field put on a topic by mistake is refused and
parked on the dead-letter topic instead of travelling further.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from dispatch.errors import MalformedEvent
from dispatch.notices.model import PublicCase

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"
DEFAULT_SOURCE = "urn:wayhome:api"

CASE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_CASE_ID = re.compile(CASE_ID_PATTERN)

# How far ahead of the service's clock a last-seen or sighting time may be (clocks differ a
# little between a police system and wayhome); the API and the dispatcher refuse beyond it.
FUTURE_TOLERANCE = timedelta(minutes=2)

# The fields of a refused event that may be parked with it: they name the event, never a person.
_PARKABLE_FIELDS = ("type", "case_id", "subscriber_id")

Headers = list[tuple[str, bytes]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LastSeen(_Body):
    """Where and when the child was last seen (or sighted)."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    time: AwareDatetime


class CaseReported(_Body):
    """A case was filed: the first tick runs at once."""

    type: Literal["case.reported"] = "case.reported"
    case_id: str = Field(pattern=CASE_ID_PATTERN)
    case: PublicCase
    last_seen: LastSeen
    policy: Literal["tiers", "multimodal"] = "tiers"
    perimeter: dict[str, Any] | None = Field(
        default=None, description="An optional police perimeter (GeoJSON) added to the area."
    )
    private_commitment: str | None = Field(
        default=None, pattern=r"^[0-9a-f]{64}$", description="Salted commitment to private data."
    )
    reported_at: AwareDatetime


class SightingAdded(_Body):
    """The child was seen again: the area restarts from the sighting."""

    type: Literal["case.sighting"] = "case.sighting"
    case_id: str = Field(pattern=CASE_ID_PATTERN)
    sighting: LastSeen
    note: str | None = Field(
        default=None,
        max_length=2000,
        description=(
            "Public police text about the sighting (what the child wore, which way they went). "
            "It travels on ``cases`` like the case's texts and never in a notice; the log holds a "
            "commitment to it. It must not name the child or give an identity number."
        ),
    )


class PerimeterSet(_Body):
    """The police drew a perimeter: added to the computed area, or replacing it."""

    type: Literal["case.perimeter"] = "case.perimeter"
    case_id: str = Field(pattern=CASE_ID_PATTERN)
    perimeter: dict[str, Any]
    mode: Literal["add", "replace"] = "add"


class CaseResolved(_Body):
    """The case is closed: everyone alerted gets a Cancel, and the case stops ticking."""

    type: Literal["case.resolved"] = "case.resolved"
    case_id: str = Field(pattern=CASE_ID_PATTERN)
    outcome: Literal["found", "cancelled", "false_report"]
    resolved_at: AwareDatetime


CaseEvent = Annotated[
    CaseReported | SightingAdded | PerimeterSet | CaseResolved, Field(discriminator="type")
]
_CASE_EVENT: TypeAdapter[CaseReported | SightingAdded | PerimeterSet | CaseResolved] = TypeAdapter(
    CaseEvent
)


class SubscriberUpserted(_Body):
    """A subscriber was created or changed; the body is the subscriber's public record."""

    type: Literal["subscriber.upserted"] = "subscriber.upserted"
    subscriber: dict[str, Any]


class SubscriberDeleted(_Body):
    """A subscriber was removed (also carried as a tombstone: a null value)."""

    type: Literal["subscriber.deleted"] = "subscriber.deleted"
    subscriber_id: str = Field(min_length=1, max_length=200)


def is_case_id(value: str) -> bool:
    """Whether ``value`` is a valid case id (letters, digits, '.', '_', '-'; at most 64)."""
    return bool(_CASE_ID.match(value))


def cloudevent_headers(
    event_type: str,
    *,
    event_id: str | None = None,
    source: str = DEFAULT_SOURCE,
    time: datetime | None = None,
) -> Headers:
    """The Kafka headers of a CloudEvent in binary mode."""
    instant = (time or datetime.now(UTC)).astimezone(UTC)
    return [
        ("ce_specversion", SPEC_VERSION.encode()),
        ("ce_id", (event_id or str(uuid4())).encode()),
        ("ce_type", f"org.wayhome.{event_type}".encode()),
        ("ce_source", source.encode()),
        ("ce_time", instant.isoformat().encode()),
        ("content-type", CONTENT_TYPE.encode()),
    ]


def encode(
    event: _Body,
    *,
    event_id: str | None = None,
    source: str = DEFAULT_SOURCE,
    time: datetime | None = None,
) -> tuple[bytes, Headers]:
    """An event as a Kafka value and its CloudEvents headers."""
    event_type = str(event.model_dump(include={"type"})["type"])
    headers = cloudevent_headers(event_type, event_id=event_id, source=source, time=time)
    return event.model_dump_json(exclude_none=True).encode(), headers


def header(headers: Any, name: str) -> str | None:
    """The value of header ``name`` as text, or None when absent."""
    for key, value in headers or ():
        if key == name and value is not None:
            return bytes(value).decode("utf-8", "replace")
    return None


def event_id_of(key: bytes | None, value: bytes | None, headers: Any) -> str:
    """The event's stable id: ``ce_id`` when given, else derived from the key and value."""
    given = header(headers, "ce_id")
    if given:
        return given
    digest = hashlib.sha256((key or b"") + b"\x00" + (value or b"")).hexdigest()
    return f"sha256:{digest[:32]}"


def _body(value: bytes | None, headers: Any) -> dict[str, Any]:
    if value is None:
        raise MalformedEvent("the event has no value; a case event needs a JSON body")
    content_type = header(headers, "content-type")
    if content_type and not content_type.startswith("application/json"):
        raise MalformedEvent(
            f"the event's content-type must be application/json, got {content_type}"
        )
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedEvent(f"the event's body is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise MalformedEvent(f"the event's body must be a JSON object, got {type(body).__name__}")

    # The CloudEvents type names the event when the body does not.
    ce_type = header(headers, "ce_type")
    if "type" not in body and ce_type and ce_type.startswith("org.wayhome."):
        body["type"] = ce_type.removeprefix("org.wayhome.")
    return body


def check_not_future(instant: datetime, now: datetime, what: str) -> None:
    """Refuse a last-seen or sighting time later than ``now`` (beyond the tolerance)."""
    if instant > now + FUTURE_TOLERANCE:
        raise MalformedEvent(
            f"{what} must not be in the future, got {instant.isoformat()} "
            f"while it is {now.replace(microsecond=0).isoformat()}"
        )


def redacted_body(value: bytes | None) -> bytes | None:
    """What of a refused event's body may be parked: the fields that name the event, nothing else.

    A refused event may carry what must not travel (a name, an identity number, an exact
    position), and a dead-letter topic is a topic like any other; so only ``type``,
    ``case_id`` and ``subscriber_id`` are kept, and only when they are short, plain ids.
    None when the body is not a JSON object.
    """
    if value is None:
        return None
    try:
        body = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    kept: dict[str, Any] = {
        name: body[name]
        for name in _PARKABLE_FIELDS
        if isinstance(body.get(name), str) and _CASE_ID.match(body[name])
    }
    kept["redacted"] = True
    return json.dumps(kept, separators=(",", ":")).encode()


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the body"
    return f"{where}: {first['msg']}"


def decode_case_event(
    key: bytes | None, value: bytes | None, headers: Any
) -> CaseReported | SightingAdded | PerimeterSet | CaseResolved:
    """A case event read from ``cases``; MalformedEvent says what was wrong."""
    body = _body(value, headers)
    try:
        event = _CASE_EVENT.validate_python(body)
    except ValidationError as error:
        raise MalformedEvent(f"the case event is invalid at {_first_error(error)}") from None
    if key is not None and key.decode("utf-8", "replace") != event.case_id:
        raise MalformedEvent(
            f"the message key must be the case id {event.case_id!r}, "
            f"got {key.decode(errors='replace')!r}"
        )
    return event


def decode_subscriber_event(
    key: bytes | None, value: bytes | None, headers: Any
) -> SubscriberUpserted | SubscriberDeleted:
    """A subscriber event read from ``subscribers``; a null value is a deletion (tombstone)."""
    if value is None:
        if not key:
            raise MalformedEvent("a subscriber tombstone needs the subscriber id as its key")
        return SubscriberDeleted(subscriber_id=key.decode("utf-8", "replace"))
    body = _body(value, headers)
    try:
        if body.get("type") == "subscriber.deleted":
            return SubscriberDeleted.model_validate(body)
        if "type" not in body:
            body = {"type": "subscriber.upserted", "subscriber": body}
        return SubscriberUpserted.model_validate(body)
    except ValidationError as error:
        raise MalformedEvent(f"the subscriber event is invalid at {_first_error(error)}") from None
