"""Where could the child be now: geodesic discs, the reach model, search areas and rings.

A library: it knows nothing of Kafka or HTTP, and never reads a clock (times are passed in).

::

    from geo import LastSeen, SearchArea, MultimodalPolicy, Category, load_rail_sample
    model = SearchArea(LastSeen(lat=34.76, lon=113.78, time=seen_at),
                       policy=MultimodalPolicy(rail=load_rail_sample()),
                       category=Category("vehicle_abduction"))
    model.area(now).to_geojson()      # the area, as an RFC 7946 Feature
    model.ring(last_tick, now)        # what is new since the previous tick
"""

from geo.area import Area, LastSeen, SearchArea
from geo.disc import MAX_OVERSHOOT_M, disc, distance_m
from geo.errors import (
    GeoError,
    InvalidGeometryError,
    InvalidPointError,
    InvalidPolicyError,
    InvalidTimeError,
    PoleError,
    RailNetworkError,
)
from geo.geometry import area_km2, geojson_to_geometry, geometry_to_geojson
from geo.modes import Category
from geo.policies import DEFAULT_TIERS, MultimodalPolicy, ReachDisc, TiersPolicy
from geo.rail import (
    Line,
    RailNetwork,
    Station,
    Trip,
    load_gtfs,
    load_rail_geojson,
    load_rail_network,
    load_rail_sample,
)

__all__ = [
    "DEFAULT_TIERS",
    "MAX_OVERSHOOT_M",
    "Area",
    "Category",
    "GeoError",
    "InvalidGeometryError",
    "InvalidPointError",
    "InvalidPolicyError",
    "InvalidTimeError",
    "LastSeen",
    "Line",
    "MultimodalPolicy",
    "PoleError",
    "RailNetwork",
    "RailNetworkError",
    "ReachDisc",
    "SearchArea",
    "Station",
    "TiersPolicy",
    "Trip",
    "area_km2",
    "disc",
    "distance_m",
    "geojson_to_geometry",
    "geometry_to_geojson",
    "load_gtfs",
    "load_rail_geojson",
    "load_rail_network",
    "load_rail_sample",
]
