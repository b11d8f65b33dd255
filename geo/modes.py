"""Case categories and the speeds of each way of moving, with the defaults the README cites.

The reach model is an upper bound: where the child could be at the earliest, so every default
is the fast end of what is plausible, never an average.

- Walking: 6 km/h, a brisk adult pace (typical adult walking speeds are 4.5-5.5 km/h).
- Driving: 120 km/h, the expressway limit in China, over a road circuity (detour) factor of
  1.2, the low end of the 1.2-1.4 reported for road networks: 100 km/h as the crow flies,
  which is exactly the pace of Tuanyuan's first tier (100 km in the first hour).
- A lost young child on foot walks at a child's pace and is capped by the distance within
  which lost children of that age band are found, from Koester's *Lost Person Behavior*
  (dbS Productions, 2008). The caps below are the upper end (about the 95th percentile) of
  those tables, rounded up; they vary with terrain and ecoregion, so treat them as defaults
  to override with local statistics, not as facts about a case.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from geo.errors import InvalidPolicyError

__all__ = ["Category", "OnFootLimit", "on_foot_limit", "positive"]


class Category(enum.StrEnum):
    """What kind of case it is, which decides which ways of moving the model allows."""

    VEHICLE_ABDUCTION = "vehicle_abduction"
    """Taken by someone with a vehicle: walking, driving and rail."""
    UNKNOWN = "unknown"
    """Nothing known about how the child left: every mode, as for an abduction."""
    LOST_CHILD = "lost_child"
    """A lost child on foot, age unknown: walking only, capped as the oldest band."""
    LOST_CHILD_1_3 = "lost_child_1_3"
    LOST_CHILD_4_6 = "lost_child_4_6"
    LOST_CHILD_7_9 = "lost_child_7_9"
    LOST_CHILD_10_12 = "lost_child_10_12"
    LOST_CHILD_13_15 = "lost_child_13_15"

    @classmethod
    def _missing_(cls, value: object) -> Category:
        known = ", ".join(member.value for member in cls)
        raise InvalidPolicyError(f"category must be one of {known}; got {value!r}")

    @property
    def on_foot_only(self) -> bool:
        """True when the child moves by walking only."""
        return self.value.startswith("lost_child")


@dataclass(frozen=True)
class OnFootLimit:
    """How fast and how far a child of an age band goes on foot."""

    walking_kmh: float
    max_distance_km: float


# Child's walking pace (fast end) and the distance cap, read from Koester's tables and rounded up.
_ON_FOOT: dict[Category, OnFootLimit] = {
    Category.LOST_CHILD_1_3: OnFootLimit(walking_kmh=2.0, max_distance_km=2.0),
    Category.LOST_CHILD_4_6: OnFootLimit(walking_kmh=3.0, max_distance_km=3.5),
    Category.LOST_CHILD_7_9: OnFootLimit(walking_kmh=4.0, max_distance_km=5.0),
    Category.LOST_CHILD_10_12: OnFootLimit(walking_kmh=4.5, max_distance_km=6.5),
    Category.LOST_CHILD_13_15: OnFootLimit(walking_kmh=5.0, max_distance_km=10.0),
}
_ON_FOOT[Category.LOST_CHILD] = _ON_FOOT[Category.LOST_CHILD_13_15]


def on_foot_limit(category: Category) -> OnFootLimit | None:
    """The walking pace and distance cap of a lost-child category; None for other categories."""
    return _ON_FOOT.get(category)


def positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """``value`` when it is a finite positive number; ``InvalidPolicyError`` otherwise."""
    ok = math.isfinite(value) and (value >= 0.0 if allow_zero else value > 0.0)
    if not ok:
        wanted = "zero or more" if allow_zero else "greater than zero"
        raise InvalidPolicyError(f"{name} must be {wanted}, got {value}")
    return float(value)
