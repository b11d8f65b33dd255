"""The search area of a case: where the child could be at a time, and what is new since a tick.

``SearchArea`` ties a last-seen point and time to a reach policy and a case category. It is
immutable: a newer sighting or a police perimeter gives a new ``SearchArea``.

- ``area(at)``: the union of the policy's discs at ``at``, with police perimeters added (or
  replacing it), clipped by the mask when one is set.
- ``ring(previous, at)``: ``area(at)`` minus ``area(previous)``, what a tick must notify.
  Without a new sighting the area never shrinks (see ``geo.policies``), so
  ``ring(t1, t2) ∪ area(t1) == area(t2)``.

Time is always passed in; nothing here reads a clock.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from geo.disc import disc
from geo.errors import InvalidGeometryError, InvalidPointError, InvalidPolicyError, InvalidTimeError
from geo.geometry import EMPTY, area_km2, geojson_to_geometry, geometry_to_geojson, polygonal
from geo.modes import Category
from geo.policies import MultimodalPolicy, Policy, Reach, ReachDisc, TiersPolicy

__all__ = ["Area", "LastSeen", "SearchArea"]

logger = logging.getLogger(__name__)

_CACHED_TICKS = 8


@dataclass(frozen=True)
class LastSeen:
    """Where and when the child was last seen (a report or a sighting). ``time`` is aware."""

    lat: float
    lon: float
    time: datetime

    def __post_init__(self) -> None:
        if not (
            isinstance(self.lat, int | float) and math.isfinite(self.lat) and -90 <= self.lat <= 90
        ):
            raise InvalidPointError(f"latitude must be within -90..90, got {self.lat}")
        if not (
            isinstance(self.lon, int | float)
            and math.isfinite(self.lon)
            and -180 <= self.lon <= 180
        ):
            raise InvalidPointError(f"longitude must be within -180..180, got {self.lon}")
        _require_aware("the last-seen time", self.time)


@dataclass(frozen=True)
class Area:
    """A polygonal lon/lat geometry with its geodesic area; an area or a ring of a tick."""

    geometry: Polygon | MultiPolygon
    area_km2: float
    kind: Literal["area", "ring"] = "area"
    at: datetime | None = None
    previous: datetime | None = None
    discs: tuple[ReachDisc, ...] = field(default=(), repr=False)

    @classmethod
    def of(cls, geometry: BaseGeometry, **details: Any) -> Area:
        """An ``Area`` of a geometry, its area measured geodesically."""
        shape = polygonal(geometry)
        return cls(geometry=shape, area_km2=area_km2(shape), **details)

    @property
    def is_empty(self) -> bool:
        """True when nothing is inside."""
        return self.geometry.is_empty

    def to_geojson(self) -> dict[str, Any]:
        """An RFC 7946 Feature: the geometry, with kind, area_km2 and the times as properties."""
        properties: dict[str, Any] = {"kind": self.kind, "area_km2": round(self.area_km2, 3)}
        if self.at is not None:
            properties["at"] = self.at.isoformat()
        if self.previous is not None:
            properties["previous"] = self.previous.isoformat()
        return {
            "type": "Feature",
            "geometry": geometry_to_geojson(self.geometry),
            "properties": properties,
        }


class SearchArea:
    """Where a missing child could be, from a last-seen point, as time passes."""

    def __init__(
        self,
        last_seen: LastSeen,
        policy: TiersPolicy | MultimodalPolicy | Policy | None = None,
        category: Category | str = Category.VEHICLE_ABDUCTION,
        *,
        perimeter: BaseGeometry | None = None,
        perimeter_replaces: bool = False,
        mask: BaseGeometry | Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(last_seen, LastSeen):
            raise InvalidPointError("last_seen must be a LastSeen(lat, lon, time)")
        self.last_seen = last_seen
        self.policy = policy if policy is not None else TiersPolicy()
        self.category = Category(category)
        self.perimeter = perimeter
        self.perimeter_replaces = perimeter_replaces
        self.mask = _polygon_input("mask", mask) if mask is not None else None
        self._reach: Reach = self.policy.prepare(
            last_seen.lat, last_seen.lon, last_seen.time, self.category
        )
        self._ticks: OrderedDict[float, Area] = OrderedDict()

    def area(self, at: datetime) -> Area:
        """Everywhere the child could be at ``at``, at the earliest."""
        elapsed_s = self._elapsed_s(at)
        cached = self._ticks.get(elapsed_s)
        if cached is not None:
            self._ticks.move_to_end(elapsed_s)
            return cached

        # Between a tier's steps, or once every radius has reached its cap, the discs repeat:
        # so does the geometry, which is then taken from the previous tick.
        discs = tuple(self._reach.discs(elapsed_s))
        known = next((a for a in reversed(self._ticks.values()) if a.discs == discs), None)
        if known is not None:
            result = Area(known.geometry, known.area_km2, kind="area", at=at, discs=discs)
        else:
            polygons = [disc(d.lat, d.lon, d.radius_m) for d in discs]
            result = Area.of(
                self._finish(shapely.union_all(polygons)), kind="area", at=at, discs=discs
            )
        self._ticks[elapsed_s] = result
        if len(self._ticks) > _CACHED_TICKS:
            self._ticks.popitem(last=False)
        logger.debug(
            "area computed elapsed_s=%.0f discs=%d km2=%.0f", elapsed_s, len(discs), result.area_km2
        )
        return result

    def ring(self, previous: datetime, at: datetime) -> Area:
        """What ``area(at)`` holds that ``area(previous)`` did not.

        A ``previous`` before the last-seen time (a tick of the case before a sighting restarted
        the model) counts as nothing seen before, so the ring is the whole area.
        """
        _require_aware("the previous tick's time", previous)
        current = self.area(at)
        if previous > at:
            raise InvalidTimeError(
                f"the previous tick ({previous.isoformat()}) must not be after the time of the "
                f"ring ({at.isoformat()})"
            )
        if previous < self.last_seen.time:
            return Area.of(current.geometry, kind="ring", at=at, previous=previous)

        # The earlier area lies inside the later one (see geo.policies), so the ring's area is
        # the difference of the two: no second geodesic measure of a ring full of holes.
        before = self.area(previous)
        geometry = polygonal(current.geometry.difference(before.geometry))
        ring_km2 = max(0.0, current.area_km2 - before.area_km2)
        return Area(geometry, ring_km2, kind="ring", at=at, previous=previous)

    def with_sighting(self, sighting: LastSeen) -> SearchArea:
        """The model restarted from a newer sighting; added perimeters and the mask stay.

        A replacing perimeter is dropped: it was drawn for the old position.
        """
        if not isinstance(sighting, LastSeen):
            raise InvalidPointError("a sighting must be a LastSeen(lat, lon, time)")
        if sighting.time < self.last_seen.time:
            raise InvalidTimeError(
                f"a sighting must not be older than the last-seen time "
                f"{self.last_seen.time.isoformat()}, got {sighting.time.isoformat()}"
            )
        keep = None if self.perimeter_replaces else self.perimeter
        return SearchArea(sighting, self.policy, self.category, perimeter=keep, mask=self.mask)

    def with_perimeter(
        self,
        perimeter: BaseGeometry | Mapping[str, Any],
        mode: Literal["add", "replace"] = "add",
    ) -> SearchArea:
        """The area with a police perimeter added to it, or replacing the computed area."""
        if mode not in ("add", "replace"):
            raise InvalidPolicyError(f"a perimeter's mode must be 'add' or 'replace', got {mode!r}")
        shape = _polygon_input("perimeter", perimeter)
        replaces = self.perimeter_replaces or mode == "replace"
        if mode == "add" and self.perimeter is not None:
            shape = polygonal(self.perimeter.union(shape))
        clone = SearchArea(
            self.last_seen,
            self.policy,
            self.category,
            perimeter=shape,
            perimeter_replaces=replaces,
            mask=self.mask,
        )
        clone._reach = self._reach
        return clone

    def with_mask(self, mask: BaseGeometry | Mapping[str, Any] | None) -> SearchArea:
        """The area clipped by a land or country polygon (``None`` removes the mask)."""
        clone = SearchArea(
            self.last_seen,
            self.policy,
            self.category,
            perimeter=self.perimeter,
            perimeter_replaces=self.perimeter_replaces,
            mask=mask,
        )
        clone._reach = self._reach
        return clone

    def _elapsed_s(self, at: datetime) -> float:
        _require_aware("the time of the area", at)
        if at < self.last_seen.time:
            raise InvalidTimeError(
                f"the time of the area ({at.isoformat()}) must not be before the last-seen time "
                f"({self.last_seen.time.isoformat()})"
            )
        return (at - self.last_seen.time).total_seconds()

    def _finish(self, computed: BaseGeometry) -> Polygon | MultiPolygon:
        geometry: BaseGeometry = computed
        if self.perimeter is not None:
            geometry = self.perimeter if self.perimeter_replaces else geometry.union(self.perimeter)
        if self.mask is not None:
            geometry = geometry.intersection(self.mask)
        return polygonal(geometry) if not geometry.is_empty else EMPTY


def _require_aware(what: str, value: datetime) -> None:
    if not isinstance(value, datetime):
        raise InvalidTimeError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTimeError(f"{what} must carry a UTC offset, got {value.isoformat()}")


def _polygon_input(what: str, value: BaseGeometry | Mapping[str, Any]) -> Polygon | MultiPolygon:
    if isinstance(value, Mapping):
        return geojson_to_geometry(value)
    if not isinstance(value, Polygon | MultiPolygon):
        raise InvalidGeometryError(
            f"a {what} must be a Polygon or MultiPolygon, got {type(value).__name__}"
        )
    if value.is_empty or not value.is_valid:
        reason = "it is empty" if value.is_empty else explain_validity(value)
        raise InvalidGeometryError(f"the {what} is not a valid polygon: {reason}")
    return value
