"""Reach policies: how far the child could be after some time, as a set of geodesic discs.

- ``TiersPolicy``: one disc around the last-seen point whose radius steps with elapsed time,
  by default China's Tuanyuan tiers: 100 km under 1 h, 200 km under 2 h, 300 km under 3 h,
  500 km after.
- ``MultimodalPolicy``: the union of a walking disc, a driving disc and, for each rail station
  reachable in time, a disc around it sized by the driving time left (see ``geo.reach``).
  A lost child on foot walks only, at a child's pace, capped by the lost-person statistics of
  its age band (see ``geo.modes``).

Every radius of the multimodal policy is rounded up to a multiple of ``RADIUS_STEP_M`` (90 m).
A disc polygon overshoots its radius by at most 70 m (``geo.disc``), so the polygon of one
step lies inside the polygon of the next: the area can only grow with time, exactly, not just
up to rounding. The rounding and the overshoot together stay within 0.1 mile of the reach the
speeds imply.

The tiers are used exactly as the table gives them; tiers that grow by less than 0.1 mile
would not nest exactly, which is why the table must never shrink.

Where the area stops growing. A radius never passes ``MAX_REACH_RADIUS_M`` (5,000 km, some 50
hours of driving: by then the area spans a continent, and the search is no longer a matter of
discs), nor comes within ``POLE_CLEARANCE_M`` (20 km) of the nearer pole: a disc holding a pole
is not a polygon in longitude/latitude at all, and ``geo.disc`` refuses one that comes within
0.1 mile of it. The 20 km are a cost, not a need: a disc whose edge passes 20 km from the pole
takes some 8,000 vertices, one passing 1 km from it some 40,000. Both policies follow their
radii exactly up to these limits, so the tiers give the whole table for centres up to 80
degrees of latitude (1,117 km from the pole); past a limit the area keeps its size, and
whatever lies beyond (the polar cap, or the world past 5,000 km) is left out of it: the area
is then an upper bound only of the places it still covers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np

from geo.disc import DISC_OVERSHOOT_BUDGET_M, distance_m
from geo.errors import InvalidPolicyError
from geo.modes import Category, on_foot_limit, positive
from geo.rail import RailNetwork
from geo.reach import RailTimes, station_arrivals_s

__all__ = [
    "DEFAULT_TIERS",
    "RADIUS_STEP_M",
    "MAX_REACH_RADIUS_M",
    "POLE_CLEARANCE_M",
    "MultimodalPolicy",
    "Policy",
    "Reach",
    "ReachDisc",
    "TiersPolicy",
]

RADIUS_STEP_M = 90.0
MAX_REACH_RADIUS_M = 5_000_000.0
_TIMETABLE_HORIZON_S = 48 * 3600.0
POLE_CLEARANCE_M = 20_000.0

DEFAULT_TIERS: tuple[tuple[float, float], ...] = ((1.0, 100.0), (2.0, 200.0), (3.0, 300.0))
"""Tuanyuan's table: (under this many hours, radius in km); ``after_km`` applies beyond."""


@dataclass(frozen=True)
class ReachDisc:
    """One disc of the area: centre, radius (rounded up to the step) and how it was reached."""

    lat: float
    lon: float
    radius_m: float
    mode: str


class Reach(Protocol):
    """A policy prepared for one last-seen point: the discs at an elapsed time."""

    def discs(self, elapsed_s: float) -> list[ReachDisc]: ...


class Policy(Protocol):
    """Something that turns a last-seen point and a category into a ``Reach``."""

    def prepare(self, lat: float, lon: float, start: datetime, category: Category) -> Reach: ...


def stepped_radius_m(radius_m: float, cap_m: float) -> float:
    """``radius_m`` rounded up to the step (one step at least), then capped."""
    steps = max(1, math.ceil(radius_m / RADIUS_STEP_M - 1e-9))
    return min(steps * RADIUS_STEP_M, cap_m)


def _cap_m(lat: float, lon: float) -> float:
    # The largest radius a disc around this centre may take: see the module docstring.
    pole_m = distance_m(lat, lon, 90.0 if lat >= 0 else -90.0, lon)
    room_m = pole_m - POLE_CLEARANCE_M
    return max(
        RADIUS_STEP_M, min(MAX_REACH_RADIUS_M, math.floor(room_m / RADIUS_STEP_M) * RADIUS_STEP_M)
    )


