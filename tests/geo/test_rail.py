"""Rail networks from GTFS and GeoJSON, and the earliest arrivals the reach search finds."""

from __future__ import annotations

import json
import math
import zipfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Point

from geo import (
    LastSeen,
    MultimodalPolicy,
    RailNetworkError,
    SearchArea,
    load_gtfs,
    load_rail_geojson,
    load_rail_network,
    load_rail_sample,
)
from geo.rail import RailNetwork, Station
from geo.reach import RailTimes, station_arrivals_s

BEIJING_TIME = timezone(timedelta(hours=8))
TIMES = RailTimes(
    road_speed_ms=100 / 3.6,
    boarding_s=600,
    transfer_s=480,
    dwell_s=120,
    wait_fraction=0.0,
    track_circuity=1.0,
)

STOPS = """stop_id,stop_name,stop_lat,stop_lon,location_type,parent_station
A,Alpha,30.0,110.0,1,
A1,Alpha platform 1,30.0001,110.0001,0,A
B,Bravo,31.0,110.0,1,
C,Charlie,32.0,110.0,1,
"""
HEADER = "trip_id,arrival_time,departure_time,stop_id,stop_sequence\n"
PERIODS = "trip_id,start_time,end_time,headway_secs\n"
TRIPS = "route_id,service_id,trip_id\nR,daily,T1\nR,daily,T2\n"
STOP_TIMES = """trip_id,arrival_time,departure_time,stop_id,stop_sequence
T1,08:00:00,08:00:00,A1,1
T1,08:25:00,08:27:00,B,2
T1,08:50:00,08:50:00,C,3
T2,24:10:00,24:10:00,A1,1
T2,24:50:00,24:50:00,C,2
"""
AGENCY = "agency_id,agency_name,agency_url,agency_timezone\nX,Example Rail,https://example.org,Asia/Shanghai\n"


def _gtfs_dir(tmp_path: Path) -> Path:
    feed = tmp_path / "feed"
    feed.mkdir()
    for name, text in {
        "stops.txt": STOPS,
        "trips.txt": TRIPS,
        "stop_times.txt": STOP_TIMES,
        "agency.txt": AGENCY,
    }.items():
        (feed / name).write_text(text)
    return feed


def test_gtfs_loads_from_a_directory_and_a_zip_alike(tmp_path: Path) -> None:
    feed = _gtfs_dir(tmp_path)
    archive = tmp_path / "feed.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for file in feed.iterdir():
            z.write(file, file.name)

    from_dir, from_zip = load_gtfs(feed), load_rail_network(archive)

    assert from_dir == from_zip
    assert [s.id for s in from_dir.stations] == ["A", "B", "C"]  # the platform merged into A
    assert from_dir.has_timetable and from_dir.timezone == "Asia/Shanghai"
    assert from_dir.trips[0].station_ids == ("A", "B", "C")


def test_the_timetable_decides_which_train_is_caught(tmp_path: Path) -> None:
    network = load_gtfs(_gtfs_dir(tmp_path))

    on_time = station_arrivals_s(
        network, 30.0, 110.0, datetime(2026, 12, 3, 7, 50, tzinfo=BEIJING_TIME), 6 * 3600, TIMES
    )
    late = station_arrivals_s(
        network, 30.0, 110.0, datetime(2026, 12, 3, 7, 51, tzinfo=BEIJING_TIME), 20 * 3600, TIMES
    )

    # Ready at 08:00 after 10 minutes to board: T1 reaches C at 08:50, an hour after 07:50.
    assert on_time[2] == pytest.approx(3600)
    assert on_time[1] == pytest.approx(35 * 60)
    # One minute late: the next train past midnight (24:10 of the same service day) is it.
    assert late[2] == pytest.approx((24 * 60 + 50 - (7 * 60 + 51)) * 60)
    assert math.isinf(late[1])


