"""The in-memory spatial index that answers "which subscribers are inside this area".

Every tick of every open case asks it for the subscribers inside a ring, so it is built for
that one question, on plain numpy arrays.

Layout. Points are sorted by a Morton (Z-order) code of a fixed 2**16 x 2**16 lon/lat grid
(cells of 0.0055 x 0.0027 degrees, about 500 x 300 m in China). A cell of any coarser level
is then one contiguous run of the sorted arrays, found with two binary searches. The arrays
are ``codes`` (uint32), ``lon``, ``lat`` (float64, exactly as given) and ``keys`` (int64),
plus a key-sorted copy of the keys and their positions (int32) for updates: 40 bytes a point.

Query. The area's boundary is first rasterised: its rings are cut into pieces of at most half
a cell, and every cell under a piece (widened by 1e-9 degree, so that rounding can never
misfile a point) is marked, at the finest level the boundary's length allows. Then the area's
bounding box is cut into a few cells of a level chosen for its size, and each cell is
classified: a cell with no marked cell under it lies wholly inside or wholly outside, and one
``contains_xy`` on its centre says which; a cell inside is taken whole, its run of the sorted
arrays copied without a test per point; a boundary cell is split (two levels at a time) until
it holds few points or the finest level is reached, and then its points are tested one by one
with ``shapely.contains_xy``. The result is therefore exactly the set ``shapely.contains_xy``
selects on that geometry: a point on the boundary is outside. Geometries that are not
polygons (lines, collections) are classified by asking shapely about each cell's box instead.

Updates. A point that moves within its finest cell is rewritten in place. A point that moves
to another cell, or a new point, is marked dead in the sorted arrays (its key becomes a
sentinel) and put in a small key-sorted side table, the delta, which every query scans with
a bounding-box filter and ``contains_xy``. When the delta grows past a fraction of the index,
it is merged into the sorted arrays in linear time (no full re-sort).

Locking. A readers-writer lock: queries hold it shared, so they run side by side (numpy and
shapely release the interpreter lock while they work, so they share the cores); an update or
a removal holds it alone for the short time it writes, so every query sees one state, the
one between two writes. A merge takes seconds at tens of millions of points, so it holds the
lock alone only twice, briefly: to freeze the delta (a fresh one takes its place) and to swap
the merged arrays in. In between, with no lock held, it reads the sorted arrays and the frozen
delta, which nothing writes meanwhile: an update or removal that arrives then hides its keys
from them (a sorted key set that queries filter by) and writes only the fresh delta; at the
swap the hidden keys are marked dead in the merged arrays. While a merge runs the index holds
the old and the merged arrays, about twice its steady-state bytes.

Threads. ``inside``, ``inside_ring``, ``update`` and ``remove`` do their work on the caller's
thread and never wait for a merge (only, briefly, for a write or a freeze or swap). When an
update brings the delta past its threshold, it starts one daemon thread that runs the merge
and returns at once; the dispatcher calls ``update`` from its event loop, which a merge on
the caller's thread would stall for seconds. One merge runs at a time: an update during a
merge only adds to the fresh delta, however far past the threshold that takes it, and the
merging thread checks the threshold again after each swap and merges again while it is
exceeded. A background merge that fails keeps every change (the frozen delta goes back into
the delta), is logged once at error level, and the next update that finds the delta past its
threshold tries again. ``compact`` merges on the caller's thread: it waits for a merge under
way, then merges what is left, and raises if that fails; ``wait_for_merge`` only waits.
Not chosen: leaving the merge on the updating thread and having callers run ``update`` in
an executor. Every caller would have to know to, and its updates would queue behind a merge.

Chosen against: an STRtree or R-tree over points (a Python object per point, ten times the
memory, and every candidate still tested), and H3 or S2 cell covers (inexact at the edge,
so every boundary cell's points need the exact test anyway, and the cover itself costs more
than this grid's arithmetic).

Positions are personal data: nothing here logs a coordinate, only counts.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from subscribers.errors import InvalidSubscriber, invalidity_reason
from subscribers.rwlock import SharedLock

__all__ = ["SubscriberIndex"]

logger = logging.getLogger(__name__)

_FINEST_LEVEL = 16
_CELLS_PER_AXIS = 1 << _FINEST_LEVEL
_CELL_PAD_DEG = 1e-9
_DEAD = np.iinfo(np.int64).min

Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _spread_bits(v: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # Put a zero bit between each of the low 16 bits of v.
    v = (v | (v << np.uint64(8))) & np.uint64(0x00FF00FF)
    v = (v | (v << np.uint64(4))) & np.uint64(0x0F0F0F0F)
    v = (v | (v << np.uint64(2))) & np.uint64(0x33333333)
    return (v | (v << np.uint64(1))) & np.uint64(0x55555555)


_SPREAD_BYTE = _spread_bits(np.arange(256, dtype=np.uint64))
_SPREAD_BYTE_Y = _SPREAD_BYTE << np.uint64(1)


def _morton(ix: npt.NDArray[Any], iy: npt.NDArray[Any]) -> npt.NDArray[np.uint64]:
    """Morton code of cells (ix, iy) of one level, x in the even bits."""
    if len(ix) > 4096:
        x, y = ix.astype(np.uint64), iy.astype(np.uint64)
        return _spread_bits(x) | (_spread_bits(y) << np.uint64(1))

    # Few cells (the common case in a query): look the bytes up, fewer numpy calls.
    x, y = ix.astype(np.intp), iy.astype(np.intp)
    low = _SPREAD_BYTE[x & 255] | _SPREAD_BYTE_Y[y & 255]
    return low | ((_SPREAD_BYTE[x >> 8] | _SPREAD_BYTE_Y[y >> 8]) << np.uint64(16))


def _finest_cells(lon: FloatArray, lat: FloatArray) -> tuple[Int64Array, Int64Array]:
    ix = np.floor((lon + 180.0) * (_CELLS_PER_AXIS / 360.0)).astype(np.int64)
    iy = np.floor((lat + 90.0) * (_CELLS_PER_AXIS / 180.0)).astype(np.int64)
    np.clip(ix, 0, _CELLS_PER_AXIS - 1, out=ix)
    np.clip(iy, 0, _CELLS_PER_AXIS - 1, out=iy)
    return ix, iy


def _codes_of(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.uint32]:
    ix, iy = _finest_cells(lon, lat)
    return _morton(ix, iy).astype(np.uint32)


def _expand_ranges(starts: Int64Array, ends: Int64Array) -> Int64Array:
    """All positions of the half-open ranges [starts[i], ends[i]), concatenated."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)


