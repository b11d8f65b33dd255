"""A readers-writer lock: many holders of the shared side at once, or one of the exclusive side.

The subscriber index answers queries far more often than it is changed, and a query only
reads, so queries take the shared side and run side by side; updates take the exclusive side
for the short time they write.

Writers are preferred: once a writer waits, new readers wait behind it. A steady stream of
queries therefore cannot starve the updates, at the price of a query waiting for the one
update ahead of it. The lock is not reentrant on either side: a holder that asks again
deadlocks, so the index never calls one locked method from another.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["SharedLock"]


class SharedLock:
    """Shared (read) and exclusive (write) holds on one resource, writers first."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock alongside other readers, once no writer holds or waits for it."""
        with self._changed:
            while self._writing or self._writers_waiting:
                self._changed.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._changed:
                self._readers -= 1
                if not self._readers:
                    self._changed.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the lock alone, once every reader and writer before this one has let go."""
        with self._changed:
            self._writers_waiting += 1
            try:
                while self._writing or self._readers:
                    self._changed.wait()
            except BaseException:
                # Interrupted while waiting: let the readers held back by this writer go on.
                self._writers_waiting -= 1
                self._changed.notify_all()
                raise
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._changed:
                self._writing = False
                self._changed.notify_all()
