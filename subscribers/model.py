"""The subscriber model: who receives notices, where they are, and how to reach them.

A subscriber is one of three kinds:

- ``device``: a point that moves (``lon``/``lat`` in WGS84 degrees and ``fix_time``, the time
  of its last position fix);
- ``area``: a watched area, a GeoJSON Polygon or MultiPolygon that must be valid (a boundary
  that crosses itself is refused) and whose every polygon spans less than 180 degrees of
  longitude (an area across the antimeridian is a MultiPolygon split there);
- ``platform``: a partner platform that receives every notice of a region (``area``) or, with
  no area, of the whole country.

Each subscriber names its delivery ``channel`` (a webhook URL, server-sent events, or a Kafka
topic) and the ``language`` its notices are written in. ``id`` is chosen by the caller;
``key`` is the int64 the registry assigns and the spatial index works with.

Exact positions are personal data: they are never logged, and the ``repr`` of a subscriber
hides them.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any, Literal

import httpx
import shapely
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from subscribers.errors import InvalidSubscriber, invalidity_reason

__all__ = [
    "Channel",
    "ChannelKind",
    "Subscriber",
    "SubscriberKind",
    "area_to_geometry",
    "subscriber_from_dict",
    "validation_error_to_sentence",
]

SubscriberKind = Literal["device", "area", "platform"]
ChannelKind = Literal["webhook", "sse", "kafka"]

_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_KAFKA_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_MAX_ID_CHARS = 200
_CHANNEL_WITH_ARTICLE = {"webhook": "a webhook", "sse": "an sse", "kafka": "a kafka"}


class Channel(BaseModel):
    """Where and how a subscriber's notices are delivered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ChannelKind
    url: str | None = None
    topic: str | None = None

    @model_validator(mode="after")
    def _check_target(self) -> Channel:
        # Each kind has one target: a url for a webhook, a topic for kafka, none for sse.
        named = _CHANNEL_WITH_ARTICLE[self.kind]
        if self.url is not None and self.kind != "webhook":
            raise ValueError(f"{named} channel takes no url, only a webhook does")
        if self.topic is not None and self.kind != "kafka":
            raise ValueError(f"{named} channel takes no topic, only a kafka one does")
        if self.kind == "webhook":
            _check_webhook_url(self.url)
        if self.kind == "kafka" and (self.topic is None or not _KAFKA_TOPIC.match(self.topic)):
            raise ValueError(
                "a kafka channel needs a topic of 1 to 249 letters, digits, '.', '_' or '-', "
                f"got {self.topic!r}"
            )
        return self


def _check_webhook_url(url: str | None) -> None:
    if not url:
        raise ValueError("a webhook channel needs a url, such as https://example.org/hook")

    # Whitespace and control characters first: some parsers drop them silently, and a line
    # break in a url sent on could start a header of its own.
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in url):
        raise ValueError(
            f"a webhook url must hold no whitespace or control characters, got {url!r}"
        )
    try:
        parsed = httpx.URL(url)
        scheme, host, port = parsed.scheme, parsed.host, parsed.port
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise ValueError(f"a webhook url must be a well-formed url, got {url!r} ({exc})") from None
    if scheme not in ("http", "https") or not host:
        raise ValueError(f"a webhook url must be an http or https url with a host, got {url!r}")
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"a webhook url's port must be within 1..65535, got {port}")


