"""Hypothesis strategies and point clouds shared by the subscribers tests."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import strategies as st
from shapely.geometry.base import BaseGeometry

# Test areas live around (113.6, 34.7), where the clouds below are dense.
CENTRE_LON, CENTRE_LAT = 113.6, 34.7


def star(lon: float, lat: float, radii_deg: list[float], turn: float = 0.0) -> shapely.Polygon:
    """A star-shaped polygon around (lon, lat): always simple, so always valid."""
    angles = turn + np.linspace(0.0, 2.0 * np.pi, len(radii_deg), endpoint=False)
    radii = np.asarray(radii_deg)
    ring = np.c_[lon + radii * np.cos(angles), lat + radii * np.sin(angles)]
    return shapely.Polygon(ring)


@st.composite
def stars(draw: st.DrawFn, *, near_lon: float = CENTRE_LON, near_lat: float = CENTRE_LAT):
    lon = draw(st.floats(near_lon - 1.0, near_lon + 1.0))
    lat = draw(st.floats(near_lat - 1.0, near_lat + 1.0))
    scale = draw(st.sampled_from([0.002, 0.02, 0.2, 1.0, 3.0]))
    radii = draw(st.lists(st.floats(0.3, 1.0), min_size=3, max_size=40))
    turn = draw(st.floats(0.0, 6.28))
    return star(lon, lat, [r * scale for r in radii], turn)


@st.composite
def multipolygons(draw: st.DrawFn) -> BaseGeometry:
    parts = draw(st.lists(stars(), min_size=2, max_size=4))
    return shapely.unary_union(parts)


@st.composite
def rings(draw: st.DrawFn) -> tuple[BaseGeometry, BaseGeometry]:
    """(area now, area before): the later area holds most of the earlier one."""
    before = draw(stars())
    grow = draw(st.floats(0.001, 0.5))
    now = shapely.unary_union([before.buffer(grow, quad_segs=4), draw(stars())])
    return now, before


@st.composite
def antimeridian_areas(draw: st.DrawFn) -> BaseGeometry:
    """A star across lon 180, split into a MultiPolygon of its two sides."""
    lat = draw(st.floats(-60.0, 60.0))
    lon = draw(st.floats(179.0, 181.0))
    radii = draw(st.lists(st.floats(0.3, 1.0), min_size=3, max_size=20))
    whole = star(lon, lat, [r * 1.5 for r in radii])
    east = whole.intersection(shapely.box(0.0, -90.0, 180.0, 90.0))
    west = shapely.affinity.translate(
        whole.intersection(shapely.box(180.0, -90.0, 360.0, 90.0)), xoff=-360.0
    )
    return shapely.union(east, west)


def cloud(
    n: int, seed: int, lon: float = CENTRE_LON, lat: float = CENTRE_LAT, spread_deg: float = 1.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keys and positions: a dense core, a wide halo, and points on cell edges of the grid."""
    rng = np.random.default_rng(seed)
    core = n // 2
    x = np.r_[
        rng.normal(lon, spread_deg / 8, core), rng.uniform(-spread_deg, spread_deg, n - core) + lon
    ]
    y = np.r_[
        rng.normal(lat, spread_deg / 8, core), rng.uniform(-spread_deg, spread_deg, n - core) + lat
    ]

    # Every tenth point snapped to a corner of the finest grid, where rounding would bite.
    snap = slice(0, n, 10)
    x[snap] = np.round((x[snap] + 180.0) * (2**16 / 360.0)) * (360.0 / 2**16) - 180.0
    y[snap] = np.round((y[snap] + 90.0) * (2**16 / 180.0)) * (180.0 / 2**16) - 90.0
    np.clip(x, -180.0, 180.0, out=x)
    np.clip(y, -90.0, 90.0, out=y)
    keys = rng.permutation(n).astype(np.int64) * 7 + 3
    return keys, x, y


def with_vertices(
    keys: np.ndarray, x: np.ndarray, y: np.ndarray, area: BaseGeometry
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cloud plus a point on every vertex of ``area`` (exactly on its boundary)."""
    corners = shapely.get_coordinates(area)
    extra = np.arange(len(corners), dtype=np.int64) + int(keys.max()) + 1
    return np.r_[keys, extra], np.r_[x, corners[:, 0]], np.r_[y, corners[:, 1]]
