"""Synthetic subscribers are deterministic, in China, and crowd around big cities."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from subscribers import InvalidSubscriber, SubscriberIndex, synthetic


def test_the_same_seed_gives_the_same_subscribers_and_another_seed_others():
    a = synthetic.generate(10_000, seed=4)
    b = synthetic.generate(10_000, seed=4)
    c = synthetic.generate(10_000, seed=5)

    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_subscribers_live_in_and_around_china_weighted_by_population():
    keys, lon, lat = synthetic.generate(100_000, seed=0)

    assert np.array_equal(keys, np.arange(100_000))
    assert lon.min() > 70 and lon.max() < 137 and lat.min() > 15 and lat.max() < 55
    index = SubscriberIndex.from_arrays(keys, lon, lat)
    near_shanghai = len(index.inside(shapely.Point(121.47, 31.23).buffer(0.5)))
    near_lhasa = len(index.inside(shapely.Point(91.11, 29.65).buffer(0.5)))
    assert near_shanghai > 10 * max(near_lhasa, 1)


def test_a_negative_count_is_refused():
    with pytest.raises(InvalidSubscriber, match="0 or more"):
        synthetic.generate(-1)
