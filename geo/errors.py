"""The errors of ``geo``: one root, one class per way that input can be wrong.

::

    GeoError (ValueError)
    ├── InvalidPointError      a latitude, longitude or radius out of range
    ├── InvalidTimeError       a naive time, or a time before the last-seen time
    ├── InvalidGeometryError   a GeoJSON object that is not a valid polygon
    ├── InvalidPolicyError     a negative speed, an unordered tier table, an unknown category
    ├── PoleError              a disc that would contain a pole
    └── RailNetworkError       a rail network file that cannot be read

Every message is one sentence that says what was wrong and what would be right.
"""

from __future__ import annotations

__all__ = [
    "GeoError",
    "InvalidGeometryError",
    "InvalidPointError",
    "InvalidPolicyError",
    "InvalidTimeError",
    "PoleError",
    "RailNetworkError",
]


class GeoError(ValueError):
    """Root of every error raised by ``geo``."""


class InvalidPointError(GeoError):
    """A latitude, longitude or radius outside its range."""


class InvalidTimeError(GeoError):
    """A time without a UTC offset, or earlier than the time it must follow."""


class InvalidGeometryError(GeoError):
    """A geometry that is not a valid polygon in longitude/latitude."""


class InvalidPolicyError(GeoError):
    """A policy or category setting that cannot describe a search."""


class PoleError(GeoError):
    """A disc that would contain the north or the south pole."""


class RailNetworkError(GeoError):
    """A rail network (GTFS or GeoJSON) that cannot be loaded."""