@dataclass(frozen=True)
class TiersPolicy:
    """A single disc whose radius steps with elapsed time (Tuanyuan's tiers by default)."""

    tiers: tuple[tuple[float, float], ...] = DEFAULT_TIERS
    after_km: float = 500.0

    def __post_init__(self) -> None:
        previous_h, previous_km = 0.0, 0.0
        for under_h, radius_km in self.tiers:
            positive("a tier's hours", under_h)
            positive("a tier's radius_km", radius_km)
            if under_h <= previous_h or radius_km < previous_km:
                raise InvalidPolicyError(
                    "tiers must be in increasing hours with radii that never shrink, got "
                    f"{self.tiers}"
                )
            previous_h, previous_km = under_h, radius_km
        positive("after_km", self.after_km)
        if self.after_km < previous_km:
            raise InvalidPolicyError(
                f"after_km must be at least the last tier's radius {previous_km}, "
                f"got {self.after_km}"
            )

    def radius_km(self, elapsed_h: float) -> float:
        """The radius for an elapsed time: the first tier whose bound is above it."""
        for under_h, radius_km in self.tiers:
            if elapsed_h < under_h:
                return radius_km
        return self.after_km

    def prepare(self, lat: float, lon: float, start: datetime, category: Category) -> Reach:
        return _TiersReach(self, lat, lon, _cap_m(lat, lon))


@dataclass(frozen=True)
class _TiersReach:
    policy: TiersPolicy
    lat: float
    lon: float
    cap_m: float

    def discs(self, elapsed_s: float) -> list[ReachDisc]:
        # The table's radii are used as given, not stepped: a tier is a rule, not an estimate.
        radius_m = self.policy.radius_km(elapsed_s / 3600.0) * 1000.0
        return [ReachDisc(self.lat, self.lon, min(radius_m, self.cap_m), "tier")]


@dataclass(frozen=True)
class MultimodalPolicy:
    """Walking, driving and high-speed rail, the fastest plausible way (see the README)."""

    rail: RailNetwork | None = None
    walking_kmh: float = 6.0
    driving_kmh: float = 120.0
    road_circuity: float = 1.2
    boarding_min: float = 10.0
    transfer_min: float = 8.0
    dwell_min: float = 2.0
    headway_wait_fraction: float = 0.0
    track_circuity: float = 1.0

    def __post_init__(self) -> None:
        positive("walking_kmh", self.walking_kmh)
        positive("driving_kmh", self.driving_kmh)
        positive("road_circuity", self.road_circuity)
        if self.road_circuity < 1.0 or self.track_circuity < 1.0:
            raise InvalidPolicyError(
                "road_circuity and track_circuity must be 1 or more (a detour is never shorter "
                f"than the straight line), got {self.road_circuity} and {self.track_circuity}"
            )
        for name in ("boarding_min", "transfer_min", "dwell_min", "headway_wait_fraction"):
            positive(name, getattr(self, name), allow_zero=True)
        if self.headway_wait_fraction > 1.0:
            raise InvalidPolicyError(
                f"headway_wait_fraction must be within 0..1, got {self.headway_wait_fraction}"
            )

    @property
    def road_speed_ms(self) -> float:
        """Straight-line speed by road, in m/s: driving speed over the circuity factor."""
        return self.driving_kmh / self.road_circuity / 3.6

    def rail_times(self) -> RailTimes:
        """The rail search's costs under this policy."""
        return RailTimes(
            road_speed_ms=self.road_speed_ms,
            boarding_s=self.boarding_min * 60.0,
            transfer_s=self.transfer_min * 60.0,
            dwell_s=self.dwell_min * 60.0,
            wait_fraction=self.headway_wait_fraction,
            track_circuity=self.track_circuity,
        )

    def prepare(self, lat: float, lon: float, start: datetime, category: Category) -> Reach:
        return _MultimodalReach(self, lat, lon, start, category, _cap_m(lat, lon))


