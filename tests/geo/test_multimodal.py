"""Multimodal reach: walking, driving and high-speed rail from Zhengzhou East."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pyproj import Geod
from shapely.geometry import Point

from geo import (
    Category,
    InvalidPolicyError,
    LastSeen,
    MultimodalPolicy,
    SearchArea,
    load_rail_sample,
)
from geo.policies import POLE_CLEARANCE_M, RADIUS_STEP_M

GEOD = Geod(ellps="WGS84")
SEEN = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
ZHENGZHOU_EAST = (34.7586, 113.7755)
RAIL = load_rail_sample()

BEIJING_WEST = (39.8949, 116.3218)
BEIJING_SOUTH = (39.8651, 116.3785)
TIANANMEN = (39.9087, 116.3975)
WUHAN_STATION = (30.6073, 114.4247)
WUHAN_CENTRE = (30.5928, 114.3055)
# In the Sichuan Basin, south of Chengdu: no sample line comes within 400 km.
FAR_FROM_EVERY_LINE = (29.0, 103.2)


def _within(area, lat_lon) -> bool:  # type: ignore[no-untyped-def]
    return bool(area.geometry.contains(Point(lat_lon[1], lat_lon[0])))


def _distance_to_lines_km(lat: float, lon: float) -> float:
    best = np.inf
    for _, path in RAIL.line_paths():
        for (lon1, lat1), (lon2, lat2) in zip(path[:-1], path[1:], strict=True):
            points = GEOD.npts(lon1, lat1, lon2, lat2, 200)
            xs = np.array([lon1] + [p[0] for p in points] + [lon2])
            ys = np.array([lat1] + [p[1] for p in points] + [lat2])
            _, _, d = GEOD.inv(np.full(xs.size, lon), np.full(ys.size, lat), xs, ys)
            best = min(best, float(np.min(d)))
    return best / 1000


def test_three_hours_after_zhengzhou_east_the_area_reaches_beijing_and_wuhan_by_rail() -> None:
    model = SearchArea(
        LastSeen(*ZHENGZHOU_EAST, SEEN),
        policy=MultimodalPolicy(rail=RAIL),
        category=Category("vehicle_abduction"),
    )

    area = model.area(SEEN + timedelta(hours=3))

    for place in (BEIJING_WEST, BEIJING_SOUTH, TIANANMEN, WUHAN_STATION, WUHAN_CENTRE):
        assert _within(area, place)
    assert not _within(area, FAR_FROM_EVERY_LINE)
    assert _distance_to_lines_km(*FAR_FROM_EVERY_LINE) >= 400
    # Beijing is ~620 km away: beyond any road reach in 3 h, so rail took it there.
    assert (
        GEOD.inv(ZHENGZHOU_EAST[1], ZHENGZHOU_EAST[0], BEIJING_WEST[1], BEIJING_WEST[0])[2]
        > 600_000
    )
    assert any(d.mode == "rail" for d in area.discs)


def test_a_point_on_the_track_beyond_every_reached_station_is_outside_until_later() -> None:
    model = SearchArea(LastSeen(*ZHENGZHOU_EAST, SEEN), MultimodalPolicy(rail=RAIL))
    zhuzhou, hengyang = RAIL.station("ZZQ"), RAIL.station("HYQ")
    # On the track 50 km south of Zhuzhou West, towards Hengyang East (not yet reached at 3 h).
    azimuth = GEOD.inv(zhuzhou.lon, zhuzhou.lat, hengyang.lon, hengyang.lat)[0]
    lon, lat, _ = GEOD.fwd(zhuzhou.lon, zhuzhou.lat, azimuth, 50_000)

    area = model.area(SEEN + timedelta(hours=3))
    later = model.area(SEEN + timedelta(hours=4))

    assert _distance_to_lines_km(lat, lon) < 1
    for reached in area.discs:
        assert GEOD.inv(lon, lat, reached.lon, reached.lat)[2] > reached.radius_m + 161
    assert not _within(area, (lat, lon))
    assert _within(later, (lat, lon))


def test_without_rail_three_hours_reach_neither_beijing_nor_wuhan() -> None:
    model = SearchArea(LastSeen(*ZHENGZHOU_EAST, SEEN), policy=MultimodalPolicy())

    area = model.area(SEEN + timedelta(hours=3))

    assert not _within(area, BEIJING_WEST) and not _within(area, WUHAN_STATION)
    # 3 h at 120 km/h over a circuity of 1.2 is 300 km as the crow flies.
    (drive,) = area.discs
    assert drive.mode == "driving" and drive.radius_m == pytest.approx(300_000, abs=90)


def test_a_lost_toddler_walks_only_and_is_capped_by_the_lost_person_statistics() -> None:
    model = SearchArea(
        LastSeen(*ZHENGZHOU_EAST, SEEN), MultimodalPolicy(rail=RAIL), Category.LOST_CHILD_1_3
    )

    half_hour = model.area(SEEN + timedelta(minutes=30))
    day = model.area(SEEN + timedelta(hours=24))

    assert [d.mode for d in day.discs] == ["walking"]
    assert half_hour.discs[0].radius_m == pytest.approx(1_000, abs=90)
    assert day.discs[0].radius_m == pytest.approx(2_000, abs=90)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"driving_kmh": -5.0}, "driving_kmh must be greater than zero, got -5.0"),
        ({"walking_kmh": 0.0}, "walking_kmh must be greater than zero"),
        ({"road_circuity": 0.8}, "must be 1 or more"),
        ({"boarding_min": -1.0}, "boarding_min must be zero or more"),
        ({"headway_wait_fraction": 2.0}, "within 0..1"),
    ],
)
def test_impossible_speeds_and_times_are_refused(setting: dict, message: str) -> None:
    with pytest.raises(InvalidPolicyError, match=message):
        MultimodalPolicy(**setting)


def test_waiting_for_trains_shrinks_the_rail_reach() -> None:
    eager = SearchArea(LastSeen(*ZHENGZHOU_EAST, SEEN), MultimodalPolicy(rail=RAIL))
    patient = SearchArea(
        LastSeen(*ZHENGZHOU_EAST, SEEN), MultimodalPolicy(rail=RAIL, headway_wait_fraction=1.0)
    )

    at = SEEN + timedelta(hours=3)

    assert patient.area(at).area_km2 < eager.area(at).area_km2
    assert patient.area(at).geometry.difference(eager.area(at).geometry).area < 1e-9


@pytest.mark.parametrize("lat", [80.0, -80.0])
def test_at_high_latitude_the_area_keeps_its_radius_until_it_nears_the_pole(lat: float) -> None:
    model = SearchArea(LastSeen(lat, 20.0, SEEN), MultimodalPolicy())
    pole_m = GEOD.inv(20.0, lat, 20.0, 90.0 if lat > 0 else -90.0)[2]

    ten_hours = model.area(SEEN + timedelta(hours=10))
    a_day = model.area(SEEN + timedelta(days=1))

    # 10 h at 100 km/h as the crow flies: 1,000 km, drawable 117 km short of the pole.
    (drive,) = ten_hours.discs
    assert drive.radius_m == pytest.approx(1_000_000, abs=90)
    # A day would pass the pole: the disc stops POLE_CLEARANCE_M short of it, not sooner.
    (capped,) = a_day.discs
    assert pole_m - POLE_CLEARANCE_M - RADIUS_STEP_M < capped.radius_m <= pole_m - POLE_CLEARANCE_M
    for azimuth in range(0, 360, 30):
        lon, near_lat, _ = GEOD.fwd(20.0, lat, azimuth, capped.radius_m - 1)
        assert a_day.geometry.contains(Point(lon, near_lat))


@pytest.mark.parametrize(("lat", "lon"), [(34.7586, 113.7755), (45.8, 126.6), (53.3, 122.5)])
def test_a_case_open_for_months_still_gets_an_area(lat: float, lon: float) -> None:
    model = SearchArea(LastSeen(lat, lon, SEEN), MultimodalPolicy(rail=RAIL))

    area = model.area(SEEN + timedelta(days=100))
    later = model.area(SEEN + timedelta(days=100, minutes=1))

    assert area.geometry.is_valid and area.area_km2 > 30_000_000
    assert later.geometry.equals(area.geometry)
    assert model.ring(SEEN + timedelta(days=100), SEEN + timedelta(days=100, minutes=1)).is_empty
