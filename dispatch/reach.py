"""The search area of a case, as the dispatcher asks for it: ``geo``'s reach model behind one seam.

The dispatcher needs three things of geo: the area at an instant, the model restarted at a
sighting, and a police perimeter added or put in place. :class:`CaseArea` holds a case's
public inputs (last-seen point, category, policy, perimeters) and rebuilds ``geo.SearchArea``
from them, so the dispatcher's persisted state stays plain data (no pickled geometry models) and
a worker that takes over a case rebuilds the same area from the same inputs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from dispatch.errors import InvalidInput
from dispatch.events import LastSeen


@dataclass(frozen=True)
class CaseArea:
    """The inputs of a case's search area, and the area they give at any instant."""

    last_seen: LastSeen
    category: str
    policy: str = "tiers"
    perimeters: tuple[tuple[str, dict[str, Any]], ...] = field(default=())

    @cached_property
    def model(self) -> Any:
        import geo

        last = geo.LastSeen(
            lat=self.last_seen.lat, lon=self.last_seen.lon, time=self.last_seen.time
        )
        policy = (
            geo.MultimodalPolicy(rail=geo.load_rail_sample())
            if self.policy == "multimodal"
            else geo.TiersPolicy()
        )
        model = geo.SearchArea(last_seen=last, policy=policy, category=geo.Category(self.category))
        for mode, perimeter in self.perimeters:
            model = model.with_perimeter(perimeter, mode=mode)  # type: ignore[arg-type]
        return model

    def area(self, at: datetime) -> BaseGeometry:
        """The search area at ``at``: a shapely geometry in lon/lat."""
        return self.model.area(at).geometry

    def with_sighting(self, sighting: LastSeen) -> CaseArea:
        """The area restarted from a sighting (perimeters drawn so far still apply)."""
        return CaseArea(sighting, self.category, self.policy, self.perimeters)

    def with_perimeter(self, perimeter: dict[str, Any], mode: str) -> CaseArea:
        """The area with a police perimeter added to it, or replacing it."""
        perimeters = (
            ((mode, perimeter),) if mode == "replace" else (*self.perimeters, (mode, perimeter))
        )
        return CaseArea(self.last_seen, self.category, self.policy, perimeters)


def check_category(category: str) -> None:
    """Refuse a category geo does not know, with a sentence."""
    import geo

    try:
        geo.Category(category)
    except ValueError as error:
        raise InvalidInput(f"category {category!r} is not one wayhome knows: {error}") from None


def check_perimeter(perimeter: dict[str, Any]) -> BaseGeometry:
    """A police perimeter as a geometry; InvalidInput with geo's sentence when it is malformed."""
    import geo

    try:
        return geo.geojson_to_geometry(perimeter)
    except geo.GeoError as error:
        raise InvalidInput(f"the perimeter is not a valid polygon: {error}") from None


def area_to_geojson(area: BaseGeometry) -> dict[str, Any]:
    """The area as a GeoJSON geometry dict."""
    return dict(mapping(area))


def area_digest(area: BaseGeometry) -> str:
    """SHA-256 of the area's WKB, hex: names the exact area a dispatch used, for the log."""
    return hashlib.sha256(area.wkb).hexdigest()


def geojson_feature(area: BaseGeometry, properties: dict[str, Any]) -> dict[str, Any]:
    """The area as a GeoJSON Feature."""
    return {
        "type": "Feature",
        "geometry": json.loads(json.dumps(mapping(area))),
        "properties": properties,
    }
