"""The notice carried on the ``notices`` topic: one batch per Kafka message.

A tick of a case reaches thousands of subscribers at once, and every one of them is told the
same thing: the case's public description, the search area, the kind of message. So a Kafka
message on ``notices`` is a :class:`NoticeBatch`: a header shared by every recipient, followed by
the list of :class:`Recipient` it goes to. Delivery workers expand a batch into one delivery per
recipient. The alternative, one Kafka message per (notice, subscriber), would repeat the area
geometry and the case's texts a million times for a large tick; batching keeps Kafka at
thousands of messages per second while the recipients run into the millions.

Identifiers
-----------
- ``notice_id`` (``urn:wayhome:notice:{case_id}:{tick}:{msg_type}``, lower-case type) names one
  notice of one case, shared by every recipient of it and by every batch that carries a part of
  its recipients. It is the CAP ``identifier``; Updates and Cancels refer to earlier notices by it.
- ``delivery_id`` names one (notice, subscriber) pair: ``ntc_`` followed by the first 32 hex
  digits of SHA-256 over ``notice_id``, a newline and the subscriber id. It is stable (the same
  pair always gives the same id, however often the batch is produced or consumed), says nothing
  about the subscriber to whoever reads it in a log, and is what delivery dedupes on: the
  dedupe store's key, the webhook's ``webhook-id`` header, the SSE event ``id:``, the ``ce_id``
  header of a platform's Kafka message, and the ``id`` of every JSON notice.

Only a case's PUBLIC fields have a place here (:class:`PublicCase`); every model forbids extra
fields, so a private field of a case (a name, an identity number, a guardian's phone) is
rejected at construction instead of travelling on a topic.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from shapely.geometry import shape

__all__ = [
    "ChannelKind",
    "MsgType",
    "CaseText",
    "Circle",
    "NoticeReference",
    "PublicCase",
    "Recipient",
    "NoticeBatch",
    "notice_identifier",
    "delivery_identifier",
    "DEFAULT_SENDER",
]

MsgType = Literal["Alert", "Update", "Cancel"]
ChannelKind = Literal["webhook", "sse", "kafka"]

DEFAULT_SENDER = "wayhome"
"""CAP ``sender`` when the operator configures none."""

# CAP 1.2 forbids spaces, commas and the XML-restricted characters < and & in identifiers and
# senders, because ``references`` joins them with commas and spaces.
_CAP_TOKEN = re.compile(r"^[^\s,<&]+$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_cap_token(value: str, what: str) -> str:
    if not _CAP_TOKEN.match(value):
        raise ValueError(
            f"{what} must be non-empty and hold no space, comma, '<' or '&' (CAP 1.2), "
            f"got {value!r}"
        )
    return value


def notice_identifier(case_id: str, tick: int, msg_type: MsgType) -> str:
    """The identifier of one notice of a case: shared by all its recipients, its CAP identifier."""
    return f"urn:wayhome:notice:{case_id}:{tick}:{msg_type.lower()}"


def delivery_identifier(notice_id: str, subscriber_id: str) -> str:
    """The stable id of one (notice, subscriber) delivery; opaque, safe to log."""
    digest = hashlib.sha256(f"{notice_id}\n{subscriber_id}".encode()).hexdigest()
    return f"ntc_{digest[:32]}"


class CaseText(_Frozen):
    """The public words of a case in one language."""

    language: str = Field(min_length=2, max_length=35, description="RFC 3066 tag: en, zh, zh-CN.")
    headline: str = Field(min_length=1, max_length=160)
    description: str = Field(min_length=1, max_length=4000)
    instruction: str | None = Field(default=None, max_length=2000)


class Circle(_Frozen):
    """A circle in the area of a notice, CAP's ``circle``: a centre and a radius."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_km: float = Field(gt=0, le=20_000)


class NoticeReference(_Frozen):
    """An earlier notice that an Update or a Cancel refers to (CAP ``references``)."""

    sender: str = DEFAULT_SENDER
    identifier: str
    sent: AwareDatetime

    @field_validator("sender", "identifier")
    @classmethod
    def _cap_token(cls, value: str) -> str:
        return _check_cap_token(value, "a reference's sender and identifier")