def test_a_trip_after_midnight_of_the_previous_service_day_is_caught(tmp_path: Path) -> None:
    network = load_gtfs(_gtfs_dir(tmp_path))

    arrivals = station_arrivals_s(
        network, 30.0, 110.0, datetime(2026, 12, 3, 0, 0, tzinfo=BEIJING_TIME), 3600, TIMES
    )

    assert arrivals[2] == pytest.approx(50 * 60)  # T2 of 2 December, 24:10 -> 24:50


def test_a_gtfs_search_area_reaches_the_far_station(tmp_path: Path) -> None:
    network = load_gtfs(_gtfs_dir(tmp_path))
    seen = datetime(2026, 12, 3, 7, 50, tzinfo=BEIJING_TIME)
    model = SearchArea(LastSeen(30.0, 110.0, seen), MultimodalPolicy(rail=network))

    area = model.area(seen + timedelta(minutes=70))

    # 70 minutes by road is ~117 km; C is 221 km north, reached by train at 60 minutes.
    assert area.geometry.contains(Point(110.0, 32.05))
    assert not area.geometry.contains(Point(110.0, 32.2))


def _feed(tmp_path: Path, stop_times: str, **more: str) -> Path:
    feed = tmp_path / "feed"
    feed.mkdir()
    files = {"stops.txt": STOPS, "stop_times.txt": stop_times, "agency.txt": AGENCY, **more}
    for name, text in files.items():
        (feed / name).write_text(text)
    return feed


def test_blank_times_are_interpolated_by_straight_line_distance(tmp_path: Path) -> None:
    feed = _feed(
        tmp_path, HEADER + "T1,08:00:00,08:00:00,A,1\nT1,,,B,2\nT1,09:00:00,09:00:00,C,3\n"
    )

    (trip,) = load_gtfs(feed).trips

    # B lies halfway between A and C (one degree of latitude each way).
    assert trip.arrivals_s[1] == trip.departures_s[1] == pytest.approx(8.5 * 3600, abs=10)


def test_blank_times_are_interpolated_by_shape_distance_when_given(tmp_path: Path) -> None:
    header = HEADER.strip() + ",shape_dist_traveled\n"
    rows = "T1,08:00:00,08:00:00,A,1,0\nT1,,,B,2,90\nT1,09:00:00,09:00:00,C,3,100\n"

    (trip,) = load_gtfs(_feed(tmp_path, header + rows)).trips

    assert trip.arrivals_s == (8 * 3600, 8 * 3600 + 54 * 60, 9 * 3600)


def test_a_trip_of_frequencies_runs_at_every_headway_and_not_at_its_template_time(
    tmp_path: Path,
) -> None:
    template = HEADER + "F,08:00:00,08:00:00,A,1\nF,08:50:00,08:50:00,C,2\n"
    frequencies = "trip_id,start_time,end_time,headway_secs\nF,06:00:00,07:00:00,1200\n"
    network = load_gtfs(_feed(tmp_path, template, **{"frequencies.txt": frequencies}))

    starts = [trip.departures_s[0] for trip in network.trips]
    arrivals = station_arrivals_s(
        network, 30.0, 110.0, datetime(2026, 12, 3, 6, 5, tzinfo=BEIJING_TIME), 3 * 3600, TIMES
    )

    assert starts == [6 * 3600, 6 * 3600 + 1200, 6 * 3600 + 2400]
    assert [trip.arrivals_s[-1] - trip.departures_s[0] for trip in network.trips] == [3000] * 3
    # Ready at 06:15: the 06:20 run reaches C at 07:10, 65 minutes after 06:05.
    assert arrivals[2] == pytest.approx(65 * 60)


def test_geojson_lines_snap_to_stations_when_stops_are_not_listed(tmp_path: Path) -> None:
    document = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [110.0, 30.0]},
                "properties": {"id": "A"},
            },
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [110.0, 31.0]},
                "properties": {"id": "B"},
            },
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[110.001, 30.001], [110.3, 30.5], [110.0, 31.0]],
                },
                "properties": {"name": "A-B", "speed_kmh": 300},
            },
        ],
    }
    path = tmp_path / "net.geojson"
    path.write_text(json.dumps(document))

    network = load_rail_geojson(path)

    assert network.lines[0].station_ids == ("A", "B")
    assert not network.has_timetable


