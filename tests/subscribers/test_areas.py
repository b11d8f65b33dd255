"""Watched areas and platforms are found by intersection, through adds and removals."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from subscribers import AreaIndex, InvalidSubscriber
from tests.subscribers.strategies import stars


def test_whole_country_platforms_touch_every_area():
    areas = AreaIndex()
    areas.add(1, None)
    areas.add(2, shapely.box(0, 0, 1, 1))

    assert sorted(areas.intersecting(shapely.box(50, 50, 51, 51))) == [1]
    assert sorted(areas.intersecting(shapely.box(0.5, 0.5, 2, 2))) == [1, 2]


def test_an_area_touching_only_at_an_edge_counts():
    areas = AreaIndex()
    areas.add(7, shapely.box(0, 0, 1, 1))
    assert list(areas.intersecting(shapely.box(1, 0, 2, 1))) == [7]


def test_geojson_areas_are_validated():
    areas = AreaIndex()
    areas.add(3, {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 0]]]})
    assert list(areas.intersecting(shapely.Point(1.5, 0.5).buffer(0.1))) == [3]
    with pytest.raises(InvalidSubscriber, match="crosses itself"):
        areas.add(4, {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]})
    assert len(areas) == 1


def test_an_invalid_shapely_area_is_refused_with_a_sentence_and_changes_nothing():
    areas = AreaIndex()
    areas.add(5, shapely.box(0, 0, 1, 1))
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])

    with pytest.raises(InvalidSubscriber, match=r"must be a valid geometry, .*Self-intersection"):
        areas.add(5, bowtie)
    assert list(areas.intersecting(shapely.box(0.5, 0.5, 2, 2))) == [5]


@settings(max_examples=30, deadline=None)
@given(
    shapes=st.lists(stars(), min_size=1, max_size=400),
    query=stars(),
    drop=st.sets(st.integers(0, 399), max_size=100),
    replace=st.sets(st.integers(0, 399), max_size=50),
)
def test_intersecting_matches_shapely_through_adds_replacements_and_removals(
    shapes, query, drop, replace
):
    areas = AreaIndex()
    current = {}
    for key, shape in enumerate(shapes):
        areas.add(key, shape)
        current[key] = shape
    for key in replace:
        if key in current:
            moved = shapely.affinity.translate(current[key], 0.3, 0.3)
            areas.add(key, moved)
            current[key] = moved
    for key in drop:
        assert areas.remove(key) == (key in current)
        current.pop(key, None)

    expected = sorted(k for k, s in current.items() if s.intersects(query))
    assert sorted(areas.intersecting(query).tolist()) == expected
    assert len(areas) == len(current)
    assert areas.intersecting(query).dtype == np.int64
