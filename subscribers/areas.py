"""The index of watched areas and platforms: which of them does an area touch?

Watched areas are polygons, platforms a region or, with no region, the whole country. Both are
few next to devices (thousands, not millions), so a shapely ``STRtree`` over their polygons is
the right tool; platforms of the whole country touch every area and are kept aside.

An STRtree cannot change once built. Additions wait in a short pending list that queries test
directly, removals are filtered out, and the tree is rebuilt when enough has changed. A lock
keeps queries and changes from seeing each other half-done.

"Touch" is ``shapely.intersects``: an area sharing only a boundary point with the query still
counts, since its owner asked to hear about everything that reaches it.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from subscribers.errors import InvalidSubscriber, invalidity_reason
from subscribers.model import area_to_geometry

__all__ = ["AreaIndex"]

_REBUILD_AFTER_CHANGES = 256


class AreaIndex:
    """Watched areas and platforms by int64 key, queried by intersection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._geometries: dict[int, BaseGeometry] = {}
        self._whole_country: set[int] = set()
        self._tree: shapely.STRtree | None = None
        self._tree_keys: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._pending: dict[int, BaseGeometry] = {}
        self._stale: set[int] = set()

    def __len__(self) -> int:
        return len(self._geometries) + len(self._whole_country)

    def add(self, key: int, geometry: BaseGeometry | dict[str, Any] | None) -> None:
        """Add or replace the area of ``key``; ``None`` stands for the whole country."""
        key = int(key)
        if isinstance(geometry, dict):
            try:
                geometry = area_to_geometry(geometry)
            except ValueError as exc:
                raise InvalidSubscriber(str(exc)) from None
        if geometry is not None and not isinstance(geometry, BaseGeometry):
            raise InvalidSubscriber(
                "an area must be a shapely geometry, a GeoJSON geometry dict or None, "
                f"got {type(geometry).__name__}"
            )
        if geometry is not None and not geometry.is_valid:
            # GEOS predicates give no defined answer on an invalid polygon.
            reason = invalidity_reason(geometry)
            raise InvalidSubscriber(
                f"an area must be a valid geometry, got one that is not ({reason})"
            )
        with self._lock:
            self._forget(key)
            if geometry is None:
                self._whole_country.add(key)
                return
            shapely.prepare(geometry)
            self._geometries[key] = geometry
            self._pending[key] = geometry
            self._maybe_rebuild()

    def remove(self, key: int) -> bool:
        """Remove ``key``; returns whether it was there."""
        with self._lock:
            present = self._forget(int(key))
            self._maybe_rebuild()
            return present

    def intersecting(self, geometry: BaseGeometry) -> npt.NDArray[np.int64]:
        """Keys of the areas that touch ``geometry``, and of every whole-country platform."""
        shapely.prepare(geometry)
        with self._lock:
            found: list[npt.NDArray[np.int64]] = [
                np.fromiter(self._whole_country, dtype=np.int64, count=len(self._whole_country))
            ]
            if self._tree is not None and not geometry.is_empty:
                hits = self._tree_keys[self._tree.query(geometry, predicate="intersects")]
                if self._stale:
                    stale = np.fromiter(self._stale, dtype=np.int64, count=len(self._stale))
                    hits = hits[~np.isin(hits, stale)]
                found.append(hits)
            if self._pending and not geometry.is_empty:
                keys = np.fromiter(self._pending, dtype=np.int64, count=len(self._pending))
                shapes = np.array(list(self._pending.values()), dtype=object)
                found.append(keys[shapely.intersects(geometry, shapes)])
        return np.concatenate(found)

    def _forget(self, key: int) -> bool:
        present = False
        if key in self._whole_country:
            self._whole_country.discard(key)
            present = True
        if key in self._geometries:
            del self._geometries[key]
            present = True
            if self._pending.pop(key, None) is None:
                self._stale.add(key)
        return present

    def _maybe_rebuild(self) -> None:
        if len(self._pending) + len(self._stale) < _REBUILD_AFTER_CHANGES:
            return
        keys = np.fromiter(self._geometries, dtype=np.int64, count=len(self._geometries))
        self._tree = shapely.STRtree(list(self._geometries.values())) if len(keys) else None
        self._tree_keys = keys
        self._pending.clear()
        self._stale.clear()
