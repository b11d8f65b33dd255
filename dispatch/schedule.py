"""The tick schedule: how often an open case recomputes its area.

The first hours after a child goes missing matter most (the "golden hours"), and the area grows
fastest then, so a case ticks every minute at first and less often later. A schedule is a list
of steps ``elapsed=interval``: from ``elapsed`` after the last-seen time on, tick every
``interval``. It is written as text so it can live in one setting::

    0h=1m,3h=5m,24h=30m,72h=2h

The first tick of a case runs at once when it is reported (and again at once after a sighting
or a perimeter change); the schedule gives the next tick after that one. Ticks are spaced from
the previous tick, not aligned to a grid, so a late tick never triggers a burst of catch-up
ticks: the ring of a late tick is simply wider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatch.errors import InvalidInput

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh])\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"5m"``, ``"1.5h"`` → a timedelta."""
    match = _DURATION.match(text)
    if match is None:
        raise InvalidInput(f"a duration is a number with s, m or h (like 5m), got {text!r}")
    return timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])


@dataclass(frozen=True)
class TickSchedule:
    """Steps ``(elapsed, interval)``, sorted by elapsed; the first step starts at zero."""

    steps: tuple[tuple[timedelta, timedelta], ...]

    @classmethod
    def parse(cls, text: str) -> TickSchedule:
        """Read a schedule such as ``"0h=1m,3h=5m,24h=30m"``."""
        steps = []
        for part in text.split(","):
            if "=" not in part:
                raise InvalidInput(
                    f"a schedule step reads elapsed=interval (like 3h=5m), got {part.strip()!r}"
                )
            elapsed_text, interval_text = part.split("=", 1)
            interval = parse_duration(interval_text)
            if interval <= timedelta(0):
                raise InvalidInput(f"a tick interval must be positive, got {interval_text!r}")
            steps.append((parse_duration(elapsed_text), interval))
        steps.sort()
        if not steps or steps[0][0] != timedelta(0):
            raise InvalidInput("a schedule must have a step starting at 0h, like 0h=1m")
        return cls(tuple(steps))

    def interval_at(self, elapsed: timedelta) -> timedelta:
        """The tick interval that applies ``elapsed`` after the last-seen time."""
        interval = self.steps[0][1]
        for start, step_interval in self.steps:
            if elapsed >= start:
                interval = step_interval
        return interval

    def next_tick(self, last_seen: datetime, previous_tick: datetime) -> datetime:
        """When the tick after ``previous_tick`` is due."""
        elapsed = max(timedelta(0), previous_tick - last_seen)
        return previous_tick + self.interval_at(elapsed)