class PublicCase(_Frozen):
    """The public description of a case: all that a notice may say about it.

    ``texts`` holds the case's words in each language it gives, the first being the default for
    subscribers whose language the case does not give.
    """

    case_id: str = Field(min_length=1, max_length=128)
    category: str = Field(min_length=1, max_length=64, description="geo's category value.")
    event: str = Field(default="Missing child", min_length=1, max_length=120)
    texts: tuple[CaseText, ...] = Field(min_length=1)
    urgency: Literal["Immediate", "Expected", "Future", "Past", "Unknown"] = "Immediate"
    severity: Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"] = "Severe"
    certainty: Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"] = "Likely"
    last_seen_at: AwareDatetime | None = None
    expires: AwareDatetime | None = None
    contact: str | None = Field(default=None, max_length=200)
    web: str | None = Field(default=None, max_length=2000, description="Public page of the case.")

    @field_validator("case_id")
    @classmethod
    def _cap_token(cls, value: str) -> str:
        return _check_cap_token(value, "case_id")

    @field_validator("texts")
    @classmethod
    def _one_text_per_language(cls, texts: tuple[CaseText, ...]) -> tuple[CaseText, ...]:
        seen = [text.language.lower() for text in texts]
        if len(set(seen)) != len(seen):
            raise ValueError(f"texts must give each language once, got {seen}")
        return texts

    def text_for(self, language: str | None) -> CaseText:
        """The case's words in ``language``; its primary language (``zh`` for ``zh-CN``) next;
        the first text when the case gives neither."""
        if language:
            wanted = language.lower()
            by_language = {text.language.lower(): text for text in self.texts}
            if wanted in by_language:
                return by_language[wanted]
            primary = wanted.split("-")[0]
            for text in self.texts:
                if text.language.lower().split("-")[0] == primary:
                    return text
        return self.texts[0]


class Recipient(_Frozen):
    """One subscriber a batch goes to, and how to reach it.

    ``target`` is the webhook URL for ``webhook``, the Kafka topic for ``kafka`` and ``None``
    for ``sse`` (the app is connected to ``GET /v1/subscribers/{id}/notices``). ``references``,
    when given, overrides the batch's references for this subscriber (the Alert this one was
    actually sent, when recipients were alerted at different ticks).
    """

    subscriber_id: str = Field(min_length=1, max_length=256)
    channel: ChannelKind
    target: str | None = Field(default=None, max_length=2000)
    language: str = Field(default="en", min_length=2, max_length=35)
    references: tuple[NoticeReference, ...] | None = None

    @model_validator(mode="after")
    def _target_fits_channel(self) -> Recipient:
        if self.channel == "webhook" and not (
            self.target and self.target.startswith(("http://", "https://"))
        ):
            raise ValueError(
                f"a webhook recipient needs an http(s) URL as target, got {self.target!r}"
            )
        if self.channel == "kafka" and not self.target:
            raise ValueError("a kafka recipient needs a topic name as target, got none")
        return self

    @classmethod
    def from_subscriber(cls, subscriber: Any, **overrides: Any) -> Recipient:
        """A recipient from a ``subscribers.Subscriber`` (its id, channel and language)."""
        channel = subscriber.channel
        target = channel.url if channel.kind == "webhook" else getattr(channel, "topic", None)
        fields: dict[str, Any] = {
            "subscriber_id": subscriber.id,
            "channel": channel.kind,
            "target": target if channel.kind != "sse" else None,
            "language": getattr(subscriber, "language", None) or "en",
        }
        fields.update(overrides)
        return cls(**fields)


