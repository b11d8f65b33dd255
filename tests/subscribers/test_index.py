"""The spatial index returns exactly what shapely.contains_xy selects, before and after changes."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subscribers import InvalidSubscriber, SubscriberIndex
from tests.subscribers.strategies import (
    antimeridian_areas,
    cloud,
    multipolygons,
    rings,
    star,
    stars,
    with_vertices,
)

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS, LON, LAT = cloud(60_000, seed=1)


def truth(area, keys, lon, lat) -> np.ndarray:
    return np.sort(keys[shapely.contains_xy(area, lon, lat)])


def build(keys, lon, lat, leaf_points: int = 128) -> SubscriberIndex:
    index = SubscriberIndex.from_arrays(keys, lon, lat)
    index.leaf_points = leaf_points
    return index


INDEX = build(KEYS, LON, LAT)
FINE_INDEX = build(KEYS, LON, LAT, leaf_points=2)


@SETTINGS
@given(area=stars())
def test_inside_a_random_area_matches_contains_xy(area):
    for index in (INDEX, FINE_INDEX):
        assert np.array_equal(np.sort(index.inside(area)), truth(area, KEYS, LON, LAT))


@SETTINGS
@given(area=stars())
def test_points_on_the_boundary_are_outside_as_contains_xy_says(area):
    keys, lon, lat = with_vertices(KEYS[:5000], LON[:5000], LAT[:5000], area)
    index = build(keys, lon, lat, leaf_points=1)

    assert np.array_equal(np.sort(index.inside(area)), truth(area, keys, lon, lat))


@SETTINGS
@given(area=multipolygons())
def test_inside_a_multipolygon_matches_contains_xy(area):
    assert np.array_equal(np.sort(FINE_INDEX.inside(area)), truth(area, KEYS, LON, LAT))


@SETTINGS
@given(pair=rings())
def test_inside_ring_is_now_minus_before_by_contains_xy(pair):
    now, before = pair
    expected = KEYS[shapely.contains_xy(now, LON, LAT) & ~shapely.contains_xy(before, LON, LAT)]

    for index in (INDEX, FINE_INDEX):
        assert np.array_equal(np.sort(index.inside_ring(now, before)), np.sort(expected))


@SETTINGS
@given(pair=rings())
def test_inside_a_ring_geometry_matches_contains_xy(pair):
    now, before = pair
    ring = now.difference(before)

    assert np.array_equal(np.sort(FINE_INDEX.inside(ring)), truth(ring, KEYS, LON, LAT))


ANTI_KEYS, ANTI_LON, ANTI_LAT = (
    np.r_[a, b]
    for a, b in zip(
        cloud(20_000, seed=2, lon=179.2, lat=0.0, spread_deg=3.0),
        cloud(20_000, seed=3, lon=-179.2, lat=0.0, spread_deg=3.0),
        strict=True,
    )
)


@SETTINGS
@given(area=antimeridian_areas())
def test_inside_an_antimeridian_split_area_matches_contains_xy(area):
    keys = np.arange(len(ANTI_LON), dtype=np.int64)
    index = build(keys, ANTI_LON, ANTI_LAT, leaf_points=8)

    assert np.array_equal(np.sort(index.inside(area)), truth(area, keys, ANTI_LON, ANTI_LAT))


def test_an_empty_area_or_index_selects_nobody():
    assert len(INDEX.inside(shapely.Polygon())) == 0
    empty = SubscriberIndex.from_arrays([], [], [])
    assert len(empty) == 0
    assert len(empty.inside(shapely.box(0, 0, 1, 1))) == 0


@SETTINGS
@given(
    area=stars(),
    moved=st.integers(0, 5000),
    removed=st.integers(0, 2000),
    seed=st.integers(0, 2**32 - 1),
)
def test_updates_and_removals_are_seen_by_the_next_query(area, moved, removed, seed):
    rng = np.random.default_rng(seed)
    keys, lon, lat = KEYS[:20_000].copy(), LON[:20_000].copy(), LAT[:20_000].copy()
    index = build(keys, lon, lat, leaf_points=16)
    index.compact_min = 3000

    # Move some points (a few only slightly, within their cell), add some, remove some.
    who = rng.choice(len(keys), moved, replace=False)
    lon[who] = np.clip(lon[who] + rng.normal(0, 0.3, moved), -180, 180)
    lat[who] = np.clip(lat[who] + rng.normal(0, 0.3, moved), -90, 90)
    lon[who[: moved // 3]] += 1e-7
    new_keys = np.arange(1000, dtype=np.int64) + 10**9
    new_lon = rng.uniform(112, 115, 1000)
    new_lat = rng.uniform(33, 36, 1000)
    index.update(keys[who], lon[who], lat[who])
    index.update(new_keys, new_lon, new_lat)
    gone = rng.choice(len(keys), removed, replace=False)
    assert index.remove(keys[gone]) == removed

    alive = np.ones(len(keys), dtype=bool)
    alive[gone] = False
    all_keys = np.r_[keys[alive], new_keys]
    all_lon, all_lat = np.r_[lon[alive], new_lon], np.r_[lat[alive], new_lat]
    assert len(index) == len(all_keys)
    assert np.array_equal(np.sort(index.inside(area)), truth(area, all_keys, all_lon, all_lat))

    index.compact()
    assert len(index) == len(all_keys)
    assert np.array_equal(np.sort(index.inside(area)), truth(area, all_keys, all_lon, all_lat))


def test_the_last_position_of_a_key_in_one_update_wins():
    index = SubscriberIndex.from_arrays([1, 2], [10.0, 20.0], [10.0, 20.0])
    index.update([1, 1, 1], [50.0, 60.0, 70.0], [5.0, 6.0, 7.0])

    assert list(index.inside(shapely.box(69, 6.5, 71, 7.5))) == [1]
    assert len(index.inside(shapely.box(49, 4, 61, 6.5))) == 0
    assert len(index) == 2


def test_a_removed_key_comes_back_when_updated_again():
    index = SubscriberIndex.from_arrays([1, 2], [10.0, 20.0], [10.0, 20.0])
    assert index.remove([1, 99]) == 1
    assert index.remove([1]) == 0
    assert len(index.inside(shapely.box(9, 9, 11, 11))) == 0

    index.update([1], [10.0], [10.0])
    assert list(index.inside(shapely.box(9, 9, 11, 11))) == [1]
    assert len(index) == 2


def test_compaction_after_many_moves_keeps_every_point_findable():
    keys, lon, lat = KEYS[:30_000], LON[:30_000].copy(), LAT[:30_000].copy()
    index = build(keys, lon, lat)
    index.compact_min = 1000
    rng = np.random.default_rng(5)
    for _ in range(10):
        who = rng.choice(len(keys), 3000, replace=False)
        lon[who] = rng.uniform(110, 117, 3000)
        lat[who] = rng.uniform(31, 38, 3000)
        index.update(keys[who], lon[who], lat[who])

    whole = shapely.box(100, 20, 130, 50)
    assert np.array_equal(np.sort(index.inside(whole)), truth(whole, keys, lon, lat))
    assert index.wait_for_merge(timeout=60)
    assert index.nbytes <= 48 * len(index)


def test_queries_stay_exact_while_another_thread_moves_points():
    keys, lon, lat = KEYS[:30_000], LON[:30_000], LAT[:30_000]
    index = build(keys, lon, lat)
    index.compact_min = 2000
    area = star(113.6, 34.7, [0.5, 0.8, 0.6, 0.9, 0.7])
    still = keys[: len(keys) // 2]
    still_inside = set(truth(area, still, lon[: len(keys) // 2], lat[: len(keys) // 2]).tolist())
    movers = keys[len(keys) // 2 :]
    errors: list[BaseException] = []
    stop = threading.Event()

    def move() -> None:
        rng = np.random.default_rng(7)
        try:
            while not stop.is_set():
                index.update(
                    movers, rng.uniform(112, 115, len(movers)), rng.uniform(33, 36, len(movers))
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    mover = threading.Thread(target=move)
    mover.start()
    try:
        for _ in range(40):
            result = index.inside(area)
            # Points that never move are found exactly; moving ones are never found twice.
            assert len(result) == len(np.unique(result))
            assert set(result.tolist()) & set(still.tolist()) == still_inside
    finally:
        stop.set()
        mover.join()
    assert not errors
    assert len(index) == len(keys)


def test_results_hold_no_key_twice_after_moves():
    keys, lon, lat = KEYS[:10_000], LON[:10_000], LAT[:10_000]
    index = build(keys, lon, lat)
    index.update(keys[:5000], lon[:5000] + 0.01, lat[:5000])
    found = index.inside(shapely.box(100, 20, 130, 50))

    assert len(found) == len(np.unique(found)) == 10_000


@pytest.mark.parametrize(
    ("lon", "lat", "message"),
    [
        ([0.0], [91.2], "latitude must be within -90..90"),
        ([180.5], [0.0], "longitude must be within -180..180"),
        ([np.nan], [0.0], "longitude must be within -180..180"),
        ([10.0], [True], "lat must be numbers of degrees, got booleans"),
        (np.array([False]), [10.0], "lon must be numbers of degrees, got booleans"),
        ([0.0, 1.0], [0.0], "same length"),
    ],
)
def test_bad_positions_are_refused_with_a_sentence_and_change_nothing(lon, lat, message):
    index = SubscriberIndex.from_arrays([1], [10.0], [10.0])
    keys = list(range(5, 5 + len(lon)))

    with pytest.raises(InvalidSubscriber, match=message):
        SubscriberIndex.from_arrays(keys, lon, lat)
    with pytest.raises(InvalidSubscriber, match=message):
        index.update(keys, lon, lat)
    assert len(index) == 1
    assert list(index.inside(shapely.box(9, 9, 11, 11))) == [1]


def test_repeated_keys_are_refused_when_building():
    with pytest.raises(InvalidSubscriber, match="key 4 appears twice"):
        SubscriberIndex.from_arrays([4, 5, 4], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0])


def test_an_invalid_query_area_is_refused_with_a_sentence():
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    with pytest.raises(InvalidSubscriber, match="valid geometry"):
        INDEX.inside(bowtie)


def test_an_index_filled_only_by_updates_answers_like_one_built_from_arrays():
    keys, lon, lat = KEYS[:40_000], LON[:40_000], LAT[:40_000]
    index = SubscriberIndex.from_arrays([], [], [])
    index.compact_min = 5000
    for part in range(0, 40_000, 7000):
        index.update(keys[part : part + 7000], lon[part : part + 7000], lat[part : part + 7000])
    area = star(113.6, 34.7, [0.4, 0.9, 0.5, 0.8, 0.6, 0.7])

    assert len(index) == 40_000
    assert np.array_equal(np.sort(index.inside(area)), truth(area, keys, lon, lat))
    index.compact()
    assert np.array_equal(np.sort(index.inside(area)), truth(area, keys, lon, lat))


def test_a_geometry_collection_is_answered_like_contains_xy():
    area = shapely.GeometryCollection(
        [star(113.6, 34.7, [0.3, 0.5, 0.4]), star(114.5, 35.5, [0.2, 0.3, 0.25, 0.2])]
    )
    assert np.array_equal(np.sort(INDEX.inside(area)), truth(area, KEYS, LON, LAT))


def test_a_query_area_that_is_not_a_geometry_is_refused_with_a_sentence():
    with pytest.raises(InvalidSubscriber, match="must be a shapely geometry, got dict"):
        INDEX.inside({"type": "Polygon", "coordinates": []})


def test_removing_keys_that_are_not_integers_is_refused_with_a_sentence():
    index = SubscriberIndex.from_arrays([1], [10.0], [10.0])
    with pytest.raises(InvalidSubscriber, match="keys to remove must be int64"):
        index.remove(["phone-1"])
    assert len(index) == 1


def test_an_update_past_the_threshold_returns_while_its_merge_runs_on_another_thread():
    keys, lon, lat = KEYS[:20_000], LON[:20_000].copy(), LAT[:20_000].copy()
    index = build(keys, lon, lat)
    index.compact_min = 1000
    area = star(113.6, 34.7, [0.5, 0.8, 0.6, 0.9, 0.7])
    merging, release = threading.Event(), threading.Event()
    merged_on: list[int] = []

    def hold_merge_open() -> None:
        merged_on.append(threading.get_ident())
        merging.set()
        release.wait(timeout=60)

    index.merge_hook = hold_merge_open
    lon[:3000] += 0.2
    index.update(keys[:3000], lon[:3000], lat[:3000])
    try:
        # update() has returned, yet the merge it started is still held open.
        assert merging.wait(timeout=60)
        assert not index.wait_for_merge(timeout=0)
        assert np.array_equal(np.sort(index.inside(area)), truth(area, keys, lon, lat))
        lat[3000:6000] -= 0.2
        index.update(keys[3000:6000], lon[3000:6000], lat[3000:6000])
        assert np.array_equal(np.sort(index.inside(area)), truth(area, keys, lon, lat))
    finally:
        release.set()

    assert index.wait_for_merge(timeout=60)
    assert len(merged_on) == 2
    assert threading.get_ident() not in merged_on
    assert index.pending == 0
    assert np.array_equal(np.sort(index.inside(area)), truth(area, keys, lon, lat))


def test_compact_waits_for_a_background_merge_then_merges_the_rest():
    keys, lon, lat = KEYS[:20_000], LON[:20_000].copy(), LAT[:20_000].copy()
    index = build(keys, lon, lat)
    index.compact_min = 1000
    area = star(113.6, 34.7, [0.5, 0.8, 0.6, 0.9, 0.7])
    merging, release = threading.Event(), threading.Event()

    def hold_first_merge_open() -> None:
        index.merge_hook = None
        merging.set()
        release.wait(timeout=60)

    index.merge_hook = hold_first_merge_open
    lon[:3000] += 0.2
    index.update(keys[:3000], lon[:3000], lat[:3000])
    assert merging.wait(timeout=60)
    lon[3000:3500] -= 0.2
    index.update(keys[3000:3500], lon[3000:3500], lat[3000:3500])
    release.set()
    index.compact()

    assert index.pending == 0
    assert np.array_equal(np.sort(index.inside(area)), truth(area, keys, lon, lat))


def test_a_failed_background_merge_loses_nothing_is_logged_once_and_is_retried(caplog):
    keys, lon, lat = KEYS[:20_000], LON[:20_000].copy(), LAT[:20_000].copy()
    index = build(keys, lon, lat)
    index.compact_min = 1000
    area = star(113.6, 34.7, [0.5, 0.8, 0.6, 0.9, 0.7])

    def fail_midway() -> None:
        index.merge_hook = None
        lon[2000:4000] -= 0.1
        index.update(keys[2000:4000], lon[2000:4000], lat[2000:4000])
        index.remove(keys[4000:4100])
        lon[4000:4100] = np.nan
        raise MemoryError("no room for the merged arrays")

    index.merge_hook = fail_midway
    lon[:3000] += 0.25
    with caplog.at_level(logging.ERROR, logger="subscribers.index"):
        index.update(keys[:3000], lon[:3000], lat[:3000])
        assert index.wait_for_merge(timeout=60)

    # Every change, made before or during the failed merge, is still seen; nothing merged.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "MemoryError" in errors[0].getMessage()
    assert "no room for the merged arrays" in errors[0].getMessage()
    assert index.pending == 4000
    assert len(index) == len(keys) - 100
    assert np.array_equal(np.sort(index.inside(area)), truth(area, keys, lon, lat))

    # The next update finds the delta past its threshold and merges again, this time for good.
    lon[5000:5010] += 1e-7
    index.update(keys[5000:5010], lon[5000:5010], lat[5000:5010])
    assert index.wait_for_merge(timeout=60)
    assert index.pending == 0
    assert len(index) == len(keys) - 100
    assert np.array_equal(np.sort(index.inside(area)), truth(area, keys, lon, lat))
