"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from dispatch.events import CASE_ID_PATTERN, LastSeen
from dispatch.notices.model import CaseText

PrivateValue = str | int | float | bool | None


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseFiling(_Request):
    """``POST /v1/cases``: a new case, filed by the police."""

    case_id: str | None = Field(
        default=None, pattern=CASE_ID_PATTERN, description="Unset: wayhome picks one."
    )
    category: str = Field(description="geo's category, such as lost_child or vehicle_abduction.")
    last_seen: LastSeen
    texts: list[CaseText] = Field(min_length=1, description="Public words, one per language.")
    policy: Literal["tiers", "multimodal"] = "tiers"
    perimeter: dict[str, Any] | None = Field(default=None, description="GeoJSON polygon.")
    contact: str | None = Field(default=None, max_length=200)
    web: str | None = Field(default=None, max_length=2000)
    private: dict[str, PrivateValue] | None = Field(
        default=None,
        description=(
            "Private fields (name, identity numbers...): encrypted at rest with a key of the "
            "case, never put on a topic, a notice, a log line or the log."
        ),
    )


class Sighting(_Request):
    """``POST /v1/cases/{id}/sightings``: the child was seen again."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    time: AwareDatetime
    note: str | None = Field(default=None, max_length=2000)


class Perimeter(_Request):
    """``PUT /v1/cases/{id}/perimeter``: a police perimeter."""

    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon, lon/lat.")
    mode: Literal["add", "replace"] = "add"


class Resolution(_Request):
    """``POST /v1/cases/{id}/resolution``: the case is closed."""

    outcome: Literal["found", "cancelled", "false_report"]


class Accepted(BaseModel):
    """What a change to a case returns: it is on its way to the dispatcher."""

    case_id: str
    event_id: str
    status: str
    links: dict[str, str] = {}


class CaseSummary(BaseModel):
    """``GET /v1/cases/{id}``: the public state of a case."""

    case_id: str
    status: str
    outcome: str | None = None
    category: str
    last_seen: LastSeen
    reported_at: AwareDatetime
    tick: int
    last_tick_at: AwareDatetime | None = None
    next_tick_at: AwareDatetime | None = None
    alerted: int
    #: Why the case stopped ticking, when its status is ``failed``.
    failure: str | None = None
    private_commitment: str | None = None
    #: ``sealed`` while the vault can open the case's private fields, ``shredded`` once their
    #: key was destroyed (retention or police); None when the case was filed without any.
    private: Literal["sealed", "shredded"] | None = None
    private_shredded_at: AwareDatetime | None = None
    links: dict[str, str] = {}