class NoticeBatch(_Frozen):
    """One Kafka message on ``notices``: a notice and the recipients it goes to.

    Key it by ``case_id`` (every batch of a case then stays in order on one partition). A tick
    with many recipients is split by :meth:`split` into batches of ``part`` 0, 1, ... that share
    ``notice_id``; delivery does not care which batch carried a recipient.
    """

    case_id: str = Field(min_length=1, max_length=128)
    tick: int = Field(ge=0, description="Dispatch tick of the case that produced the notice.")
    msg_type: MsgType
    sent: AwareDatetime = Field(description="When the notice was issued, with its UTC offset.")
    sender: str = DEFAULT_SENDER
    part: int = Field(default=0, ge=0, description="Index of this batch among the notice's.")
    references: tuple[NoticeReference, ...] = ()
    case: PublicCase
    area: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon, lon/lat, WGS84.")
    circles: tuple[Circle, ...] = ()
    recipients: tuple[Recipient, ...] = ()

    @field_validator("sender")
    @classmethod
    def _cap_token(cls, value: str) -> str:
        return _check_cap_token(value, "sender")

    @field_validator("area")
    @classmethod
    def _area_is_polygonal(cls, area: dict[str, Any]) -> dict[str, Any]:
        geometry = area.get("geometry", area) if area.get("type") == "Feature" else area
        if not isinstance(geometry, dict) or geometry.get("type") not in (
            "Polygon",
            "MultiPolygon",
        ):
            kind = geometry.get("type") if isinstance(geometry, dict) else type(geometry).__name__
            raise ValueError(f"area must be a GeoJSON Polygon or MultiPolygon, got {kind}")

        try:
            polygons = shape(geometry)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            raise ValueError(
                f"area's coordinates are not a valid {geometry['type']}: {exc}"
            ) from None
        if polygons.is_empty:
            raise ValueError("area must not be empty")
        west, south, east, north = polygons.bounds
        if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
            raise ValueError(
                "area coordinates must be lon within -180..180 and lat within -90..90, got "
                f"bounds ({west}, {south}, {east}, {north})"
            )
        return geometry

    @model_validator(mode="after")
    def _consistent(self) -> NoticeBatch:
        if self.case.case_id != self.case_id:
            raise ValueError(
                f"case.case_id must equal case_id, got {self.case.case_id!r} and {self.case_id!r}"
            )
        if self.msg_type == "Alert" and self.references:
            raise ValueError("an Alert refers to no earlier notice; references must be empty")
        return self

    @property
    def notice_id(self) -> str:
        """The notice's identifier, shared by every recipient; its CAP ``identifier``."""
        return notice_identifier(self.case_id, self.tick, self.msg_type)

    @property
    def batch_id(self) -> str:
        """The id of this Kafka message: the notice and the part."""
        return f"{self.notice_id}/{self.part}"

    def delivery_id(self, recipient: Recipient) -> str:
        """The stable delivery id of this notice to ``recipient``."""
        return delivery_identifier(self.notice_id, recipient.subscriber_id)

    def references_for(self, recipient: Recipient) -> tuple[NoticeReference, ...]:
        """The earlier notices this one refers to, as ``recipient`` should see them."""
        if self.msg_type == "Alert":
            return ()
        return recipient.references if recipient.references is not None else self.references

    def as_reference(self) -> NoticeReference:
        """A reference to this notice, for a later Update or Cancel."""
        return NoticeReference(sender=self.sender, identifier=self.notice_id, sent=self.sent)

    def split(self, max_recipients: int) -> Iterator[NoticeBatch]:
        """This batch cut into batches of at most ``max_recipients`` recipients, parts 0, 1, ..."""
        if max_recipients < 1:
            raise ValueError(f"max_recipients must be at least 1, got {max_recipients}")
        for part, start in enumerate(range(0, max(len(self.recipients), 1), max_recipients)):
            chunk = self.recipients[start : start + max_recipients]
            yield self.model_copy(update={"part": part, "recipients": chunk})

    def to_bytes(self) -> bytes:
        """The batch as the JSON value of its Kafka message."""
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> NoticeBatch:
        """A batch read back from a Kafka message value (raises pydantic's ValidationError)."""
        return cls.model_validate_json(value)


def sent_to_json(sent: datetime) -> str:
    """A time as RFC 3339 with its offset and whole seconds, as JSON notices carry it."""
    return sent.replace(microsecond=0).isoformat()
