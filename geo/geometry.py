"""GeoJSON in and out (RFC 7946) and geodesic areas of longitude/latitude geometry.

RFC 7946 asks for longitude before latitude, exterior rings counter-clockwise and holes
clockwise (section 3.1.6), and geometry that crosses the antimeridian cut into pieces that each
stay within -180..180 (section 3.1.9). Geometry built by ``geo`` already keeps to the last rule;
``geometry_to_geojson`` enforces the winding. Coordinates are written at full precision: rounding
to six decimals (about 10 cm) could move an edge inside the disc it must cover.

Areas are geodesic (``pyproj.Geod.geometry_area_perimeter`` on WGS84), in km².
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from geo.disc import WGS84
from geo.errors import InvalidGeometryError

__all__ = [
    "EMPTY",
    "area_km2",
    "geojson_to_geometry",
    "geometry_to_geojson",
    "polygonal",
]

EMPTY = MultiPolygon()

_POLYGONAL = ("Polygon", "MultiPolygon")


def geojson_to_geometry(obj: Mapping[str, Any]) -> Polygon | MultiPolygon:
    """A validated polygonal shapely geometry from a GeoJSON geometry, Feature or collection.

    Raises ``InvalidGeometryError`` with a sentence when the object is not GeoJSON, is not a
    (Multi)Polygon, has coordinates outside -180..180 / -90..90, or is not a valid polygon
    (self-intersecting, unclosed, too few points).
    """
    if not isinstance(obj, Mapping) or "type" not in obj:
        raise InvalidGeometryError("a GeoJSON object must be a mapping with a 'type' member")

    kind = obj["type"]
    if kind == "FeatureCollection":
        features = obj.get("features")
        if not isinstance(features, list) or not features:
            raise InvalidGeometryError("a FeatureCollection must hold at least one feature")
        parts = [geojson_to_geometry(feature) for feature in features]
        return polygonal(shapely.union_all(parts))
    if kind == "Feature":
        geometry = obj.get("geometry")
        if not isinstance(geometry, Mapping):
            raise InvalidGeometryError("a GeoJSON Feature must carry a geometry object")
        return geojson_to_geometry(geometry)
    if kind not in _POLYGONAL:
        raise InvalidGeometryError(f"a perimeter must be a Polygon or MultiPolygon, got {kind}")

    _refuse_unclosed_rings(kind, obj.get("coordinates"))
    try:
        geometry = shape(obj)
    except Exception as exc:  # shapely raises several types for malformed coordinates
        raise InvalidGeometryError(f"the {kind} has malformed coordinates: {exc}") from None
    if geometry.is_empty:
        raise InvalidGeometryError(f"the {kind} is empty; give at least one ring of 4 positions")

    coordinates = shapely.get_coordinates(geometry)
    if not np.isfinite(coordinates).all():
        raise InvalidGeometryError(f"the {kind} has a coordinate that is not a finite number")
    lon, lat = coordinates[:, 0], coordinates[:, 1]
    if (np.abs(lon) > 180.0).any() or (np.abs(lat) > 90.0).any():
        raise InvalidGeometryError(
            f"the {kind} has a position outside longitude -180..180 / latitude -90..90 "
            "(GeoJSON puts longitude first)"
        )
    if not geometry.is_valid:
        raise InvalidGeometryError(
            f"the {kind} is not a valid polygon: {explain_validity(geometry)}"
        )

    return polygonal(geometry)


def geometry_to_geojson(geometry: BaseGeometry) -> dict[str, Any]:
    """The RFC 7946 geometry object of a polygonal geometry; empty gives an empty MultiPolygon."""
    geometry = polygonal(geometry)
    if geometry.is_empty:
        return {"type": "MultiPolygon", "coordinates": []}

    oriented = shapely.orient_polygons(geometry, exterior_cw=False)
    return _lists(mapping(oriented))


def area_km2(geometry: BaseGeometry) -> float:
    """Geodesic area on WGS84 of a polygonal lon/lat geometry, in km².

    Each ring goes to ``Geod.polygon_area_perimeter`` as arrays; ``geometry_area_perimeter``
    would do the same but copies coordinates one by one, which dominated a tick's time.
    """
    geometry = polygonal(geometry)
    total_m2 = 0.0
    for polygon in shapely.get_parts(geometry):
        exterior = shapely.get_coordinates(polygon.exterior)
        total_m2 += abs(WGS84.polygon_area_perimeter(exterior[:, 0], exterior[:, 1])[0])
        for hole in polygon.interiors:
            inner = shapely.get_coordinates(hole)
            total_m2 -= abs(WGS84.polygon_area_perimeter(inner[:, 0], inner[:, 1])[0])
    return max(0.0, float(total_m2)) / 1e6


def polygonal(geometry: BaseGeometry) -> Polygon | MultiPolygon:
    """Only the polygons of a geometry: overlays can leave slivers of lines and points."""
    if isinstance(geometry, Polygon | MultiPolygon):
        return geometry

    parts: list[Polygon] = []
    for part in shapely.get_parts(geometry):
        if isinstance(part, Polygon) and not part.is_empty:
            parts.append(part)
        elif isinstance(part, MultiPolygon | shapely.GeometryCollection):
            parts.extend(shapely.get_parts(polygonal(part)))
    if not parts:
        return EMPTY
    return parts[0] if len(parts) == 1 else MultiPolygon(parts)


def _refuse_unclosed_rings(kind: str, coordinates: Any) -> None:
    # shapely closes an open ring without a word; RFC 7946 (3.1.6) requires the first and last
    # positions of every ring to be the same. Malformed nesting is left to shapely to refuse.
    polygons = coordinates if kind == "MultiPolygon" else [coordinates]
    if not isinstance(polygons, list):
        return
    for polygon in polygons:
        for ring in polygon if isinstance(polygon, list) else []:
            if isinstance(ring, list) and len(ring) >= 3 and ring[0] != ring[-1]:
                raise InvalidGeometryError(
                    f"every ring of the {kind} must end at the position it starts from "
                    f"(RFC 7946), got a ring from {ring[0]} to {ring[-1]}"
                )


def _lists(value: Any) -> Any:
    # shapely's mapping() gives nested tuples; JSON wants arrays, and plain floats.
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_lists(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidGeometryError("a geometry to encode has a coordinate that is not finite")
    return value