def test_the_headway_search_charges_dwell_per_stop_and_waits_when_asked() -> None:
    network = load_rail_sample()
    zhengzhou = network.station("ZAF")
    seen = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)

    eager = station_arrivals_s(network, zhengzhou.lat, zhengzhou.lon, seen, math.inf, TIMES)
    waiting = station_arrivals_s(
        network, zhengzhou.lat, zhengzhou.lon, seen, math.inf,
        RailTimes(100 / 3.6, 600, 480, 120, 1.0, 1.0),
    )  # fmt: skip

    beijing_west = network.station_index("BJP")
    # 10 min to board, ~620 km of hops at 350 km/h, 2 min at each of 7 stops in between.
    hops_m = network.segment_lengths_m[0][: network.lines[0].station_ids.index("ZAF")].sum()
    expected_s = 600 + hops_m / (350 / 3.6) + 7 * 120
    assert eager[beijing_west] == pytest.approx(expected_s, rel=1e-9)
    assert waiting[beijing_west] == pytest.approx(expected_s + 15 * 60, rel=1e-9)
    assert np.all(waiting >= eager)


def test_the_sample_holds_the_three_corridors_with_real_stations() -> None:
    network = load_rail_sample()
    names = {s.name for s in network.stations}

    assert {"Beijing West", "Zhengzhou East", "Wuhan", "Guangzhou South"} <= names
    assert {"Beijing South", "Nanjing South", "Shanghai Hongqiao"} <= names
    assert {"Xuzhou East", "Xi'an North", "Lanzhou West"} <= names
    assert all(250 <= line.speed_kmh <= 350 for line in network.lines)


BROKEN_FEEDS = [
    ({"stops.txt": STOPS, "trips.txt": TRIPS}, "has no stop_times.txt"),
    ({"stops.txt": STOPS, "stop_times.txt": HEADER + "T1,8am,8am,A,1\n"}, "HH:MM:SS"),
    (
        {"stops.txt": STOPS, "stop_times.txt": HEADER + "T1,08:00:00,08:00:00,Z,1\n"},
        "unknown stop 'Z'",
    ),
    (
        {
            "stops.txt": "stop_id,stop_name,stop_lat,stop_lon\nA,Alpha,95,110\n",
            "stop_times.txt": STOP_TIMES,
        },
        "outside",
    ),
    (
        {"stops.txt": STOPS, "stop_times.txt": HEADER + "T1,,,A,1\nT1,09:00:00,09:00:00,C,2\n"},
        "trip T1 .* must give times at its first and last stops",
    ),
    (
        {
            "stops.txt": STOPS,
            "stop_times.txt": STOP_TIMES,
            "frequencies.txt": PERIODS + "T1,06:00:00,07:00:00,0\n",
        },
        "headway_secs greater than zero, got 0",
    ),
    (
        {
            "stops.txt": STOPS,
            "stop_times.txt": STOP_TIMES,
            "frequencies.txt": PERIODS + "T9,06:00:00,07:00:00,60\n",
        },
        "names trip 'T9', which stop_times.txt does not have",
    ),
    (
        {
            "stops.txt": STOPS,
            "stop_times.txt": STOP_TIMES,
            "frequencies.txt": PERIODS + "T1,six,07:00:00,60\n",
        },
        "HH:MM:SS start_time",
    ),
]


@pytest.mark.parametrize(("files", "message"), BROKEN_FEEDS)
def test_a_broken_gtfs_feed_is_refused_with_a_sentence(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)

    with pytest.raises(RailNetworkError, match=message):
        load_gtfs(tmp_path)


