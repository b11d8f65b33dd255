"""CAP 1.2 rendering, validated against the OASIS schema in shared/vectors/cap."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from shapely.geometry import MultiPolygon, Point, Polygon, mapping

from dispatch.notices import CapEncodingError, Circle, NoticeBatch, NoticeReference, Recipient
from dispatch.notices.cap import (
    CAP_NAMESPACE,
    area_to_cap_polygons,
    cap_time,
    notice_to_cap,
    notice_to_cap_bytes,
)
from tests.dispatch.notices.builders import SENT, notice_batch

XSD = Path(__file__).resolve().parents[3].parent / "shared" / "vectors" / "cap" / "CAP-v1.2.xsd"
NS = {"cap": CAP_NAMESPACE}
CAP_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d$")

ANTIMERIDIAN = {
    "type": "MultiPolygon",
    "coordinates": [
        [[[179.0, -17.5], [180.0, -17.5], [180.0, -16.5], [179.0, -16.5], [179.0, -17.5]]],
        [[[-180.0, -17.5], [-179.2, -17.5], [-179.2, -16.5], [-180.0, -16.5], [-180.0, -17.5]]],
    ],
}
TWO_CITIES = mapping(
    MultiPolygon(
        [
            Point(113.62, 34.75).buffer(0.4, quad_segs=64),
            Point(114.30, 30.59).buffer(0.3, quad_segs=64),
        ]
    )
)


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    if not XSD.exists():
        pytest.fail(f"the CAP 1.2 schema is missing at {XSD}")
    return etree.XMLSchema(etree.parse(str(XSD)))


def assert_valid(schema: etree.XMLSchema, document: bytes) -> etree._Element:
    root = etree.fromstring(document)
    assert schema.validate(root), schema.error_log
    return root


def texts(root: etree._Element, path: str) -> list[str]:
    return [element.text for element in root.findall(path, NS)]


def cap_polygon_to_shape(text: str) -> Polygon:
    points = [tuple(map(float, pair.split(","))) for pair in text.split(" ")]
    return Polygon([(lon, lat) for lat, lon in points])


@pytest.mark.parametrize("msg_type", ["Alert", "Update", "Cancel"])
@pytest.mark.parametrize("area", [None, TWO_CITIES, ANTIMERIDIAN], ids=["square", "multi", "180"])
def test_each_message_type_is_valid_cap(
    schema: etree.XMLSchema, msg_type: str, area: dict | None
) -> None:
    recipient = Recipient(subscriber_id="s1", channel="sse", language="zh")
    batch = notice_batch([recipient], msg_type=msg_type, tick=4, area=area)
    for target in (recipient, None):
        root = assert_valid(schema, notice_to_cap_bytes(batch, target))
        assert texts(root, "cap:msgType") == [msg_type]
        assert texts(root, "cap:status") == ["Actual"]
        assert texts(root, "cap:scope") == ["Public"]
        assert texts(root, "cap:info/cap:category") == ["Rescue"] * (1 if target else 2)


def test_updates_and_cancels_reference_earlier_notices_as_sender_identifier_sent(
    schema: etree.XMLSchema,
) -> None:
    first = notice_batch(tick=0).as_reference()
    second = notice_batch(tick=7).as_reference()
    cancel = notice_batch(msg_type="Cancel", tick=9, references=(first, second))
    root = assert_valid(schema, notice_to_cap_bytes(cancel))
    assert texts(root, "cap:references") == [
        "wayhome,urn:wayhome:notice:case-1:0:alert,2026-12-03T18:30:05+08:00 "
        "wayhome,urn:wayhome:notice:case-1:7:alert,2026-12-03T18:37:05+08:00"
    ]
    assert texts(root, "cap:identifier") == ["urn:wayhome:notice:case-1:9:cancel"]


def test_an_alert_has_no_references_element(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, notice_to_cap_bytes(notice_batch()))
    assert root.find("cap:references", NS) is None


def test_an_update_without_references_cannot_be_encoded() -> None:
    update = notice_batch(msg_type="Update", references=())
    with pytest.raises(CapEncodingError, match="must reference the notices it changes"):
        notice_to_cap(update)


def test_a_recipient_gets_the_info_in_its_language(schema: etree.XMLSchema) -> None:
    recipient = Recipient(subscriber_id="s1", channel="sse", language="zh")
    root = assert_valid(schema, notice_to_cap_bytes(notice_batch([recipient]), recipient))
    assert texts(root, "cap:info/cap:language") == ["zh-CN"]
    assert texts(root, "cap:info/cap:headline")[0].startswith("儿童走失")


def test_without_a_recipient_every_language_of_the_case_gets_an_info(
    schema: etree.XMLSchema,
) -> None:
    root = assert_valid(schema, notice_to_cap_bytes(notice_batch()))
    assert texts(root, "cap:info/cap:language") == ["en", "zh-CN"]


def test_every_time_carries_an_offset_and_never_z(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, notice_to_cap_bytes(notice_batch(msg_type="Update")))
    times = texts(root, "cap:sent") + texts(root, "cap:info/cap:onset")
    times += [ref.split(",")[2] for ref in texts(root, "cap:references")[0].split(" ")]
    assert times and all(CAP_TIME.match(t) for t in times)
    assert texts(root, "cap:sent") == ["2026-12-03T18:30:05+08:00"]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05-00:00"),
        (datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=timezone(timedelta(hours=8))), "+08:00"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(-timedelta(hours=5, minutes=30))), "-05:30"),
    ],
)
def test_cap_time_writes_the_offset_and_utc_as_minus_zero(moment: datetime, expected: str) -> None:
    assert cap_time(moment).endswith(expected)
    assert CAP_TIME.match(cap_time(moment))


def test_cap_time_refuses_a_naive_time() -> None:
    with pytest.raises(CapEncodingError, match="need a UTC offset"):
        cap_time(datetime(2026, 1, 2, 3, 4, 5))


def test_polygons_are_closed_lat_lon_pairs_with_at_most_six_decimals() -> None:
    for polygon in area_to_cap_polygons(TWO_CITIES):
        pairs = polygon.split(" ")
        assert len(pairs) >= 4 and pairs[0] == pairs[-1]
        for pair in pairs:
            lat, lon = pair.split(",")
            assert -90 <= float(lat) <= 90 and -180 <= float(lon) <= 180
            assert all(len(part.split(".")[1]) <= 6 for part in (lat, lon) if "." in part)
        # Zhengzhou and Wuhan are at latitude ~30-35, longitude ~114: lat comes first.
        assert 29 < float(pairs[0].split(",")[0]) < 36


def test_a_multipolygon_gives_one_polygon_element_per_part(schema: etree.XMLSchema) -> None:
    root = assert_valid(schema, notice_to_cap_bytes(notice_batch(area=TWO_CITIES)))
    assert len(texts(root, "cap:info[1]/cap:area/cap:polygon")) == 2


def test_pieces_split_at_the_antimeridian_stay_separate_and_in_range() -> None:
    polygons = [cap_polygon_to_shape(p) for p in area_to_cap_polygons(ANTIMERIDIAN)]
    assert len(polygons) == 2
    east, west = sorted(polygons, key=lambda p: -p.bounds[0])
    assert east.bounds[0] >= 178.99 and east.bounds[2] == 180.0
    assert west.bounds[0] == -180.0 and west.bounds[2] <= -179.19


def test_circles_are_written_as_lat_lon_radius_km(schema: etree.XMLSchema) -> None:
    batch = notice_batch(circles=(Circle(lat=34.7466, lon=113.625368, radius_km=12.5),))
    root = assert_valid(schema, notice_to_cap_bytes(batch))
    assert texts(root, "cap:info[1]/cap:area/cap:circle") == ["34.7466,113.625368 12.5"]


def test_a_large_polygon_is_simplified_under_the_limit_and_still_covers_it() -> None:
    disc = Point(113.78, 34.76).buffer(2.0, quad_segs=4000)
    polygons = area_to_cap_polygons(mapping(disc), max_points_per_polygon=100)
    assert len(polygons) == 1 and polygons[0].count(" ") + 1 <= 100
    covering = cap_polygon_to_shape(polygons[0])
    assert covering.covers(disc)
    assert covering.area < disc.area * 1.05


@st.composite
def ragged_polygons(draw: st.DrawFn) -> Polygon:
    """Star-shaped polygons around a point, with many vertices and random radii."""
    n = draw(st.integers(min_value=3, max_value=600))
    radii = draw(st.lists(st.floats(0.05, 3.0), min_size=n, max_size=n))
    lon = draw(st.floats(-170, 170))
    lat = draw(st.floats(-60, 60))
    return Polygon(
        [
            (lon + r * math.cos(2 * math.pi * i / n), lat + r * math.sin(2 * math.pi * i / n))
            for i, r in enumerate(radii)
        ]
    )


@settings(max_examples=60, deadline=None)
@given(polygon=ragged_polygons(), limit=st.integers(min_value=5, max_value=300))
def test_cap_polygons_always_cover_the_area(polygon: Polygon, limit: int) -> None:
    polygons = area_to_cap_polygons(mapping(polygon), max_points_per_polygon=limit)
    covering = MultiPolygon([cap_polygon_to_shape(p) for p in polygons])
    assert covering.buffer(0).covers(polygon)
    assert all(p.count(" ") + 1 <= limit for p in polygons)


def test_a_polygon_with_a_hole_is_covered_by_its_outer_ring() -> None:
    ring = Point(0, 0).buffer(1.0).difference(Point(0, 0).buffer(0.5))
    (polygon,) = area_to_cap_polygons(mapping(ring))
    assert cap_polygon_to_shape(polygon).covers(Point(0, 0).buffer(1.0))


def test_the_batch_area_accepts_a_geojson_feature(schema: etree.XMLSchema) -> None:
    feature = {"type": "Feature", "geometry": TWO_CITIES, "properties": {}}
    batch = notice_batch(area=feature)
    assert batch.area == TWO_CITIES
    assert_valid(schema, notice_to_cap_bytes(batch))


def test_a_reference_keeps_its_senders_own_offset() -> None:
    other = NoticeReference(sender="police.example", identifier="A-1", sent=SENT.astimezone(UTC))
    update: NoticeBatch = notice_batch(msg_type="Update", references=(other,))
    root = notice_to_cap(update)
    assert texts(root, "cap:references") == ["police.example,A-1,2026-12-03T10:30:05-00:00"]


def test_many_parts_share_the_point_budget_and_are_still_covered() -> None:
    parts = [Point(100 + i * 0.5, 30).buffer(0.2, quad_segs=64) for i in range(40)]
    area = MultiPolygon(parts)
    polygons = area_to_cap_polygons(mapping(area), max_points=1_000)
    assert len(polygons) == 40
    assert sum(p.count(" ") + 1 for p in polygons) <= 1_000
    covering = MultiPolygon([cap_polygon_to_shape(p) for p in polygons])
    assert covering.buffer(0).covers(area)


def test_a_real_multimodal_search_area_is_valid_cap_and_covered(schema: etree.XMLSchema) -> None:
    from geo import Category, LastSeen, MultimodalPolicy, SearchArea, load_rail_sample

    last_seen = LastSeen(lat=34.76, lon=113.78, time=SENT - timedelta(hours=1))
    model = SearchArea(
        last_seen=last_seen,
        policy=MultimodalPolicy(rail=load_rail_sample()),
        category=Category("vehicle_abduction"),
    )
    area = model.area(SENT)
    geometry = area.to_geojson()["geometry"]
    root = assert_valid(schema, notice_to_cap_bytes(notice_batch(area=geometry)))
    polygons = texts(root, "cap:info[1]/cap:area/cap:polygon")
    covering = MultiPolygon([cap_polygon_to_shape(p) for p in polygons])
    assert covering.buffer(0).covers(area.geometry)
