"""The tiers policy reproduces Tuanyuan's table: 100/200/300/500 km at <1/<2/<3/>=3 h."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pyproj import Geod

from geo import InvalidPolicyError, LastSeen, SearchArea, TiersPolicy

GEOD = Geod(ellps="WGS84")
SEEN = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("elapsed", "radius_km"),
    [
        (timedelta(0), 100),
        (timedelta(minutes=59, seconds=59), 100),
        (timedelta(hours=1), 200),
        (timedelta(hours=1, minutes=59), 200),
        (timedelta(hours=2), 300),
        (timedelta(hours=2, minutes=59, seconds=59), 300),
        (timedelta(hours=3), 500),
        (timedelta(hours=30), 500),
    ],
)
def test_tiers_reproduce_the_tuanyuan_table(elapsed: timedelta, radius_km: int) -> None:
    assert TiersPolicy().radius_km(elapsed.total_seconds() / 3600) == radius_km

    area = SearchArea(LastSeen(34.7586, 113.7755, SEEN)).area(SEEN + elapsed)

    (only,) = area.discs
    assert only.radius_m == radius_km * 1000
    # The polygon reaches the tier's radius in every direction and not 0.1 mile beyond.
    for azimuth in range(0, 360, 15):
        inside_lon, inside_lat, _ = GEOD.fwd(113.7755, 34.7586, azimuth, radius_km * 1000 - 1)
        outside_lon, outside_lat, _ = GEOD.fwd(113.7755, 34.7586, azimuth, radius_km * 1000 + 161)
        assert area.geometry.contains(_point(inside_lon, inside_lat))
        assert not area.geometry.contains(_point(outside_lon, outside_lat))


@pytest.mark.parametrize("lat", [80.0, -80.0])
@pytest.mark.parametrize(
    ("elapsed", "radius_km"),
    [(timedelta(minutes=30), 100), (timedelta(hours=1.5), 200), (timedelta(hours=2.5), 300),
     (timedelta(hours=4), 500)],
)  # fmt: skip
def test_tiers_reproduce_the_table_at_80_degrees_of_latitude(
    lat: float, elapsed: timedelta, radius_km: int
) -> None:
    area = SearchArea(LastSeen(lat, 20.0, SEEN)).area(SEEN + elapsed)

    (only,) = area.discs
    assert only.radius_m == radius_km * 1000
    for azimuth in range(0, 360, 15):
        inside_lon, inside_lat, _ = GEOD.fwd(20.0, lat, azimuth, radius_km * 1000 - 1)
        outside_lon, outside_lat, _ = GEOD.fwd(20.0, lat, azimuth, radius_km * 1000 + 161)
        assert area.geometry.contains(_point(inside_lon, inside_lat))
        assert not area.geometry.contains(_point(outside_lon, outside_lat))


def test_a_custom_tier_table_is_followed() -> None:
    policy = TiersPolicy(tiers=((0.5, 10.0), (4.0, 50.0)), after_km=80.0)

    assert [policy.radius_km(h) for h in (0.0, 0.49, 0.5, 3.99, 4.0)] == [10, 10, 50, 50, 80]


@pytest.mark.parametrize(
    ("tiers", "after_km", "message"),
    [
        (((2.0, 100.0), (1.0, 200.0)), 500.0, "increasing hours"),
        (((1.0, 300.0), (2.0, 200.0)), 500.0, "never shrink"),
        (((1.0, -100.0),), 500.0, "radius_km must be greater than zero, got -100.0"),
        (((1.0, 100.0),), 50.0, "after_km must be at least"),
    ],
)
def test_a_tier_table_that_cannot_be_followed_is_refused(
    tiers: tuple[tuple[float, float], ...], after_km: float, message: str
) -> None:
    with pytest.raises(InvalidPolicyError, match=message):
        TiersPolicy(tiers=tiers, after_km=after_km)


def _point(lon: float, lat: float):  # type: ignore[no-untyped-def]
    from shapely.geometry import Point

    return Point(lon, lat)
