"""Geodesic discs against pyproj's Geod: full coverage, and the 70 m overshoot budget kept."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon

from geo import MAX_OVERSHOOT_M, GeoError, InvalidPointError, PoleError, disc
from geo.disc import DISC_OVERSHOOT_BUDGET_M
from geo.policies import POLE_CLEARANCE_M

GEOD = Geod(ellps="WGS84")


def _short_of_the_pole_m(lat: float) -> float:
    # The largest radius the reach policies give around a centre at this latitude.
    return GEOD.inv(20.0, lat, 20.0, 90.0 if lat >= 0 else -90.0)[2] - POLE_CLEARANCE_M


def _boundary_points(lat: float, lon: float, radius_m: float, count: int) -> np.ndarray:
    az = np.linspace(0.0, 360.0, count, endpoint=False)
    x, y, _ = GEOD.fwd(np.full(count, lon), np.full(count, lat), az, np.full(count, radius_m))
    return np.column_stack([x, y])


def _coverage(polygon: Polygon | MultiPolygon, lat: float, lon: float, radius_m: float) -> float:
    points = _boundary_points(lat, lon, radius_m, 4096)
    shapely.prepare(polygon)
    return float(shapely.covers(polygon, shapely.points(points)).mean())


def _worst_overshoot_m(polygon: Polygon | MultiPolygon, lat: float, lon: float, r: float) -> float:
    # Every point of every edge, densified well below the edge length, against the radius.
    rings = [p.exterior for p in shapely.get_parts(polygon)]
    coords = [np.asarray(ring.coords) for ring in rings]
    edge_deg = min(float(np.hypot(*np.diff(c, axis=0).T).max()) for c in coords)
    dense = shapely.get_coordinates(shapely.segmentize(rings, max(edge_deg / 16, 1e-9)))
    n = len(dense)
    _, _, d = GEOD.inv(np.full(n, lon), np.full(n, lat), dense[:, 0], dense[:, 1])
    return float(np.max(d) - r)


def _contains_pole(lat: float, lon: float, radius_m: float) -> bool:
    pole = 90.0 if lat >= 0 else -90.0
    return radius_m + MAX_OVERSHOOT_M >= GEOD.inv(lon, lat, lon, pole)[2]


radii_m = st.floats(min_value=math.log(10.0), max_value=math.log(2_000_000.0)).map(math.exp)


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(min_value=-80.0, max_value=80.0),
    lon=st.floats(min_value=-180.0, max_value=180.0),
    radius_m=radii_m,
)
def test_disc_covers_the_true_disc_and_overshoots_at_most_a_tenth_of_a_mile(
    lat: float, lon: float, radius_m: float
) -> None:
    assume(not _contains_pole(lat, lon, radius_m))

    polygon = disc(lat, lon, radius_m)

    assert polygon.is_valid
    assert _coverage(polygon, lat, lon, radius_m) == 1.0
    assert (
        _worst_overshoot_m(polygon, lat, lon, radius_m) <= DISC_OVERSHOOT_BUDGET_M < MAX_OVERSHOOT_M
    )


@pytest.mark.parametrize(
    ("lat", "lon", "radius_m"),
    [
        (0.0, 0.0, 10.0),
        (34.7586, 113.7755, 100_000.0),
        (80.0, 30.0, 1_000_000.0),
        (-80.0, -60.0, 1_000_000.0),
        (60.0, 100.0, 2_000_000.0),
        (0.0, 179.99, 2_000_000.0),
        (45.0, -179.9, 500.0),
        (80.0, 20.0, _short_of_the_pole_m(80.0)),
        (-53.5, 20.0, _short_of_the_pole_m(-53.5)),
    ],
)
def test_disc_covers_the_hardest_corners_of_the_range(
    lat: float, lon: float, radius_m: float
) -> None:
    polygon = disc(lat, lon, radius_m)

    assert _coverage(polygon, lat, lon, radius_m) == 1.0
    assert (
        _worst_overshoot_m(polygon, lat, lon, radius_m) <= DISC_OVERSHOOT_BUDGET_M < MAX_OVERSHOOT_M
    )


def test_a_disc_across_the_antimeridian_is_split_into_valid_pieces_within_the_map() -> None:
    polygon = disc(-17.7, 178.4, 300_000.0)  # around Fiji

    assert isinstance(polygon, MultiPolygon)
    assert polygon.is_valid
    west, _, east, _ = polygon.bounds
    assert west == -180.0 and east == 180.0
    assert sorted(len(p.exterior.coords) > 4 for p in polygon.geoms) == [True, True]
    assert _coverage(polygon, -17.7, 178.4, 300_000.0) == 1.0


def test_a_disc_that_would_contain_a_pole_is_refused_with_a_sentence() -> None:
    with pytest.raises(PoleError, match="would contain the north pole"):
        disc(80.0, 0.0, 1_200_000.0)
    with pytest.raises(PoleError, match="south pole"):
        disc(-89.0, 10.0, 500_000.0)


@pytest.mark.parametrize(
    ("lat", "lon", "radius_m", "message"),
    [
        (91.0, 0.0, 1000.0, "latitude must be within -90..90, got 91.0"),
        (0.0, 181.0, 1000.0, "longitude must be within -180..180, got 181.0"),
        (0.0, 0.0, -5.0, "radius must be within"),
        (0.0, 0.0, 0.0, "radius must be within"),
        (float("nan"), 0.0, 10.0, "latitude"),
    ],
)
def test_a_disc_out_of_range_is_refused(
    lat: float, lon: float, radius_m: float, message: str
) -> None:
    with pytest.raises(InvalidPointError, match=message):
        disc(lat, lon, radius_m)
    assert issubclass(InvalidPointError, GeoError) and issubclass(GeoError, ValueError)


def test_discs_of_the_same_radius_differ_only_by_longitude() -> None:
    a = np.asarray(disc(30.0, 10.0, 50_000.0).exterior.coords)
    b = np.asarray(disc(30.0, 20.0, 50_000.0).exterior.coords)

    np.testing.assert_allclose(a[:, 0] + 10.0, b[:, 0], atol=1e-9)
    np.testing.assert_allclose(a[:, 1], b[:, 1], atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(
    lat=st.floats(min_value=-80.0, max_value=80.0),
    lon=st.floats(min_value=-180.0, max_value=180.0),
    steps=st.integers(min_value=1, max_value=20_000),
)
def test_a_disc_lies_inside_the_disc_one_radius_step_larger(
    lat: float, lon: float, steps: int
) -> None:
    # The reach model's monotone areas rest on this: overshoot (<= 70 m) < step (90 m).
    radius_m = steps * 90.0
    assume(not _contains_pole(lat, lon, radius_m + 90.0))

    inner, outer = disc(lat, lon, radius_m), disc(lat, lon, radius_m + 90.0)

    assert inner.difference(outer).area == 0.0