def test_a_missing_feed_and_a_line_without_speed_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RailNetworkError, match="no GTFS feed"):
        load_gtfs(tmp_path / "absent")
    path = tmp_path / "net.geojson"
    station = {"type": "Point", "coordinates": [110.0, 30.0]}
    line = {"type": "LineString", "coordinates": [[110, 30], [111, 30]]}
    features = [
        {"type": "Feature", "geometry": station, "properties": {"id": "A"}},
        {"type": "Feature", "geometry": line, "properties": {"name": "X"}},
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(RailNetworkError, match="needs a numeric speed_kmh"):
        load_rail_geojson(path)


def _station(station_id: str, lon: float, lat: float) -> dict:
    geometry = {"type": "Point", "coordinates": [lon, lat]}
    return {"type": "Feature", "geometry": geometry, "properties": {"id": station_id}}


def _line(**properties: object) -> dict:
    geometry = {"type": "LineString", "coordinates": [[110, 30], [111, 30]]}
    return {"type": "Feature", "geometry": geometry, "properties": {"speed_kmh": 300, **properties}}


STATIONS = [_station("A", 110.0, 30.0), _station("B", 111.0, 30.0)]
MALFORMED_NETWORKS = [
    ({"features": 5}, "features of the rail GeoJSON .* must be a list, got int"),
    ({"features": [None, 5]}, "feature 0 of the rail GeoJSON .* must be an object, got NoneType"),
    ({"features": [*STATIONS, 5]}, "feature 2 of the rail GeoJSON .* must be an object, got int"),
    (
        {"features": [{"type": "Feature", "geometry": [110, 30]}]},
        "the geometry of feature 0 .* must be an object, got list",
    ),
    (
        {"features": [{"type": "Feature", "geometry": None, "properties": "A"}]},
        "the properties of feature 0 .* must be an object, got str",
    ),
    (
        {"features": [*STATIONS, _line(name="X", stations=5)]},
        "the stations of line 'X' .* must be a list of station ids, got 5",
    ),
    (
        {"features": [*STATIONS, _line(name="X", stations="AB")]},
        "the stations of line 'X' .* must be a list of station ids, got 'AB'",
    ),
    (
        {"features": [*STATIONS, _line(name="X", stations=["A", None])]},
        "must be a list of station ids, got \\['A', None\\]",
    ),
    (
        {
            "features": [
                *STATIONS,
                {"geometry": {"type": "LineString", "coordinates": 7}, "properties": {"name": "X"}},
            ]
        },
        "the coordinates of line 'X' .* must be a list of positions, got int",
    ),
]


@pytest.mark.parametrize(("members", "message"), MALFORMED_NETWORKS)
def test_a_malformed_rail_geojson_is_refused_with_a_sentence(
    tmp_path: Path, members: dict, message: str
) -> None:
    path = tmp_path / "net.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", **members}))

    with pytest.raises(RailNetworkError, match=message):
        load_rail_geojson(path)


def test_close_station_pairs_are_found_without_measuring_every_pair() -> None:
    rng = np.random.default_rng(3)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, 600)))
    lon = rng.uniform(-180.0, 180.0, 600)
    lat[:40], lon[40:80], lat[40:80] = rng.uniform(89.7, 90.0, 40), 179.9, rng.uniform(0, 0.5, 40)
    lon[60:80] = -179.9
    stations = tuple(
        Station(str(k), str(k), float(a), float(b))
        for k, (a, b) in enumerate(zip(lat, lon, strict=True))
    )
    network = RailNetwork(stations=stations, lines=())
    i, j = np.triu_indices(len(stations), k=1)
    everything_m = network.distances_between_m(i, j)

    for radius_m in (40_000.0, 400_000.0):
        found = set(zip(*network.station_pairs_within_m(radius_m)[:2], strict=True))

        near = everything_m <= radius_m
        expected = set(zip(i[near], j[near], strict=True)) | set(zip(j[near], i[near], strict=True))
        assert {(int(a), int(b)) for a, b in found} == {(int(a), int(b)) for a, b in expected}
        assert len(expected) > 50  # poles and the antimeridian included
