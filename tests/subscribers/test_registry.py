"""The SQLite and PostGIS stores pass the same suite; PostGIS agrees with the index."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas
import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings

from subscribers import (
    Channel,
    ImportFailed,
    PostgisRegistry,
    Registry,
    SqliteRegistry,
    Subscriber,
    SubscriberIndex,
)
from tests.subscribers.strategies import antimeridian_areas, cloud, multipolygons, rings, stars

NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


class StepClock:
    """A clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgis", marks=pytest.mark.postgis)])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    store: Registry
    if request.param == "sqlite":
        store = SqliteRegistry(tmp_path / "subscribers.db", clock=StepClock())
    else:
        dsn = request.getfixturevalue("postgis_dsn")
        store = PostgisRegistry(dsn, table=f"subscriber_{uuid.uuid4().hex[:12]}", clock=StepClock())
    with store:
        yield store


def device(sid: str = "phone-1", lon: float = 113.65, lat: float = 34.76) -> Subscriber:
    return Subscriber(
        id=sid,
        kind="device",
        lon=lon,
        lat=lat,
        fix_time=NOW,
        channel=Channel(kind="webhook", url="https://app.example.org/hook"),
        language="zh",
    )


SQUARE = {
    "type": "Polygon",
    "coordinates": [[[113.0, 34.0], [114.0, 34.0], [114.0, 35.0], [113.0, 35.0], [113.0, 34.0]]],
}
BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]],
}


def watched(sid: str = "school-1", area: dict | None = None) -> Subscriber:
    return Subscriber(id=sid, kind="area", area=area or SQUARE, channel=Channel(kind="sse"))


def platform(sid: str = "platform-1") -> Subscriber:
    return Subscriber(
        id=sid, kind="platform", channel=Channel(kind="kafka", topic="partner.alerts")
    )


def test_upsert_assigns_a_key_and_times_and_get_reads_it_back(registry: Registry):
    stored = registry.upsert(device())

    assert stored.key is not None
    assert stored.created_at == stored.updated_at
    assert registry.get("phone-1") == stored
    assert registry.get("nobody") is None


def test_upsert_of_a_known_id_keeps_its_key_and_creation_time(registry: Registry):
    first = registry.upsert(device())
    second = registry.upsert(device(lon=113.70))

    assert second.key == first.key
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert registry.get("phone-1").lon == 113.70
    assert registry.count() == 1


def test_areas_and_platforms_read_back_exactly(registry: Registry):
    area = registry.upsert(watched())
    country = registry.upsert(platform())

    assert registry.get("school-1").area == SQUARE
    assert registry.get("school-1") == area
    assert registry.get("platform-1") == country
    assert registry.get("platform-1").area is None


def test_delete_removes_and_says_whether_it_existed(registry: Registry):
    registry.upsert(device())

    assert registry.delete("phone-1") is True
    assert registry.delete("phone-1") is False
    assert registry.count() == 0


def test_iter_all_and_get_by_keys_and_device_positions(registry: Registry):
    stored = [registry.upsert(device(f"p{i}", 113.0 + i / 1000, 34.0)) for i in range(1500)]
    registry.upsert(watched())

    assert [s.id for s in registry.iter_all()][:3] == ["p0", "p1", "p2"]
    assert registry.count() == 1501
    picked = registry.get_by_keys([stored[3].key, stored[7].key, 10**12])
    assert sorted(s.id for s in picked) == ["p3", "p7"]
    keys, lon, lat = registry.device_positions()
    assert len(keys) == 1500
    assert np.array_equal(lon, [113.0 + i / 1000 for i in range(1500)])
    assert set(keys.tolist()) == {s.key for s in stored}


def test_a_write_that_fails_midway_leaves_nothing_written(registry: Registry):
    good = [device(f"p{i}") for i in range(5)]
    broken = Subscriber.model_construct(**{**device("p5").model_dump(), "kind": "satellite"})
    broken.channel = Channel(kind="sse")

    with pytest.raises(Exception):  # noqa: B017 - the store's own integrity error
        registry.write_all([*good, broken, device("p6")])
    assert registry.count() == 0