@dataclass
class _MultimodalReach:
    policy: MultimodalPolicy
    lat: float
    lon: float
    start: datetime
    category: Category
    cap_m: float
    _arrivals_s: np.ndarray | None = field(default=None, repr=False)
    _horizon_s: float = field(default=0.0, repr=False)
    _to_station_m: np.ndarray | None = field(default=None, repr=False)
    _station_caps_m: np.ndarray | None = field(default=None, repr=False)

    def discs(self, elapsed_s: float) -> list[ReachDisc]:
        hours = elapsed_s / 3600.0
        limit = on_foot_limit(self.category)
        if limit is not None:
            radius_m = min(limit.walking_kmh * hours, limit.max_distance_km) * 1000.0
            return [
                ReachDisc(self.lat, self.lon, stepped_radius_m(radius_m, self.cap_m), "walking")
            ]

        walk_m = stepped_radius_m(self.policy.walking_kmh * hours * 1000.0, self.cap_m)
        drive_m = stepped_radius_m(self.policy.road_speed_ms * elapsed_s, self.cap_m)
        discs = [ReachDisc(self.lat, self.lon, drive_m, "driving")]
        if walk_m > drive_m:
            discs.append(ReachDisc(self.lat, self.lon, walk_m, "walking"))
        if self.policy.rail is not None:
            discs.extend(self._rail_discs(elapsed_s, drive_m))
        return discs

    def _rail_discs(self, elapsed_s: float, drive_m: float) -> list[ReachDisc]:
        network = self.policy.rail
        assert network is not None
        arrivals_s = self._arrivals(elapsed_s)
        assert self._to_station_m is not None and self._station_caps_m is not None
        reached = np.flatnonzero(arrivals_s <= elapsed_s)
        if reached.size == 0:
            return []

        # Radii by road from each station with the time left, stepped like every other radius.
        raw_m = self.policy.road_speed_ms * (elapsed_s - arrivals_s[reached])
        steps = np.maximum(1, np.ceil(raw_m / RADIUS_STEP_M - 1e-9))
        radii_m = np.minimum(steps * RADIUS_STEP_M, self._station_caps_m[reached])

        # Drop discs inside the driving disc or a larger station disc: their polygons lie
        # within radius + overshoot of their centre, and the larger polygon covers its radius.
        slack_m = DISC_OVERSHOOT_BUDGET_M + 1.0
        inside_drive = self._to_station_m[reached] + radii_m + slack_m <= drive_m
        # Distances are measured only to the discs kept so far, never station by station.
        kept: list[int] = []
        for k in np.argsort(-radii_m, kind="stable"):
            if inside_drive[k]:
                continue
            if kept:
                others = reached[kept]
                to_kept_m = network.distances_between_m(np.full(others.size, reached[k]), others)
                if np.any(to_kept_m + radii_m[k] + slack_m <= radii_m[kept]):
                    continue
            kept.append(int(k))

        stations = network.stations
        return [
            ReachDisc(stations[reached[k]].lat, stations[reached[k]].lon, float(radii_m[k]), "rail")
            for k in kept
        ]

    def _arrivals(self, elapsed_s: float) -> np.ndarray:
        network = self.policy.rail
        assert network is not None
        if self._to_station_m is None:
            self._to_station_m = network.distances_from_m(self.lat, self.lon)
            self._station_caps_m = np.array([_cap_m(s.lat, s.lon) for s in network.stations])
        if self._arrivals_s is None or elapsed_s > self._horizon_s < _TIMETABLE_HORIZON_S:
            # A headway search has no clock, so it runs once to the end of the network; a
            # timetable is scanned to a horizon that doubles as the case ages, up to two days:
            # by then the driving disc alone spans 4,800 km, and later trains add nothing.
            horizon_s = (
                math.inf
                if not network.has_timetable
                else min(max(2 * elapsed_s, 6 * 3600.0), _TIMETABLE_HORIZON_S)
            )
            self._arrivals_s = station_arrivals_s(
                network,
                self.lat,
                self.lon,
                self.start,
                horizon_s,
                self.policy.rail_times(),
            )
            self._horizon_s = horizon_s
        return self._arrivals_s
