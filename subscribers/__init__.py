"""Subscribers: the registry, bulk import, and the spatial index that answers "who is inside".

A library: it knows nothing of Kafka or HTTP.

- :class:`Subscriber`, :class:`Channel`: the model (a device, a watched area or a platform).
- :class:`SqliteRegistry`, :class:`PostgisRegistry`: two stores behind :class:`Registry`, with
  bulk import from CSV, GeoJSON, GeoPackage and GeoParquet (:class:`ImportReport`).
- :class:`SubscriberIndex`: devices in memory; ``inside(geometry)`` returns exactly the keys
  ``shapely.contains_xy`` selects, in milliseconds for ten million points.
- :class:`AreaIndex`: watched areas and platforms that intersect an area.
- :mod:`subscribers.synthetic`: population-weighted synthetic subscribers around China's cities.
"""

from subscribers import synthetic
from subscribers.areas import AreaIndex
from subscribers.errors import (
    ImportFailed,
    InvalidSubscriber,
    RegistryUnavailable,
    SubscriberError,
)
from subscribers.index import SubscriberIndex
from subscribers.model import Channel, Subscriber, subscriber_from_dict
from subscribers.postgis_store import PostgisRegistry
from subscribers.registry import ImportReport, Registry
from subscribers.sqlite_store import SqliteRegistry

__all__ = [
    "AreaIndex",
    "Channel",
    "ImportFailed",
    "ImportReport",
    "InvalidSubscriber",
    "PostgisRegistry",
    "Registry",
    "RegistryUnavailable",
    "SqliteRegistry",
    "Subscriber",
    "SubscriberError",
    "SubscriberIndex",
    "subscriber_from_dict",
    "synthetic",
]