class Subscriber(BaseModel):
    """A device, a watched area or a platform that receives notices."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    id: str = Field(min_length=1, max_length=_MAX_ID_CHARS)
    key: int | None = None
    kind: SubscriberKind
    lon: float | None = None
    lat: float | None = None
    fix_time: datetime | None = None
    area: dict[str, Any] | None = None
    channel: Channel
    language: str = "en"
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if value != value.strip() or any(ord(c) < 32 for c in value):
            raise ValueError(
                "a subscriber id must not start or end with spaces or hold control characters"
            )
        return value

    @field_validator("key")
    @classmethod
    def _check_key(cls, value: int | None) -> int | None:
        if value is not None and not 0 <= value < 2**63:
            raise ValueError(f"a subscriber key must be within 0..2**63-1, got {value}")
        return value

    @field_validator("lon", "lat", mode="before")
    @classmethod
    def _refuse_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        # Python counts True as 1: a flag sent by mistake must not become a place.
        if isinstance(value, bool):
            raise ValueError(f"{info.field_name} must be a number of degrees, got {value}")
        return value

    @field_validator("lat")
    @classmethod
    def _check_lat(cls, value: float | None) -> float | None:
        if value is not None and not -90.0 <= value <= 90.0:
            raise ValueError(f"latitude must be within -90..90, got {value}")
        return value

    @field_validator("lon")
    @classmethod
    def _check_lon(cls, value: float | None) -> float | None:
        if value is not None and not -180.0 <= value <= 180.0:
            raise ValueError(f"longitude must be within -180..180, got {value}")
        return value

    @field_validator("language")
    @classmethod
    def _check_language(cls, value: str) -> str:
        if not _LANGUAGE_TAG.match(value):
            raise ValueError(
                f"language must be a language tag such as 'en' or 'zh-CN', got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _check_kind(self) -> Subscriber:
        if self.kind == "device":
            if self.lon is None or self.lat is None:
                raise ValueError("a device needs both lon and lat")
            if self.area is not None:
                raise ValueError("a device has a position, not an area; leave area empty")
        else:
            if self.lon is not None or self.lat is not None or self.fix_time is not None:
                raise ValueError(
                    f"a {self.kind} has no position; leave lon, lat and fix_time empty"
                )
            if self.kind == "area" and self.area is None:
                raise ValueError("a watched area needs an area: a GeoJSON Polygon or MultiPolygon")
            if self.area is not None:
                area_to_geometry(self.area)
        for name in ("fix_time", "created_at", "updated_at"):
            moment = getattr(self, name)
            if moment is not None and moment.utcoffset() is None:
                raise ValueError(f"{name} must carry a time zone offset, got {moment.isoformat()}")
        return self

    def __repr_args__(self) -> Any:
        # Positions and areas are personal data: keep them out of reprs, and so out of logs.
        hidden = {"lon", "lat", "area"}
        return [(k, v) for k, v in super().__repr_args__() if k not in hidden]

    def geometry(self) -> BaseGeometry | None:
        """The subscriber's place as a shapely geometry (lon/lat), or None for a whole country."""
        if self.kind == "device":
            return shapely.Point(self.lon, self.lat)
        return None if self.area is None else area_to_geometry(self.area)


def area_to_geometry(area: dict[str, Any]) -> BaseGeometry:
    """Turn a GeoJSON Polygon or MultiPolygon into a valid shapely geometry, or say why not.

    Raises ``ValueError`` (inside model validation) with a sentence; the coordinates of a
    self-intersection are left out of the message, since a watched area may be someone's home.
    """
    kind = area.get("type") if isinstance(area, dict) else None
    if kind not in ("Polygon", "MultiPolygon"):
        raise ValueError(f"an area must be a GeoJSON Polygon or MultiPolygon, got type {kind!r}")
    try:
        geometry = shape(area)
    except (KeyError, TypeError, ValueError, IndexError, shapely.errors.GEOSException) as exc:
        raise ValueError(f"an area's coordinates cannot be read as a {kind}: {exc}") from None
    if geometry.is_empty:
        raise ValueError(f"an area must not be empty, got an empty {kind}")
    minx, miny, maxx, maxy = geometry.bounds
    if minx < -180.0 or maxx > 180.0 or miny < -90.0 or maxy > 90.0:
        raise ValueError("an area's coordinates must lie within lon -180..180 and lat -90..90")
    # A store keeps areas as geography, where an edge is the shorter great-circle arc: a
    # polygon 180 degrees of longitude wide or more would be read as the band on the far side.
    widest = max(part.bounds[2] - part.bounds[0] for part in shapely.get_parts(geometry))
    if widest >= 180.0:
        raise ValueError(
            "each polygon of an area must span less than 180 degrees of longitude, "
            f"got one spanning {widest:g}; split it, at the antimeridian if it crosses it"
        )
    if not geometry.is_valid:
        reason = invalidity_reason(geometry)
        if reason.lower().startswith("self-intersection") or "intersect" in reason.lower():
            raise ValueError(
                "the area's boundary crosses itself; draw it so that no edge crosses another"
            )
        raise ValueError(f"the area is not a valid {kind} ({reason}); fix its rings and retry")
    return geometry


def validation_error_to_sentence(exc: ValidationError) -> str:
    """One sentence (or a few joined by '; ') from a pydantic validation error."""
    parts = []
    for error in exc.errors():
        message = str(error.get("msg", "invalid value"))
        message = message.removeprefix("Value error, ")
        where = ".".join(str(p) for p in error.get("loc", ()))
        if error.get("type") == "missing":
            message = f"{where} is required"
        elif error.get("type") == "extra_forbidden":
            message = f"{where} is not a subscriber field"
        elif where and error.get("type") != "value_error":
            message = f"{where}: {message}"
        parts.append(message)
    return "; ".join(parts)


def subscriber_from_dict(data: dict[str, Any]) -> Subscriber:
    """Validate a mapping into a Subscriber, raising ``InvalidSubscriber`` with a sentence."""
    try:
        return Subscriber.model_validate(data)
    except ValidationError as exc:
        raise InvalidSubscriber(validation_error_to_sentence(exc)) from None
