"""Search areas: monotone in time, rings that add up, perimeters, masks, sightings, GeoJSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box, shape

from geo import (
    Area,
    Category,
    InvalidGeometryError,
    InvalidPointError,
    InvalidPolicyError,
    InvalidTimeError,
    LastSeen,
    MultimodalPolicy,
    SearchArea,
    TiersPolicy,
    area_km2,
    geojson_to_geometry,
    load_rail_sample,
)

SEEN = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
ZHENGZHOU_EAST = (34.7586, 113.7755)
RAIL = load_rail_sample()


def _multimodal() -> SearchArea:
    return SearchArea(LastSeen(*ZHENGZHOU_EAST, SEEN), MultimodalPolicy(rail=RAIL))


MODEL = _multimodal()
minutes = st.integers(min_value=0, max_value=8 * 60)


@settings(max_examples=40, deadline=None)
@given(first=minutes, second=minutes)
def test_the_area_never_shrinks_as_time_passes(first: int, second: int) -> None:
    early, late = sorted((first, second))

    a1 = MODEL.area(SEEN + timedelta(minutes=early))
    a2 = MODEL.area(SEEN + timedelta(minutes=late))

    assert a2.area_km2 >= a1.area_km2
    assert a1.geometry.difference(a2.geometry).area == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(first=minutes, second=minutes)
def test_the_ring_and_the_earlier_area_make_the_later_area(first: int, second: int) -> None:
    early, late = sorted((first, second))
    t1, t2 = SEEN + timedelta(minutes=early), SEEN + timedelta(minutes=late)

    ring = MODEL.ring(t1, t2)
    rebuilt = ring.geometry.union(MODEL.area(t1).geometry)
    target = MODEL.area(t2)

    assert rebuilt.symmetric_difference(target.geometry).area <= 1e-9 * max(target.geometry.area, 1)
    assert area_km2(ring.geometry) == pytest.approx(ring.area_km2, rel=1e-6, abs=1e-3)
    assert ring.geometry.intersection(MODEL.area(t1).geometry).area <= 1e-9 * max(
        target.geometry.area, 1
    )


def test_a_ring_at_the_same_time_is_empty() -> None:
    at = SEEN + timedelta(hours=2)

    ring = MODEL.ring(at, at)

    assert ring.is_empty and ring.area_km2 == 0.0
    assert ring.to_geojson()["geometry"] == {"type": "MultiPolygon", "coordinates": []}


def test_area_is_rfc7946_geojson_counter_clockwise_with_lon_first() -> None:
    feature = MODEL.area(SEEN + timedelta(hours=1)).to_geojson()

    assert feature["type"] == "Feature"
    assert feature["properties"]["kind"] == "area"
    assert feature["properties"]["area_km2"] > 0
    geometry = shape(feature["geometry"])
    assert geometry.is_valid
    for polygon in shapely.get_parts(geometry):
        assert polygon.exterior.is_ccw
        assert all(not interior.is_ccw for interior in polygon.interiors)
    assert geometry.contains(Point(ZHENGZHOU_EAST[1], ZHENGZHOU_EAST[0]))


def test_area_km2_is_geodesic() -> None:
    area = SearchArea(LastSeen(0.0, 0.0, SEEN), TiersPolicy()).area(SEEN)

    # A 100 km disc: pi r^2 = 31,416 km^2, plus at most a 160 m rim.
    assert 31_416 <= area.area_km2 <= 31_416 * (1 + 2 * 0.161 / 100)


def test_a_newer_sighting_restarts_the_model_from_its_point_and_time() -> None:
    sighting = LastSeen(30.6073, 114.4247, SEEN + timedelta(hours=5))
    restarted = MODEL.with_sighting(sighting)

    area = restarted.area(sighting.time)

    assert area.area_km2 < 1.0
    assert area.geometry.contains(Point(114.4247, 30.6073))
    with pytest.raises(InvalidTimeError, match="before the last-seen time"):
        restarted.area(SEEN + timedelta(hours=4))
    with pytest.raises(InvalidTimeError, match="must not be older"):
        restarted.with_sighting(LastSeen(30.0, 114.0, SEEN))


def test_a_perimeter_is_added_to_or_replaces_the_area() -> None:
    at = SEEN + timedelta(hours=1)
    far = {
        "type": "Polygon",
        "coordinates": [[[100, 40], [101, 40], [101, 41], [100, 41], [100, 40]]],
    }

    added = MODEL.with_perimeter(far, mode="add").area(at)
    replaced = MODEL.with_perimeter(far, mode="replace").area(at)

    assert added.geometry.contains(Point(100.5, 40.5))
    assert added.geometry.contains(Point(ZHENGZHOU_EAST[1], ZHENGZHOU_EAST[0]))
    assert replaced.geometry.equals(box(100, 40, 101, 41))
    assert added.area_km2 == pytest.approx(MODEL.area(at).area_km2 + replaced.area_km2, rel=1e-6)


def test_a_mask_clips_the_area() -> None:
    at = SEEN + timedelta(hours=1)
    west_half = box(100.0, 20.0, ZHENGZHOU_EAST[1], 50.0)

    disc_model = SearchArea(LastSeen(*ZHENGZHOU_EAST, SEEN), TiersPolicy())

    clipped = disc_model.with_mask(west_half).area(at)

    assert clipped.geometry.bounds[2] <= ZHENGZHOU_EAST[1] + 1e-9
    assert clipped.area_km2 == pytest.approx(disc_model.area(at).area_km2 / 2, rel=0.01)


@pytest.mark.parametrize(
    ("geojson", "message"),
    [
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
            "not a valid polygon: Self-intersection",
        ),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "malformed coordinates"),
        ({"type": "Point", "coordinates": [0, 0]}, "must be a Polygon or MultiPolygon, got Point"),
        ({"type": "Polygon", "coordinates": [[[0, 95], [1, 95], [1, 96], [0, 95]]]}, "outside"),
        ({"coordinates": []}, "must be a mapping with a 'type'"),
        ({"type": "Polygon", "coordinates": []}, "empty"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]},
            "every ring of the Polygon must end at the position it starts from",
        ),
        (
            {
                "type": "MultiPolygon",
                "coordinates": [
                    [[[0, 0], [1, 0], [1, 1], [0, 0]]],
                    [[[5, 5], [6, 5], [6, 6], [5, 6]]],
                ],
            },
            r"ring from \[5, 5\] to \[5, 6\]",
        ),
    ],
)
def test_an_invalid_polygon_is_refused_with_a_sentence(geojson: dict, message: str) -> None:
    with pytest.raises(InvalidGeometryError, match=message):
        geojson_to_geometry(geojson)
    with pytest.raises(InvalidGeometryError):
        MODEL.with_perimeter(geojson)


def test_geojson_feature_and_collection_are_accepted() -> None:
    square = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    feature = {"type": "Feature", "geometry": square, "properties": {}}

    assert geojson_to_geometry(feature).equals(box(0, 0, 1, 1))
    assert geojson_to_geometry({"type": "FeatureCollection", "features": [feature]}).equals(
        box(0, 0, 1, 1)
    )


def test_bad_times_points_and_modes_are_refused() -> None:
    with pytest.raises(InvalidPointError, match="latitude must be within -90..90, got 91"):
        LastSeen(91.0, 0.0, SEEN)
    with pytest.raises(InvalidTimeError, match="must carry a UTC offset"):
        LastSeen(0.0, 0.0, datetime(2026, 1, 1))
    with pytest.raises(InvalidTimeError, match="must not be before the last-seen time"):
        MODEL.area(SEEN - timedelta(seconds=1))
    with pytest.raises(InvalidTimeError, match="must not be after"):
        MODEL.ring(SEEN + timedelta(hours=2), SEEN + timedelta(hours=1))
    with pytest.raises(InvalidPolicyError, match="'add' or 'replace'"):
        MODEL.with_perimeter(box(0, 0, 1, 1), mode="merge")  # type: ignore[arg-type]


def test_times_in_other_offsets_are_the_same_instant() -> None:
    beijing = timezone(timedelta(hours=8))

    a = MODEL.area(datetime(2026, 12, 3, 18, 0, tzinfo=beijing))
    b = MODEL.area(SEEN + timedelta(hours=2))

    assert a.area_km2 == b.area_km2
    assert isinstance(a, Area)


def test_category_names_are_checked() -> None:
    with pytest.raises(InvalidPolicyError, match="category must be one of"):
        Category("teleported")
    assert Category("lost_child_1_3").on_foot_only


@settings(max_examples=15, deadline=None)
@given(
    lat=st.floats(min_value=20.0, max_value=45.0),
    lon=st.floats(min_value=100.0, max_value=122.0),
    category=st.sampled_from(list(Category)),
    first=minutes,
    second=minutes,
)
def test_areas_grow_from_any_origin_in_any_category(
    lat: float, lon: float, category: Category, first: int, second: int
) -> None:
    early, late = sorted((first, second))
    model = SearchArea(LastSeen(lat, lon, SEEN), MultimodalPolicy(rail=RAIL), category)

    a1 = model.area(SEEN + timedelta(minutes=early))
    a2 = model.area(SEEN + timedelta(minutes=late))

    assert a1.geometry.difference(a2.geometry).area == 0.0
    assert a2.area_km2 >= a1.area_km2