def _last_of_each_key(keys: Int64Array) -> Int64Array:
    """Positions of the last occurrence of every distinct key, in ascending key order."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = sorted_keys[1:] != sorted_keys[:-1]
    return order[last]


def _checked_arrays(keys: Any, lon: Any, lat: Any) -> tuple[Int64Array, FloatArray, FloatArray]:
    """The three arrays as int64 / float64, or InvalidSubscriber with a sentence."""
    for name, values in (("lon", lon), ("lat", lat)):
        if np.asarray(values).dtype == np.bool_:
            raise InvalidSubscriber(f"{name} must be numbers of degrees, got booleans")
    try:
        k = np.ascontiguousarray(keys, dtype=np.int64)
        x = np.ascontiguousarray(lon, dtype=np.float64)
        y = np.ascontiguousarray(lat, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidSubscriber(
            f"keys must be int64 and lon/lat numbers, but they could not be converted: {exc}"
        ) from None
    if k.ndim != 1 or x.ndim != 1 or y.ndim != 1:
        raise InvalidSubscriber("keys, lon and lat must be one-dimensional arrays")
    if not len(k) == len(x) == len(y):
        raise InvalidSubscriber(
            f"keys, lon and lat must have the same length, got {len(k)}, {len(x)} and {len(y)}"
        )
    if len(k) and bool((k == _DEAD).any()):
        raise InvalidSubscriber(f"a key must not be {_DEAD}, which the index reserves")
    bad_lat = ~((y >= -90.0) & (y <= 90.0))
    if bad_lat.any():
        raise InvalidSubscriber(
            f"latitude must be within -90..90; {int(bad_lat.sum())} values are not"
        )
    bad_lon = ~((x >= -180.0) & (x <= 180.0))
    if bad_lon.any():
        raise InvalidSubscriber(
            f"longitude must be within -180..180; {int(bad_lon.sum())} values are not"
        )
    return k, x, y


class SubscriberIndex:
    """Points (int64 key, lon, lat) answering "which keys are inside this geometry", exactly.

    Build it with :meth:`from_arrays`. ``inside`` returns the keys whose point satisfies
    ``shapely.contains_xy(geometry, lon, lat)``, in no particular order. ``update`` moves or
    adds points, ``remove`` deletes them; both are seen by the next query, and may be called
    from other threads while queries run. Merges of moved points run on a thread of their own
    (see the module docstring); ``compact`` and ``wait_for_merge`` wait for them.
    """

    #: Boundary cells holding at most this many points are tested point by point.
    leaf_points: int = 128

    def __init__(self) -> None:
        self._lock = SharedLock()
        self._merge_lock = threading.Lock()
        self._codes: npt.NDArray[np.uint32] = np.empty(0, dtype=np.uint32)
        self._lon: FloatArray = np.empty(0)
        self._lat: FloatArray = np.empty(0)
        self._keys: Int64Array = np.empty(0, dtype=np.int64)
        self._key_sorted: Int64Array = np.empty(0, dtype=np.int64)
        self._key_pos: npt.NDArray[np.integer[Any]] = np.empty(0, dtype=np.int32)
        self._dead = 0
        self._delta_keys: Int64Array = np.empty(0, dtype=np.int64)
        self._delta_lon: FloatArray = np.empty(0)
        self._delta_lat: FloatArray = np.empty(0)
        # While a merge runs: the delta it merges, and the keys changed since, whose entries
        # in the sorted arrays and the frozen delta are no longer true.
        self._merging = False
        # Whether the merging thread runs (or is about to); set, cleared and read under the
        # exclusive lock, and mirrored by _merge_idle for those who wait for it.
        self._merger_running = False
        self._merge_idle = threading.Event()
        self._merge_idle.set()
        self._frozen_keys: Int64Array = np.empty(0, dtype=np.int64)
        self._frozen_lon: FloatArray = np.empty(0)
        self._frozen_lat: FloatArray = np.empty(0)
        self._hidden: Int64Array = np.empty(0, dtype=np.int64)
        self._hidden_alive = 0
        self.compact_fraction = 1 / 32
        self.compact_min = 65_536
        #: Called by a merge once its arrays are built, before they are swapped in, with no
        #: lock held: a place for tests to act while a merge is under way.
        self.merge_hook: Callable[[], None] | None = None

    # -- building ------------------------------------------------------------------------

    @classmethod
    def from_arrays(cls, keys: Any, lon: Any, lat: Any) -> SubscriberIndex:
        """Build an index from parallel arrays of int64 keys and WGS84 lon/lat degrees.

        Keys must be distinct. The coordinates are kept exactly as given (float64).
        """
        k, x, y = _checked_arrays(keys, lon, lat)
        n = len(k)

        # (1) key order, for the distinctness check and the key lookup (often already sorted).
        if n < 2 or bool((k[1:] > k[:-1]).all()):
            key_order: Int64Array = np.arange(n, dtype=np.int64)
        else:
            key_order = np.argsort(k, kind="stable")
            sorted_keys = k[key_order]
            repeated = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
            if len(repeated):
                twice = int(sorted_keys[repeated[0]])
                raise InvalidSubscriber(f"keys must be distinct, but key {twice} appears twice")

        # (2) cell order: sort (code, position) packed into one uint64, faster than argsort.
        codes = _codes_of(x, y)
        if n < 2**32:
            packed = (codes.astype(np.uint64) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
            packed.sort()
            order = (packed & np.uint64(0xFFFFFFFF)).astype(np.int64)
            del packed
        else:
            order = np.argsort(codes, kind="stable")

        index = cls()
        index._codes = codes[order]
        index._lon = x[order]
        index._lat = y[order]
        index._keys = k[order]

        # (3) the key lookup: where each key, in key order, now sits in cell order.
        cell_rank = np.empty(n, dtype=index._position_dtype(n))
        cell_rank[order] = np.arange(n, dtype=cell_rank.dtype)
        index._key_sorted = k[key_order]
        index._key_pos = cell_rank[key_order]
        logger.info("subscriber index built points=%d", n)
        return index

    @staticmethod
    def _position_dtype(n: int) -> type[np.integer[Any]]:
        return np.int32 if n < 2**31 else np.int64

    # -- size ----------------------------------------------------------------------------

    def __len__(self) -> int:
        with self._lock.shared():
            return self._size()

    def _size(self) -> int:
        frozen = len(self._frozen_keys) - self._hidden_alive
        return len(self._keys) - self._dead + frozen + len(self._delta_keys)

    @property
    def pending(self) -> int:
        """Moved or added points not yet merged into the sorted arrays."""
        with self._lock.shared():
            return len(self._frozen_keys) + len(self._delta_keys)

    @property
    def nbytes(self) -> int:
        """Bytes held by the index's arrays."""
        arrays = (
            self._codes,
            self._lon,
            self._lat,
            self._keys,
            self._key_sorted,
            self._key_pos,
            self._delta_keys,
            self._delta_lon,
            self._delta_lat,
            self._frozen_keys,
            self._frozen_lon,
            self._frozen_lat,
            self._hidden,
        )
        return sum(a.nbytes for a in arrays)

    # -- queries -------------------------------------------------------------------------

    def inside(self, geometry: BaseGeometry) -> Int64Array:
        """Keys of the points inside ``geometry`` (lon/lat), as ``shapely.contains_xy`` says."""
        return self._select(geometry, None)

    def inside_ring(self, area_now: BaseGeometry, area_before: BaseGeometry | None) -> Int64Array:
        """Keys inside ``area_now`` and not inside ``area_before``, both by ``contains_xy``.

        The same set as ``inside`` on the difference geometry, up to how GEOS rounds the
        difference's new vertices; this form needs no overlay.
        """
        if area_before is None or area_before.is_empty:
            return self._select(area_now, None)
        return self._select(area_now, area_before)

    def _select(self, geometry: BaseGeometry, excluded: BaseGeometry | None) -> Int64Array:
        if not isinstance(geometry, BaseGeometry):
            raise InvalidSubscriber(
                f"a query area must be a shapely geometry, got {type(geometry).__name__}"
            )
        if geometry.is_empty:
            return np.empty(0, dtype=np.int64)
        if excluded is None:
            area, without = _QueryArea(geometry), None
        else:
            polygons = [g for g in (geometry, excluded) if _polygonal(g)]
            level = (
                _edge_level([_ring_coordinates(g) for g in polygons]) if polygons else _FINEST_LEVEL
            )
            area, without = _QueryArea(geometry, level), _QueryArea(excluded, level)
        with self._lock.shared():
            whole, tested = self._select_sorted(area, without)
            frozen = _select_points(
                self._frozen_keys, self._frozen_lon, self._frozen_lat, geometry, excluded
            )
            result = np.concatenate([*whole, tested, frozen])
            if self._dead:
                result = result[result != _DEAD]
            if len(self._hidden):
                result = result[~_member(result, self._hidden)]
            moved = _select_points(
                self._delta_keys, self._delta_lon, self._delta_lat, geometry, excluded
            )
        return np.concatenate([result, moved])

    def _select_sorted(
        self, area: _QueryArea, without: _QueryArea | None
    ) -> tuple[list[Int64Array], Int64Array]:
        if len(self._codes) == 0:
            return [], np.empty(0, dtype=np.int64)
        finest = (
            area.finest_level if without is None else min(area.finest_level, without.finest_level)
        )
        level, ix, iy = _start_cells(area.geometry.bounds, finest)

        # Cells stay in Morton order from level to level (children follow their parent), so
        # the binary searches below get sorted needles, which numpy searches much faster.
        cells = _morton(ix, iy)
        order = np.argsort(cells)
        cells, ix, iy = cells[order], ix[order], iy[order]
        whole_starts: list[Int64Array] = []
        whole_ends: list[Int64Array] = []
        test_starts: list[Int64Array] = []
        test_ends: list[Int64Array] = []

        while len(cells):
            # (1) cells wholly inside, and cells the boundary passes through.
            whole, touching = area.classify(level, cells, ix, iy)
            if without is not None:
                gone, near = without.classify(level, cells, ix, iy)
                touching |= whole & near
                touching &= ~gone
                whole &= ~(near | gone)

            # (2) the run of the sorted arrays under each of those cells (none for the rest).
            wanted = whole | touching
            if not wanted.all():
                cells, ix, iy = cells[wanted], ix[wanted], iy[wanted]
                whole, touching = whole[wanted], touching[wanted]
            shift = np.uint64(2 * (_FINEST_LEVEL - level))
            first = cells << shift
            last = first | ((np.uint64(1) << shift) - np.uint64(1))
            starts, ends = self._runs_of(first, last)
            whole_starts.append(starts[whole])
            whole_ends.append(ends[whole])

            # (3) boundary cells: test small ones point by point, split the others.
            small = ends - starts <= self.leaf_points
            leaf = touching if level >= finest else touching & small
            split = touching & ~leaf
            test_starts.append(starts[leaf])
            test_ends.append(ends[leaf])
            if not split.any():
                break
            # Descend two levels at once where possible: half the steps, a few more cells.
            step = min(_DESCENT_STEP, finest - level)
            child_codes, child_x, child_y = _DESCENDANTS[step]
            cells = ((cells[split] << np.uint64(2 * step))[:, None] | child_codes).ravel()
            ix = ((ix[split] << step)[:, None] | child_x).ravel()
            iy = ((iy[split] << step)[:, None] | child_y).ravel()
            level += step

        return self._take_runs(whole_starts, whole_ends), self._test_runs(
            test_starts, test_ends, area.geometry, None if without is None else without.geometry
        )

    def _runs_of(
        self, first: npt.NDArray[np.uint64], last: npt.NDArray[np.uint64]
    ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """[start, end) of the sorted arrays for cells of codes [first, last], in code order.

        Neighbouring cells share a bound (the end of one is the start of the next), so only
        the ends of cells not followed by their neighbour need a search of their own.
        """
        starts = np.searchsorted(self._codes, first.astype(np.uint32), side="left")
        ends = np.empty_like(starts)
        ends[:-1] = starts[1:]
        alone = np.ones(len(first), dtype=bool)
        alone[:-1] = first[1:] != last[:-1] + np.uint64(1)
        ends[alone] = np.searchsorted(self._codes, last[alone].astype(np.uint32), side="right")
        return starts, ends

    def _take_runs(self, starts: list[Int64Array], ends: list[Int64Array]) -> list[Int64Array]:
        """The keys of whole cells, as views of the sorted arrays (copied once, by the caller)."""
        if not starts:
            return []
        s = np.concatenate(starts).astype(np.int64)
        e = np.concatenate(ends).astype(np.int64)

        # Runs of neighbouring cells often touch: join them, so each run is one slice.
        order = np.argsort(s)
        s, e = s[order], e[order]
        opens = np.ones(len(s), dtype=bool)
        opens[1:] = s[1:] != e[:-1]
        closes = np.ones(len(s), dtype=bool)
        closes[:-1] = opens[1:]
        keys = self._keys
        return [keys[a:b] for a, b in zip(s[opens].tolist(), e[closes].tolist(), strict=True)]

    def _test_runs(
        self,
        starts: list[Int64Array],
        ends: list[Int64Array],
        geometry: BaseGeometry,
        excluded: BaseGeometry | None,
    ) -> Int64Array:
        if not starts:
            return np.empty(0, dtype=np.int64)
        positions = _expand_ranges(
            np.concatenate(starts).astype(np.int64), np.concatenate(ends).astype(np.int64)
        )
        x, y = self._lon[positions], self._lat[positions]
        hit = shapely.contains_xy(geometry, x, y)
        if excluded is not None:
            hit &= ~shapely.contains_xy(excluded, x, y)
        return self._keys[positions[hit]]

    # -- updates -------------------------------------------------------------------------

    def update(self, keys: Any, lon: Any, lat: Any) -> None:
        """Move the points of ``keys`` to (lon, lat), adding the keys not yet indexed.

        When a key appears more than once in one call, its last position wins. The call that
        brings the delta past its threshold starts a merge on the merging thread and returns
        without waiting for it.
        """
        k, x, y = _checked_arrays(keys, lon, lat)
        if not len(k):
            return
        last = _last_of_each_key(k)
        k, x, y = k[last], x[last], y[last]
        codes = _codes_of(x, y)

        with self._lock.exclusive():
            if self._merging:
                # The sorted arrays are being read by the merge: hide, never write, them.
                self._hide(k)
                self._delta_put(k, x, y)
            else:
                # (1) points alive in the sorted arrays that stay in their cell: rewrite.
                main_pos, found = self._positions_of(k)
                alive = np.zeros(len(k), dtype=bool)
                alive[found] = self._keys[main_pos] != _DEAD
                stay = np.zeros(len(k), dtype=bool)
                stay[alive] = self._codes[main_pos[alive[found]]] == codes[alive]
                stay_pos = main_pos[stay[found]]
                self._lon[stay_pos] = x[stay]
                self._lat[stay_pos] = y[stay]

                # (2) points that leave their cell: mark dead where they were.
                self._kill(main_pos[(alive & ~stay)[found]])

                # (3) everything not rewritten in place goes to the delta.
                to_delta = ~stay
                self._delta_put(k[to_delta], x[to_delta], y[to_delta])
            start = self._claim_merger()
        if start:
            self._start_merger()

    def remove(self, keys: Any) -> int:
        """Delete the points of ``keys``; returns how many were there; unknown keys are skipped."""
        try:
            k = np.unique(np.asarray(keys, dtype=np.int64).ravel())
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidSubscriber(f"keys to remove must be int64 values: {exc}") from None
        with self._lock.exclusive():
            if self._merging:
                removed = self._hide(k)
            else:
                main_pos, _ = self._positions_of(k)
                main_pos = main_pos[self._keys[main_pos] != _DEAD]
                removed = len(main_pos)
                self._kill(main_pos)
            removed += self._delta_drop(k)
        return removed

    def compact(self) -> None:
        """Merge pending moves into the sorted arrays and drop dead entries, on this thread.

        Waits for a merge already under way, then merges what arrived since; raises what the
        merge raises, with nothing lost.
        """
        self._merge(only_if_due=False)

    def wait_for_merge(self, timeout: float | None = None) -> bool:
        """Wait for the merging thread to stop: True, or False if ``timeout`` (s) ran out first.

        It stops once the delta is below its threshold or a merge has failed; with no merging
        thread this returns True at once.
        """
        return self._merge_idle.wait(timeout)

    def _positions_of(self, keys: Int64Array) -> tuple[Int64Array, npt.NDArray[np.bool_]]:
        """Positions in the sorted arrays of those keys that have one, and which keys do."""
        if not len(self._key_sorted):
            return np.empty(0, dtype=np.int64), np.zeros(len(keys), dtype=bool)
        at = np.searchsorted(self._key_sorted, keys)
        np.minimum(at, len(self._key_sorted) - 1, out=at)
        found = self._key_sorted[at] == keys
        return self._key_pos[at[found]].astype(np.int64), found

    def _kill(self, positions: Int64Array) -> None:
        if not len(positions):
            return
        self._keys[positions] = _DEAD
        self._lon[positions] = np.nan
        self._lat[positions] = np.nan
        self._dead += len(positions)

    def _kill_keys(self, keys: Int64Array) -> None:
        """Mark dead the entries of ``keys`` alive in the sorted arrays."""
        positions, _ = self._positions_of(keys)
        self._kill(positions[self._keys[positions] != _DEAD])

    def _hide(self, keys: Int64Array) -> int:
        """Hide sorted, distinct keys from the frozen state; returns how many were alive there."""
        fresh = keys[~_member(keys, self._hidden)]
        positions, found = self._positions_of(fresh)
        alive = np.zeros(len(fresh), dtype=bool)
        alive[found] = self._keys[positions] != _DEAD
        alive |= _member(fresh, self._frozen_keys)
        # fresh is sorted and disjoint from the hidden keys: a linear insert, no new sort.
        self._hidden = np.insert(self._hidden, np.searchsorted(self._hidden, fresh), fresh)
        count = int(alive.sum())
        self._hidden_alive += count
        return count

    def _delta_put(self, keys: Int64Array, lon: FloatArray, lat: FloatArray) -> None:
        """Put sorted, distinct keys in the delta: known ones in place, new ones inserted."""
        if not len(keys):
            return
        at = np.searchsorted(self._delta_keys, keys)
        known = np.zeros(len(keys), dtype=bool)
        within = at < len(self._delta_keys)
        known[within] = self._delta_keys[at[within]] == keys[within]
        self._delta_lon[at[known]] = lon[known]
        self._delta_lat[at[known]] = lat[known]
        new = ~known
        if new.any():
            self._delta_keys = np.insert(self._delta_keys, at[new], keys[new])
            self._delta_lon = np.insert(self._delta_lon, at[new], lon[new])
            self._delta_lat = np.insert(self._delta_lat, at[new], lat[new])

    def _delta_drop(self, keys: Int64Array) -> int:
        """Drop sorted, distinct keys from the delta; returns how many were there."""
        if not len(self._delta_keys):
            return 0
        gone = _member(self._delta_keys, keys)
        if gone.any():
            keep = ~gone
            self._delta_keys = self._delta_keys[keep]
            self._delta_lon = self._delta_lon[keep]
            self._delta_lat = self._delta_lat[keep]
        return int(gone.sum())

    # -- merging -------------------------------------------------------------------------

    def _merge_due(self) -> bool:
        if self._merging:
            return False
        return len(self._delta_keys) > max(self.compact_min, self.compact_fraction * self._size())

    def _claim_merger(self) -> bool:
        """Under the exclusive lock: whether to start the merging thread, marked as running."""
        if self._merger_running or not self._merge_due():
            return False
        self._merger_running = True
        self._merge_idle.clear()
        return True

    def _start_merger(self) -> None:
        merger = threading.Thread(
            target=self._merge_in_background, name="subscriber-index-merge", daemon=True
        )
        try:
            merger.start()
        except RuntimeError as exc:
            # No thread to be had: the moves wait in the delta, and the next update tries again.
            with self._lock.exclusive():
                self._merger_stopped()
            logger.error("subscriber index merge not started reason=%s", exc)

    def _merge_in_background(self) -> None:
        """The merging thread: merge while the delta is past its threshold, then stop."""
        stopped = False
        try:
            while not stopped:
                self._merge(only_if_due=True)

                # Moves that came during the merge may be due already: merge them too.
                with self._lock.exclusive():
                    if not self._merge_due():
                        self._merger_stopped()
                        stopped = True
        except Exception as exc:
            logger.error(
                "subscriber index merge failed, moves kept for the next one error=%s reason=%s",
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
        finally:
            if not stopped:
                with self._lock.exclusive():
                    self._merger_stopped()

    def _merger_stopped(self) -> None:
        self._merger_running = False
        self._merge_idle.set()

    def _merge(self, only_if_due: bool) -> None:
        """Merge the delta into the sorted arrays, holding the index only to freeze and swap.

        (1) Under the exclusive lock, freeze: the delta becomes the frozen delta and a new,
        empty delta takes its place. From then on nothing writes the sorted arrays or the
        frozen delta; an update or removal hides its keys from them and writes the new delta.
        (2) With no lock held, build the merged arrays from the frozen state.
        (3) Under the exclusive lock, swap them in and mark dead the keys hidden meanwhile.
        """
        self._merge_lock.acquire()
        try:
            # (1)
            with self._lock.exclusive():
                if only_if_due and not self._merge_due():
                    return
                self._frozen_keys = self._delta_keys
                self._frozen_lon = self._delta_lon
                self._frozen_lat = self._delta_lat
                self._delta_keys = np.empty(0, dtype=np.int64)
                self._delta_lon = np.empty(0)
                self._delta_lat = np.empty(0)
                self._merging = True
            pending, dead = len(self._frozen_keys), self._dead

            # (2)
            try:
                merged = _merged(
                    self._codes,
                    self._lon,
                    self._lat,
                    self._keys,
                    self._key_sorted,
                    self._key_pos,
                    self._frozen_keys,
                    self._frozen_lon,
                    self._frozen_lat,
                )
                if self.merge_hook is not None:
                    self.merge_hook()
            except BaseException:
                with self._lock.exclusive():
                    self._thaw()
                raise

            # (3)
            with self._lock.exclusive():
                self._codes, self._lon, self._lat, self._keys = merged[:4]
                self._key_sorted, self._key_pos = merged[4:]
                self._dead = 0
                self._kill_keys(self._hidden)
                self._end_merge()
        finally:
            self._merge_lock.release()
        logger.debug("subscriber index compacted merged=%d dropped=%d", pending, dead)

    def _thaw(self) -> None:
        """Give up a merge: back to the sorted arrays and one delta, nothing lost."""
        self._kill_keys(self._hidden)
        keep = ~_member(self._frozen_keys, self._hidden)
        keys = np.concatenate([self._frozen_keys[keep], self._delta_keys])
        order = np.argsort(keys, kind="stable")
        self._delta_lon = np.concatenate([self._frozen_lon[keep], self._delta_lon])[order]
        self._delta_lat = np.concatenate([self._frozen_lat[keep], self._delta_lat])[order]
        self._delta_keys = keys[order]
        self._end_merge()

    def _end_merge(self) -> None:
        self._frozen_keys = np.empty(0, dtype=np.int64)
        self._frozen_lon = np.empty(0)
        self._frozen_lat = np.empty(0)
        self._hidden = np.empty(0, dtype=np.int64)
        self._hidden_alive = 0
        self._merging = False


def _member(values: Int64Array, sorted_set: Int64Array) -> npt.NDArray[np.bool_]:
    """Which of ``values`` are in ``sorted_set`` (sorted, distinct)."""
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    at = np.searchsorted(sorted_set, values)
    np.minimum(at, len(sorted_set) - 1, out=at)
    return sorted_set[at] == values


def _merged(
    codes: npt.NDArray[np.uint32],
    lon: FloatArray,
    lat: FloatArray,
    keys: Int64Array,
    key_sorted: Int64Array,
    key_pos: npt.NDArray[np.integer[Any]],
    delta_keys: Int64Array,
    delta_lon: FloatArray,
    delta_lat: FloatArray,
) -> tuple[
    npt.NDArray[np.uint32],
    FloatArray,
    FloatArray,
    Int64Array,
    Int64Array,
    npt.NDArray[np.integer[Any]],
]:
    """The sorted arrays and key lookup with the delta merged in and dead entries dropped.

    Reads its arguments and writes none of them; the result shares no memory with them.
    """
    pending = len(delta_keys)

    # (1) the delta in cell order, and where it goes among the live sorted entries.
    alive = keys != _DEAD
    delta_codes = _codes_of(delta_lon, delta_lat)
    by_code = np.argsort(delta_codes, kind="stable")
    live_codes = codes[alive]
    at = np.searchsorted(live_codes, delta_codes[by_code], side="right")

    # (2) the merged sorted arrays: sequential inserts, no full sort.
    new_codes = np.insert(live_codes, at, delta_codes[by_code])
    new_lon = np.insert(lon[alive], at, delta_lon[by_code])
    new_lat = np.insert(lat[alive], at, delta_lat[by_code])
    new_keys = np.insert(keys[alive], at, delta_keys[by_code])

    # (3) where every old live position went, and where each delta entry landed.
    live = int(alive.sum())
    moved_by = np.cumsum(np.bincount(at, minlength=live + 1))[:live]
    new_position = np.full(len(alive), -1, dtype=np.int64)
    new_position[alive] = np.arange(live, dtype=np.int64) + moved_by
    delta_position = np.empty(pending, dtype=np.int64)
    delta_position[by_code] = at + np.arange(pending, dtype=np.int64)

    # (4) the key lookup: live keys keep their order, the delta's keys are merged in.
    position_type = SubscriberIndex._position_dtype(len(new_keys))
    lookup_pos_all = new_position[key_pos]
    in_lookup = lookup_pos_all >= 0
    lookup_keys = key_sorted[in_lookup]
    lookup_pos = lookup_pos_all[in_lookup].astype(position_type)
    slot = np.searchsorted(lookup_keys, delta_keys)
    new_key_sorted = np.insert(lookup_keys, slot, delta_keys)
    new_key_pos = np.insert(lookup_pos, slot, delta_position.astype(position_type))
    return new_codes, new_lon, new_lat, new_keys, new_key_sorted, new_key_pos


def _select_points(
    keys: Int64Array,
    x: FloatArray,
    y: FloatArray,
    geometry: BaseGeometry,
    excluded: BaseGeometry | None,
) -> Int64Array:
    """Keys of unsorted points inside ``geometry`` and not inside ``excluded``."""
    if len(keys) == 0:
        return np.empty(0, dtype=np.int64)
    minx, miny, maxx, maxy = geometry.bounds

    # Latitude first: an area's band of latitudes holds few of the country's points.
    near = np.flatnonzero((y >= miny) & (y <= maxy))
    near = near[(x[near] >= minx) & (x[near] <= maxx)]
    hit = shapely.contains_xy(geometry, x[near], y[near])
    if excluded is not None:
        hit &= ~shapely.contains_xy(excluded, x[near], y[near])
    return keys[near[hit]]


def _polygonal(geometry: BaseGeometry) -> bool:
    return geometry.geom_type in ("Polygon", "MultiPolygon")


def _start_cells(bounds: Sequence[float], finest_level: int) -> tuple[int, Int64Array, Int64Array]:
    """A level at which the bounds span a few cells a side, and the cells they cover."""
    minx, miny, maxx, maxy = bounds
    minx, maxx = max(minx, -180.0), min(maxx, 180.0)
    miny, maxy = max(miny, -90.0), min(maxy, 90.0)
    span = max((maxx - minx) / 360.0, (maxy - miny) / 180.0, 2.0**-_FINEST_LEVEL)
    level = min(max(math.floor(-math.log2(span)) + _START_CELLS_LOG2, 0), finest_level)
    cells = 1 << level
    ix0, ix1 = (math.floor((v + 180.0) * cells / 360.0) for v in (minx, maxx))
    iy0, iy1 = (math.floor((v + 90.0) * cells / 180.0) for v in (miny, maxy))
    xs = np.arange(max(ix0, 0), min(ix1, cells - 1) + 1, dtype=np.int64)
    ys = np.arange(max(iy0, 0), min(iy1, cells - 1) + 1, dtype=np.int64)
    return level, np.tile(xs, len(ys)), np.repeat(ys, len(xs))


# Levels a boundary cell descends at once (2: its 16 grandchildren), and how many cells a side
# the query's bounding box spans at the first level (about 2**_START_CELLS_LOG2). Both trade
# numpy calls per level against cells per call; measured flat around these values.
_DESCENT_STEP = 2
_START_CELLS_LOG2 = 2


def _descendants(step: int) -> tuple[npt.NDArray[np.uint64], Int64Array, Int64Array]:
    """Morton suffixes of a cell's descendants ``step`` levels down, and their x/y offsets."""
    side = np.arange(1 << step, dtype=np.int64)
    dx, dy = (a.ravel() for a in np.meshgrid(side, side))
    codes = _morton(dx, dy)
    order = np.argsort(codes)
    return codes[order], dx[order], dy[order]


_DESCENDANTS = {step: _descendants(step) for step in range(1, _DESCENT_STEP + 1)}
# Boundary pieces rasterised per query: a longer boundary is rasterised at a coarser level.
_MAX_EDGE_PIECES = 8_000


def _ring_coordinates(geometry: BaseGeometry) -> tuple[FloatArray, Int64Array]:
    """Vertices of every ring of a polygonal geometry, and the ring each belongs to."""
    rings = shapely.get_rings(shapely.get_parts(geometry))
    return shapely.get_coordinates(rings, return_index=True)


def _edge_level(rings: Sequence[tuple[FloatArray, Int64Array]]) -> int:
    """The finest level at which rasterising these rings stays cheap."""
    perimeter_deg = 0.0
    for coords, ring_of in rings:
        same = ring_of[1:] == ring_of[:-1]
        steps = np.abs(np.diff(coords, axis=0))[same]
        perimeter_deg += float((steps[:, 0] / 360.0 + steps[:, 1] / 180.0).sum())
    level = _FINEST_LEVEL
    while level > 0 and perimeter_deg * 2.0 * (1 << level) > _MAX_EDGE_PIECES:
        level -= 1
    return level


def _edge_cells(coords: FloatArray, ring_of: Int64Array, level: int) -> npt.NDArray[np.uint64]:
    """Sorted Morton codes of every level-``level`` cell that the boundary may touch.

    The rings are cut into pieces of at most half a cell; the cells under each piece's box,
    widened by the cell padding, are marked. That is a superset of the cells the boundary
    meets, so a cell left unmarked lies wholly inside or wholly outside the area.
    """
    n = 1 << level

    # (1) vertices in cell units, and every edge cut into pieces of at most half a cell.
    u = (coords[:, 0] + 180.0) * (n / 360.0)
    v = (coords[:, 1] + 90.0) * (n / 180.0)
    same = ring_of[1:] == ring_of[:-1]
    u0, v0 = u[:-1][same], v[:-1][same]
    du, dv = (u[1:] - u[:-1])[same], (v[1:] - v[:-1])[same]
    pieces = np.ceil(2.0 * np.maximum(np.abs(du), np.abs(dv))).astype(np.int64)
    np.maximum(pieces, 1, out=pieces)
    edge = np.repeat(np.arange(len(u0)), pieces)
    start = np.arange(int(pieces.sum())) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    frac, step = start / pieces[edge], 1.0 / pieces[edge]
    au, av = u0[edge] + du[edge] * frac, v0[edge] + dv[edge] * frac
    bu, bv = au + du[edge] * step, av + dv[edge] * step

    # (2) the cells under each piece's widened box: one, or two or four where it crosses.
    pad_u, pad_v = _CELL_PAD_DEG * (n / 360.0), _CELL_PAD_DEG * (n / 180.0)
    lo_x = np.floor(np.minimum(au, bu) - pad_u).astype(np.int64)
    hi_x = np.floor(np.maximum(au, bu) + pad_u).astype(np.int64)
    lo_y = np.floor(np.minimum(av, bv) - pad_v).astype(np.int64)
    hi_y = np.floor(np.maximum(av, bv) + pad_v).astype(np.int64)
    wide, tall = hi_x > lo_x, hi_y > lo_y
    both = wide & tall
    cx = np.concatenate([lo_x, lo_x[wide] + 1, lo_x[tall], lo_x[both] + 1])
    cy = np.concatenate([lo_y, lo_y[wide], lo_y[tall] + 1, lo_y[both] + 1])
    np.clip(cx, 0, n - 1, out=cx)
    np.clip(cy, 0, n - 1, out=cy)
    marked = _morton(cx, cy)
    marked.sort()
    return marked


class _QueryArea:
    """A query geometry, prepared for telling cells inside, outside and on its boundary.

    For polygons the boundary is rasterised once (``_edge_cells``) and a cell is on the
    boundary when a marked cell lies under it; any other cell is wholly inside or wholly
    outside, so its centre decides. Other geometries ask shapely about each cell's box.
    """

    def __init__(self, geometry: BaseGeometry, edge_level: int | None = None) -> None:
        if not geometry.is_valid:
            reason = invalidity_reason(geometry)
            raise InvalidSubscriber(
                f"a query area must be a valid geometry, but this one is not ({reason})"
            )
        self.geometry = geometry
        shapely.prepare(geometry)
        self.edges: npt.NDArray[np.uint64] | None = None
        self.finest_level = _FINEST_LEVEL
        if _polygonal(geometry):
            coords, ring_of = _ring_coordinates(geometry)
            level = _edge_level([(coords, ring_of)]) if edge_level is None else edge_level
            self.edges = _edge_cells(coords, ring_of, level)
            self.finest_level = level

    def classify(
        self, level: int, cells: npt.NDArray[np.uint64], ix: Int64Array, iy: Int64Array
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """(inside, touching): cells wholly in the area's interior, and cells on its boundary."""
        width = 360.0 / (1 << level)
        height = 180.0 / (1 << level)
        if self.edges is not None:
            shift = np.uint64(2 * (self.finest_level - level))
            first = cells << shift
            last = first | ((np.uint64(1) << shift) - np.uint64(1))
            touching = np.searchsorted(self.edges, last, side="right") > np.searchsorted(
                self.edges, first, side="left"
            )
            inside = ~touching
            centre_x = (ix[inside] + 0.5) * width - 180.0
            centre_y = (iy[inside] + 0.5) * height - 90.0
            inside[inside] = shapely.contains_xy(self.geometry, centre_x, centre_y)
            return inside, touching

        x0 = (ix * width - 180.0).astype(np.float64)
        y0 = (iy * height - 90.0).astype(np.float64)
        boxes = shapely.box(
            x0 - _CELL_PAD_DEG,
            y0 - _CELL_PAD_DEG,
            x0 + (width + _CELL_PAD_DEG),
            y0 + (height + _CELL_PAD_DEG),
        )
        inside = shapely.contains_properly(self.geometry, boxes)
        touching = ~inside
        touching[touching] = shapely.intersects(self.geometry, boxes[touching])
        return inside, touching
