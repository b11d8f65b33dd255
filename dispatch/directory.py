"""The dispatcher's view of the subscribers: who they are, where, and how to reach them.

Built by following the compacted ``subscribers`` topic, it holds:

- ``subscribers.SubscriberIndex`` over the devices' positions ("who is inside this ring"),
- ``subscribers.AreaIndex`` over watched areas and platforms ("whose area touches this ring"),
- per subscriber, what a notice needs: its id, channel and language (not its position).

Keys. The index works with int64 keys. A subscriber filed through the API gets one from the
registry, but one produced straight onto the topic may have none, and two workers must agree on
every key without asking each other; so the directory derives the key from the subscriber id
(the first 63 bits of BLAKE2b), and ignores the registry's. A collision of two ids (odds about
n²/2⁶⁴) is refused at upsert rather than letting one subscriber shadow another.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from dispatch.notices.model import Recipient

logger = logging.getLogger(__name__)


def key_of(subscriber_id: str) -> int:
    """The stable int64 key of a subscriber id."""
    digest = hashlib.blake2b(subscriber_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


@dataclass
class Contact:
    """How to reach one subscriber: all a notice needs, and nothing of where it is."""

    subscriber_id: str
    kind: str
    channel: str
    target: str | None
    language: str
    key: int = 0

    def recipient(self) -> Recipient:
        return Recipient(
            subscriber_id=self.subscriber_id,
            channel=self.channel,  # type: ignore[arg-type]
            target=self.target,
            language=self.language,
        )

    @cached_property
    def recipient_json(self) -> bytes:
        """The recipient as JSON, cached: a tick splices these into its batches."""
        return self.recipient().model_dump_json(exclude_none=True).encode()


class Directory:
    """Subscribers by key: contacts, the device index and the area index.

    Contacts are also kept in columns by row (recipient JSON, id, channel number), with the
    keys sorted beside their rows, so a tick turns a hundred thousand keys into batches with a
    few numpy calls and list lookups instead of a dict lookup and attribute reads per recipient.
    """

    def __init__(self) -> None:
        from subscribers import AreaIndex, SubscriberIndex

        empty = np.empty(0, dtype=np.int64)
        self.devices = SubscriberIndex.from_arrays(empty, np.empty(0), np.empty(0))
        self.areas = AreaIndex()
        self.contacts: dict[int, Contact] = {}
        self._area_keys: set[int] = set()
        self._row: dict[int, int] = {}
        self._json: list[bytes] = []
        self._ids: list[str] = []
        self._channel_of_row: list[int] = []
        self._channel_number: dict[tuple[str, str | None], int] = {}
        self._sorted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.contacts)

    def _put_contact(self, contact: Contact) -> None:
        key = contact.key
        known = self.contacts.get(key)
        if known is not None and known.subscriber_id != contact.subscriber_id:
            raise ValueError(f"subscriber key collision between two ids on key {key}")
        self.contacts[key] = contact
        channel = self._channel_number.setdefault(
            (contact.channel, contact.target), len(self._channel_number)
        )
        row = self._row.get(key)
        if row is None:
            self._row[key] = len(self._ids)
            self._json.append(contact.recipient_json)
            self._ids.append(contact.subscriber_id)
            self._channel_of_row.append(channel)
            self._sorted = None
        else:
            self._json[row] = contact.recipient_json
            self._channel_of_row[row] = channel
            if self._sorted is not None:
                self._sorted[2][row] = channel

    def channel_number(self, channel: str, target: str | None) -> int:
        """The number of a channel in this directory (-1 when no subscriber uses it)."""
        return self._channel_number.get((channel, target), -1)

    def rows_of(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, keys) of the known subscribers among ``keys``, in row order."""
        if self._sorted is None:
            all_keys = np.fromiter(self._row.keys(), dtype=np.int64, count=len(self._row))
            all_rows = np.fromiter(self._row.values(), dtype=np.int64, count=len(self._row))
            order = np.argsort(all_keys)
            channels = np.array(self._channel_of_row, dtype=np.int64)
            self._sorted = (all_keys[order], all_rows[order], channels)
        sorted_keys, sorted_rows, _ = self._sorted
        keys = np.asarray(keys, dtype=np.int64)
        if len(sorted_keys) == 0 or len(keys) == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
        known = sorted_keys[at] == keys
        rows, keys = sorted_rows[at[known]], keys[known]

        # Rows in ascending order: the columns are then read front to back, which is several
        # times faster than jumping around a hundred thousand objects.
        order = np.argsort(rows, kind="stable")
        return rows[order], keys[order]

    def channels_of(self, rows: np.ndarray) -> np.ndarray:
        """The channel number of each row."""
        assert self._sorted is not None, "rows_of comes first"
        return self._sorted[2][rows]

    def recipient_json(self, rows: np.ndarray) -> list[bytes]:
        json_of = self._json
        return [json_of[row] for row in rows.tolist()]

    def subscriber_ids(self, rows: np.ndarray) -> list[str]:
        ids = self._ids
        return [ids[row] for row in rows.tolist()]

    def upsert(self, subscriber: Any) -> int:
        """Add or change a subscriber (a ``subscribers.Subscriber``); returns its key."""
        key = key_of(subscriber.id)
        channel = subscriber.channel
        target = channel.url if channel.kind == "webhook" else channel.topic
        self._put_contact(
            Contact(
                subscriber.id,
                subscriber.kind,
                channel.kind,
                target,
                subscriber.language or "en",
                key,
            )
        )
        keys = np.array([key], dtype=np.int64)
        if subscriber.kind == "device":
            if key in self._area_keys:
                self.areas.remove(key)
                self._area_keys.discard(key)
            self.devices.update(keys, np.array([subscriber.lon]), np.array([subscriber.lat]))
        else:
            self.devices.remove(keys)
            if key in self._area_keys:
                self.areas.remove(key)
            geometry = None
            if subscriber.area is not None:
                from subscribers.model import area_to_geometry

                geometry = area_to_geometry(subscriber.area)
            self.areas.add(key, geometry)
            self._area_keys.add(key)
        return key

    def bulk_devices(self, subscribers: list[Any]) -> None:
        """Add many devices at once (the index is updated with arrays, not one by one)."""
        keys = np.empty(len(subscribers), dtype=np.int64)
        lon = np.empty(len(subscribers))
        lat = np.empty(len(subscribers))
        for row, subscriber in enumerate(subscribers):
            key = key_of(subscriber.id)
            channel = subscriber.channel
            target = channel.url if channel.kind == "webhook" else channel.topic
            self._put_contact(
                Contact(
                    subscriber.id, "device", channel.kind, target, subscriber.language or "en", key
                )
            )
            if key in self._area_keys:  # it was a watched area until now
                self.areas.remove(key)
                self._area_keys.discard(key)
            keys[row], lon[row], lat[row] = key, subscriber.lon, subscriber.lat
        self.devices.update(keys, lon, lat)

    def delete(self, subscriber_id: str) -> int | None:
        """Remove a subscriber; returns its key, or None when it was not known."""
        key = key_of(subscriber_id)
        if self.contacts.pop(key, None) is None:
            return None
        self._row.pop(key, None)
        self._sorted = None
        self.devices.remove(np.array([key], dtype=np.int64))
        if key in self._area_keys:
            self.areas.remove(key)
            self._area_keys.discard(key)
        return key

    def inside(self, geometry: Any) -> np.ndarray:
        """Keys of every device inside ``geometry`` and every area or platform touching it."""
        if geometry is None or geometry.is_empty:
            return np.empty(0, dtype=np.int64)
        devices = np.asarray(self.devices.inside(geometry), dtype=np.int64)
        areas = np.asarray(self.areas.intersecting(geometry), dtype=np.int64)
        if len(areas) == 0:
            return devices
        return np.concatenate([devices, areas])