CSV_ROWS = [
    [
        "id",
        "kind",
        "lon",
        "lat",
        "fix_time",
        "area",
        "channel_kind",
        "channel_url",
        "channel_topic",
        "language",
    ],
    [
        "phone-1",
        "device",
        "113.65",
        "34.76",
        "2026-05-01T08:00:00+08:00",
        "",
        "webhook",
        "https://a.example.org/h",
        "",
        "zh",
    ],
    ["phone-2", "device", "113.66", "91.2", "", "", "sse", "", "", "en"],
    ["school-1", "area", "", "", "", json.dumps(SQUARE), "sse", "", "", "en"],
    ["bad-area", "area", "", "", "", json.dumps(BOWTIE), "sse", "", "", "en"],
    ["phone-3", "device", "113.67", "34.77", "", "", "webhook", "ftp://a.example.org/h", "", "en"],
    ["phone-1", "device", "113.68", "34.78", "", "", "sse", "", "", "en"],
    ["partner", "platform", "", "", "", "", "kafka", "", "partner.alerts", "zh"],
]


def write_csv(path: Path) -> Path:
    with path.open("w", newline="") as out:
        csv.writer(out).writerows(CSV_ROWS)
    return path


def test_csv_import_accepts_good_rows_and_says_why_each_bad_row_was_refused(
    registry: Registry, tmp_path: Path
):
    report = registry.import_file(write_csv(tmp_path / "subs.csv"))

    assert report.accepted == 2
    reasons = dict(report.rejected)
    assert sorted(reasons) == [1, 2, 4, 5, 6]
    assert reasons[2] == "latitude must be within -90..90, got 91.2"
    assert "crosses itself" in reasons[4]
    assert "http or https" in reasons[5]
    assert reasons[1] == (
        "id 'phone-1' is also in row 6; ids must be unique within a file, "
        "so none of these rows is imported"
    )
    assert reasons[6].startswith("id 'phone-1' is also in row 1;")
    assert {s.id for s in registry.iter_all()} == {"school-1", "partner"}
    assert registry.get("school-1").area == SQUARE


def test_an_import_naming_a_registered_id_refuses_that_row_unless_replacing(
    registry: Registry, tmp_path: Path
):
    registry.upsert(watched("school-1", area=FIJI))
    path = write_csv(tmp_path / "subs.csv")

    report = registry.import_file(path)
    assert "already registered" in dict(report.rejected)[3]
    assert registry.get("school-1").area == FIJI

    report = registry.import_file(path, replace_existing=True)
    assert 3 not in dict(report.rejected)
    assert registry.get("school-1").area == SQUARE


def test_an_all_or_nothing_import_with_one_bad_row_writes_nothing(
    registry: Registry, tmp_path: Path
):
    report = registry.import_file(write_csv(tmp_path / "subs.csv"), all_or_nothing=True)

    assert report.accepted == 0
    assert len(report.rejected) == 5
    assert registry.count() == 0


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".parquet"])
def test_spatial_files_import_points_as_devices_and_polygons_as_areas(
    registry: Registry, tmp_path: Path, suffix: str
):
    frame = geopandas.GeoDataFrame(
        {
            "id": ["phone-1", "school-1", "bad-area", "phone-2"],
            "channel_kind": ["sse", "webhook", "sse", "webhook"],
            "channel_url": [None, "https://s.example.org/h", None, "mailto:x@example.org"],
            "language": ["zh", "en", "en", "en"],
        },
        geometry=[
            shapely.Point(113.65, 34.76),
            shapely.geometry.shape(SQUARE),
            shapely.geometry.shape(BOWTIE),
            shapely.Point(113.0, 34.0),
        ],
        crs="EPSG:4326",
    )
    path = tmp_path / f"subs{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_file(path)

    report = registry.import_file(path, show_progress=True)

    assert report.accepted == 2
    assert [n for n, _ in report.rejected] == [3, 4]
    assert registry.get("phone-1").kind == "device"
    assert registry.get("phone-1").lat == 34.76
    assert registry.get("school-1").kind == "area"


WIDE = {
    "type": "Polygon",
    "coordinates": [[[-100.0, 0.0], [100.0, 0.0], [100.0, 10.0], [-100.0, 10.0], [-100.0, 0.0]]],
}
FIJI = {
    "type": "MultiPolygon",
    "coordinates": [
        [[[177.0, -19.0], [180.0, -19.0], [180.0, -16.0], [177.0, -16.0], [177.0, -19.0]]],
        [[[-180.0, -19.0], [-179.0, -19.0], [-179.0, -16.0], [-180.0, -16.0], [-180.0, -19.0]]],
    ],
}


