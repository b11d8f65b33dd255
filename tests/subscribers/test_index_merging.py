"""A merge of moved points holds no query back, and every answer stays exact while it runs."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import shapely

from subscribers import SubscriberIndex
from tests.subscribers.strategies import cloud, star

KEYS, LON, LAT = cloud(20_000, seed=3)
AREA = star(113.6, 34.7, [0.5, 0.8, 0.6, 0.9, 0.7])
RING_BEFORE = star(113.6, 34.7, [0.3, 0.2, 0.4, 0.25, 0.3])


def truth(area, keys, lon, lat, before=None) -> np.ndarray:
    hit = shapely.contains_xy(area, lon, lat)
    if before is not None:
        hit &= ~shapely.contains_xy(before, lon, lat)
    return np.sort(keys[hit])


def small_merges(index: SubscriberIndex) -> SubscriberIndex:
    index.compact_min = 500
    index.compact_fraction = 0.0
    return index


def test_queries_match_a_snapshot_while_another_thread_moves_points_and_merges():
    keys = KEYS.copy()
    lon, lat = LON.copy(), LAT.copy()
    index = small_merges(SubscriberIndex.from_arrays(keys, lon, lat))
    merges = []
    index.merge_hook = lambda: merges.append(1)

    # snapshots[v] holds the positions after the mover's v-th change (NaN: removed).
    snapshots = [(lon.copy(), lat.copy())]
    done = [0]
    errors: list[BaseException] = []
    steps = 150

    def move() -> None:
        rng = np.random.default_rng(11)
        try:
            for _ in range(steps):
                # A third stay within their cell (or come back), the rest jump anywhere.
                who = rng.choice(len(keys), 300, replace=False)
                nudged, jumped = who[:100], who[100:]
                lon[jumped] = rng.uniform(112.5, 114.7, len(jumped))
                lat[jumped] = rng.uniform(33.6, 35.8, len(jumped))
                back = np.isnan(lon[nudged])
                lon[nudged] = np.where(back, 113.0, lon[nudged] + 1e-7)
                lat[nudged] = np.where(back, 34.0, lat[nudged])
                snapshots.append((lon.copy(), lat.copy()))
                index.update(keys[who], lon[who], lat[who])
                done[0] += 1

                gone = rng.choice(len(keys), 20, replace=False)
                lon[gone] = np.nan
                lat[gone] = np.nan
                snapshots.append((lon.copy(), lat.copy()))
                index.remove(keys[gone])
                done[0] += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    mover = threading.Thread(target=move)
    mover.start()
    checked = 0
    try:
        while mover.is_alive() or checked == 0:
            first = done[0]
            found = np.sort(index.inside_ring(AREA, RING_BEFORE))
            last = min(done[0] + 1, len(snapshots) - 1)

            # The answer is exactly the truth at one moment between the query's start and end.
            candidates = [
                truth(AREA, keys, *snapshots[v], before=RING_BEFORE) for v in range(first, last + 1)
            ]
            assert any(np.array_equal(found, expected) for expected in candidates)
            checked += 1
    finally:
        mover.join()
    assert index.wait_for_merge(timeout=60)
    assert not errors
    # Moves kept coming while the first merge ran, so the merging thread went on to more.
    assert len(merges) >= 2
    assert index.pending <= index.compact_min
    assert len(index) == int((~np.isnan(lon)).sum())
    assert np.array_equal(np.sort(index.inside(AREA)), truth(AREA, keys, lon, lat))


def test_a_query_completes_while_a_merge_is_in_progress():
    keys, lon, lat = KEYS.copy(), LON.copy(), LAT.copy()
    index = SubscriberIndex.from_arrays(keys, lon, lat)
    moved = keys[:4000]
    lon[:4000] += 0.3
    index.update(moved, lon[:4000], lat[:4000])

    merging, queried = threading.Event(), threading.Event()
    query_done_during_merge: list[bool] = []

    def hold_merge_open() -> None:
        merging.set()
        query_done_during_merge.append(queried.wait(timeout=60))

    index.merge_hook = hold_merge_open
    merger = threading.Thread(target=index.compact)
    merger.start()
    try:
        assert merging.wait(timeout=60)

        # While the merge holds its new arrays unswapped: query, move, remove, query again.
        assert np.array_equal(np.sort(index.inside(AREA)), truth(AREA, keys, lon, lat))
        lon[4000:6000] -= 0.2
        index.update(keys[4000:6000], lon[4000:6000], lat[4000:6000])
        lon[:100] += 1e-7
        index.update(keys[:100], lon[:100], lat[:100])
        assert index.remove(keys[6000:6500]) == 500
        assert index.remove(keys[6000:6500]) == 0
        lon[6000:6500] = np.nan
        assert len(index) == len(keys) - 500
        assert np.array_equal(np.sort(index.inside(AREA)), truth(AREA, keys, lon, lat))
    finally:
        queried.set()
        merger.join()

    assert query_done_during_merge == [True]
    assert len(index) == len(keys) - 500
    assert np.array_equal(np.sort(index.inside(AREA)), truth(AREA, keys, lon, lat))
    index.compact()
    assert index.pending == 0
    assert np.array_equal(np.sort(index.inside(AREA)), truth(AREA, keys, lon, lat))


def test_a_merge_that_fails_loses_no_change_made_while_it_ran():
    keys, lon, lat = KEYS.copy(), LON.copy(), LAT.copy()
    index = SubscriberIndex.from_arrays(keys, lon, lat)
    lon[:3000] += 0.25
    index.update(keys[:3000], lon[:3000], lat[:3000])

    def fail_midway() -> None:
        lon[2000:5000] -= 0.1
        index.update(keys[2000:5000], lon[2000:5000], lat[2000:5000])
        index.remove(keys[5000:5100])
        lon[5000:5100] = np.nan
        raise MemoryError("no room for the merged arrays")

    index.merge_hook = fail_midway
    with pytest.raises(MemoryError):
        index.compact()

    assert len(index) == len(keys) - 100
    assert np.array_equal(np.sort(index.inside(AREA)), truth(AREA, keys, lon, lat))
    index.merge_hook = None
    index.compact()
    assert index.pending == 0
    assert np.array_equal(np.sort(index.inside(AREA)), truth(AREA, keys, lon, lat))


def test_moves_past_the_threshold_during_a_merge_wait_for_it_and_are_merged_next():
    keys, lon, lat = KEYS.copy(), LON.copy(), LAT.copy()
    index = small_merges(SubscriberIndex.from_arrays(keys, lon, lat))
    merges: list[tuple[int, int]] = []

    def move_more() -> None:
        merges.append((threading.get_ident(), index.pending))
        if len(merges) == 1:
            lon[:2000] += 0.05
            index.update(keys[:2000], lon[:2000], lat[:2000])
            merges.append((threading.get_ident(), index.pending))

    index.merge_hook = move_more
    lon[5000:6000] -= 0.05
    index.update(keys[5000:6000], lon[5000:6000], lat[5000:6000])
    assert index.wait_for_merge(timeout=60)

    # The update made during the first merge only joined the delta (1000 frozen + 2000 new);
    # the merging thread merged it once the first merge was done, with no other thread.
    first, during, second = merges
    assert first[1] == 1000
    assert during[1] == 3000
    assert second[1] == 2000
    assert first[0] == during[0] == second[0] != threading.get_ident()
    assert index.pending == 0
    assert np.array_equal(np.sort(index.inside(AREA)), truth(AREA, keys, lon, lat))
