"""Clocks: the one place the service asks what time it is.

Every part of dispatch that reads the time or waits for it takes a clock object instead of
calling :func:`datetime.now` or :func:`asyncio.sleep`, so a case can be simulated faster than
real time (``wayhome demo``) and tests can move time by hand without sleeping.

- :class:`SystemClock`: wall-clock time, UTC.
- :class:`AcceleratedClock`: starts at a chosen instant and runs ``speed`` times faster than the
  wall clock; waits are shortened by the same factor.
- :class:`ManualClock`: time stands still until :meth:`ManualClock.advance` moves it; waiters wake
  when their instant has been reached.

All instants are timezone-aware (UTC).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What dispatch needs of a clock."""

    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...

    async def sleep_until(self, instant: datetime, *, max_wait_s: float | None = None) -> None:
        """Wait until ``instant`` or at most ``max_wait_s`` real seconds, whichever comes first."""
        ...


class SystemClock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, instant: datetime, *, max_wait_s: float | None = None) -> None:
        wait_s = max(0.0, (instant - self.now()).total_seconds())
        if max_wait_s is not None:
            wait_s = min(wait_s, max_wait_s)
        await asyncio.sleep(wait_s)


class AcceleratedClock:
    """A clock that starts at ``start`` and runs ``speed`` times faster than the wall clock."""

    def __init__(self, speed: float, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self.speed = speed
        self._start = start or datetime.now(UTC)
        self._origin_s = time.monotonic()

    def now(self) -> datetime:
        elapsed_s = (time.monotonic() - self._origin_s) * self.speed
        return self._start + timedelta(seconds=elapsed_s)

    async def sleep_until(self, instant: datetime, *, max_wait_s: float | None = None) -> None:
        wait_s = max(0.0, (instant - self.now()).total_seconds() / self.speed)
        if max_wait_s is not None:
            wait_s = min(wait_s, max_wait_s)
        await asyncio.sleep(wait_s)


class ManualClock:
    """A clock that only moves when told to; for tests and replays."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a manual clock needs a timezone-aware start instant")
        self._now = start
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move time forward by ``delta`` and wake every waiter whose instant has come."""
        if delta < timedelta(0):
            raise ValueError(f"a clock only moves forward, got {delta}")
        self._now += delta
        self._moved.set()
        self._moved = asyncio.Event()
        return self._now

    async def sleep_until(self, instant: datetime, *, max_wait_s: float | None = None) -> None:
        if self._now >= instant:
            return
        try:
            await asyncio.wait_for(self._moved.wait(), timeout=max_wait_s)
        except TimeoutError:
            return