def test_an_area_as_wide_as_half_the_globe_is_refused_and_a_split_one_kept(
    registry: Registry, tmp_path: Path
):
    path = tmp_path / "areas.csv"
    with path.open("w", newline="") as out:
        csv.writer(out).writerows(
            [
                ["id", "kind", "area", "channel_kind"],
                ["band", "area", json.dumps(WIDE), "sse"],
                ["fiji", "area", json.dumps(FIJI), "sse"],
            ]
        )

    report = registry.import_file(path)

    assert report.accepted == 1
    [(row, reason)] = report.rejected
    assert row == 1
    assert "less than 180 degrees of longitude, got one spanning 200" in reason
    assert registry.get("band") is None
    assert registry.get("fiji").area == FIJI


def test_an_unreadable_file_is_refused_with_a_sentence(registry: Registry, tmp_path: Path):
    with pytest.raises(ImportFailed, match="must end in one of"):
        registry.import_file(tmp_path / "subs.xlsx")
    with pytest.raises(ImportFailed, match="no such file"):
        registry.import_file(tmp_path / "missing.csv")
    (tmp_path / "junk.geojson").write_text("{ not json")
    with pytest.raises(ImportFailed, match="could not be read"):
        registry.import_file(tmp_path / "junk.geojson")
    assert registry.count() == 0


# -- PostGIS agrees with the in-memory index ---------------------------------------------------

PG_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def loaded_postgis(request: pytest.FixtureRequest):
    dsn = request.getfixturevalue("postgis_dsn")
    store = PostgisRegistry(dsn, table=f"subscriber_{uuid.uuid4().hex[:12]}")
    _, lon, lat = cloud(3000, seed=11)
    _, east_lon, east_lat = cloud(1000, seed=12, lon=179.2, lat=0.0, spread_deg=3.0)
    _, west_lon, west_lat = cloud(1000, seed=13, lon=-179.2, lat=0.0, spread_deg=3.0)
    lon, lat = np.r_[lon, east_lon, west_lon], np.r_[lat, east_lat, west_lat]
    store.write_all(
        [device(f"p{i}", float(x), float(y)) for i, (x, y) in enumerate(zip(lon, lat, strict=True))]
    )
    keys, lon, lat = store.device_positions()
    index = SubscriberIndex.from_arrays(keys, lon, lat)
    index.leaf_points = 4
    yield store, index
    store.close()


@pytest.mark.postgis
@PG_SETTINGS
@given(area=stars())
def test_the_index_agrees_with_postgis_st_contains_on_random_areas(loaded_postgis, area):
    store, index = loaded_postgis
    assert np.array_equal(np.sort(index.inside(area)), np.sort(store.devices_inside(area)))


@pytest.mark.postgis
@PG_SETTINGS
@given(pair=rings())
def test_the_index_agrees_with_postgis_st_contains_on_rings(loaded_postgis, pair):
    store, index = loaded_postgis
    ring = pair[0].difference(pair[1])
    assert np.array_equal(np.sort(index.inside(ring)), np.sort(store.devices_inside(ring)))


@pytest.mark.postgis
@PG_SETTINGS
@given(area=multipolygons())
def test_the_index_agrees_with_postgis_st_contains_on_multipolygons(loaded_postgis, area):
    store, index = loaded_postgis
    assert np.array_equal(np.sort(index.inside(area)), np.sort(store.devices_inside(area)))


@pytest.mark.postgis
@PG_SETTINGS
@given(area=antimeridian_areas())
def test_the_index_agrees_with_postgis_st_contains_across_the_antimeridian(loaded_postgis, area):
    store, index = loaded_postgis
    assert np.array_equal(np.sort(index.inside(area)), np.sort(store.devices_inside(area)))


def test_a_projected_file_is_imported_in_lon_lat(registry: Registry, tmp_path: Path):
    frame = geopandas.GeoDataFrame(
        {"id": ["phone-1"], "channel_kind": ["sse"]},
        geometry=[shapely.Point(113.65, 34.76)],
        crs="EPSG:4326",
    ).to_crs("EPSG:3857")
    path = tmp_path / "projected.gpkg"
    frame.to_file(path)

    report = registry.import_file(path)

    assert report.accepted == 1
    stored = registry.get("phone-1")
    assert stored.lon == pytest.approx(113.65, abs=1e-9)
    assert stored.lat == pytest.approx(34.76, abs=1e-9)
