"""The registry: where subscribers are kept, behind one interface for every store.

Two stores implement :class:`Registry`: :class:`~subscribers.sqlite_store.SqliteRegistry`,
the embedded default, and :class:`~subscribers.postgis_store.PostgisRegistry`, for production.
They share everything but their SQL: validation happens in the model before a store sees a
subscriber, and bulk import (``subscribers.importing``) hands a store a list of subscribers that
it writes in a single transaction, so an import either lands whole or leaves nothing behind.

A store assigns each subscriber an int64 ``key`` once, at its first upsert; the key never
changes and is what the spatial index holds.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from subscribers.model import Subscriber

__all__ = ["Clock", "ImportReport", "Registry", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


@dataclass
class ImportReport:
    """What a bulk import did: how many rows it accepted, and each rejected row with why.

    Rows are numbered from 1, in file order (a CSV's header line is not a row).
    """

    accepted: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no row was rejected."""
        return not self.rejected


class Registry(abc.ABC):
    """The operations every subscriber store offers."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock

    @abc.abstractmethod
    def upsert(self, subscriber: Subscriber) -> Subscriber:
        """Insert or replace by ``id``; returns it with its ``key`` and times filled in."""

    @abc.abstractmethod
    def get(self, subscriber_id: str) -> Subscriber | None:
        """The subscriber with this id, or None."""

    @abc.abstractmethod
    def get_by_keys(self, keys: Iterable[int]) -> list[Subscriber]:
        """The subscribers with these keys (unknown keys are skipped), in no particular order."""

    @abc.abstractmethod
    def delete(self, subscriber_id: str) -> bool:
        """Delete by id; returns whether it existed."""

    @abc.abstractmethod
    def iter_all(self) -> Iterator[Subscriber]:
        """Every subscriber, in key order."""

    @abc.abstractmethod
    def count(self) -> int:
        """How many subscribers are registered."""

    @abc.abstractmethod
    def device_positions(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(keys, lon, lat) of every device, ready for ``SubscriberIndex.from_arrays``."""

    @abc.abstractmethod
    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Those of ``ids`` that are registered."""

    @abc.abstractmethod
    def write_all(self, subscribers: Sequence[Subscriber]) -> None:
        """Upsert every subscriber in one transaction: all of them are written, or none."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store's connection."""

    def import_file(
        self,
        path: str | Path,
        *,
        replace_existing: bool = False,
        all_or_nothing: bool = False,
        show_progress: bool = False,
    ) -> ImportReport:
        """Import subscribers from a CSV, GeoJSON, GeoPackage or GeoParquet file.

        Each row that breaks a rule is rejected with a sentence saying why; the others are
        written in one transaction. An id already registered is rejected unless
        ``replace_existing``; with ``all_or_nothing``, one rejected row means nothing is written.
        """
        from subscribers.importing import import_into

        return import_into(
            self,
            Path(path),
            replace_existing=replace_existing,
            all_or_nothing=all_or_nothing,
            show_progress=show_progress,
        )

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
