"""The rail reach search: the earliest time each station can be left, after a ride.

The child is taken by road to a station, boards the first train, and rides along the network,
changing lines where they meet. Two models of when trains run:

- Headway (GeoJSON networks): a label-setting search (Dijkstra) over the states "in a station,
  ready to board", "on a line at a stop, in a direction" and "just alighted". Boarding waits
  ``wait_fraction`` of the line's headway (0 by default: a train leaves as the child is ready,
  the upper bound); each stop passed costs a dwell; a change of line costs a transfer time;
  stations close to each other (Beijing West and Beijing South) are linked by road.
- Timetable (GTFS): a connection scan over the trips' hops, in departure order, for the service
  days the horizon touches (every trip is assumed to run every day).

The alternative not taken is a time-expanded graph of every departure; the connection scan does
the same work over a sorted array, and the headway graph needs no times at all.

Both give, per station, the seconds after the last-seen time at which the child can step out of
the station (``inf`` where it is not reachable within the horizon). The result depends on the
origin and the policy only, never on "now", so a search area computes it once.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from geo.errors import RailNetworkError
from geo.rail import RailNetwork

__all__ = ["RailTimes", "station_arrivals_s"]

_ROAD_TRANSFER_M = 40_000.0


@dataclass(frozen=True)
class RailTimes:
    """The time costs of using the rail network, in seconds."""

    road_speed_ms: float
    """Straight-line speed of the road trips to and between stations (speed over circuity)."""
    boarding_s: float
    """From arriving at a station by road to being ready to board (entry, security, gate)."""
    transfer_s: float
    """From stepping off one train to being ready to board another in the same station."""
    dwell_s: float
    """Time a train stands at each intermediate stop."""
    wait_fraction: float
    """Share of a line's headway spent waiting for the train (headway model only)."""
    track_circuity: float
    """Rail distance over straight-line distance between stops (headway model only)."""


def station_arrivals_s(
    network: RailNetwork,
    lat: float,
    lon: float,
    start: datetime,
    horizon_s: float,
    times: RailTimes,
) -> np.ndarray:
    """Earliest seconds after ``start`` at which each station can be left after a ride."""
    access_s = network.distances_from_m(lat, lon) / times.road_speed_ms
    ready_s = access_s + times.boarding_s
    ready_s[ready_s > horizon_s] = math.inf
    if network.has_timetable:
        return _connection_scan(network, ready_s, start, horizon_s, times)
    return _headway_search(network, ready_s, horizon_s, times)


def _road_neighbours(network: RailNetwork, times: RailTimes) -> list[list[tuple[int, float]]]:
    neighbours: list[list[tuple[int, float]]] = [[] for _ in network.stations]
    for i, j, d in zip(*network.station_pairs_within_m(_ROAD_TRANSFER_M), strict=True):
        neighbours[int(i)].append((int(j), float(d / times.road_speed_ms + times.boarding_s)))
    return neighbours


def _headway_search(
    network: RailNetwork, ready_s: np.ndarray, horizon_s: float, times: RailTimes
) -> np.ndarray:
    n = len(network.stations)
    alight_s = np.full(n, math.inf)
    neighbours = _road_neighbours(network, times)
    lengths = network.segment_lengths_m
    stops = [[network.station_index(s) for s in line.station_ids] for line in network.lines]
    serving: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for li, line_stops in enumerate(stops):
        for pos, station in enumerate(line_stops):
            serving[station].append((li, pos))

    # States: ("ready", station) / ("ride", line, pos, direction, fresh) / ("alight", station).
    best: dict[tuple[Any, ...], float] = {}
    queue: list[tuple[float, tuple[Any, ...]]] = [
        (float(t), ("ready", i)) for i, t in enumerate(ready_s) if math.isfinite(t)
    ]
    heapq.heapify(queue)
    while queue:
        t, state = heapq.heappop(queue)
        if t > horizon_s or best.get(state, math.inf) <= t:
            continue
        best[state] = t
        for cost, nxt in _headway_moves(state, network, stops, serving, lengths, neighbours, times):
            if t + cost <= horizon_s and best.get(nxt, math.inf) > t + cost:
                heapq.heappush(queue, (t + cost, nxt))

    for state, t in best.items():
        if state[0] == "alight":
            alight_s[state[1]] = min(alight_s[state[1]], t)
    return alight_s


def _headway_moves(
    state: tuple[Any, ...],
    network: RailNetwork,
    stops: list[list[int]],
    serving: list[list[tuple[int, int]]],
    lengths: tuple[np.ndarray, ...],
    neighbours: list[list[tuple[int, float]]],
    times: RailTimes,
) -> Iterator[tuple[float, tuple[Any, ...]]]:
    kind = state[0]
    if kind == "ready":
        for li, pos in serving[state[1]]:
            wait_s = times.wait_fraction * network.lines[li].headway_min * 60.0
            for direction in (-1, 1):
                if 0 <= pos + direction < len(stops[li]):
                    yield wait_s, ("ride", li, pos, direction, True)
    elif kind == "ride":
        _, li, pos, direction, fresh = state
        nxt = pos + direction
        if 0 <= nxt < len(stops[li]):
            hop_m = lengths[li][min(pos, nxt)] * times.track_circuity
            hop_s = hop_m / (network.lines[li].speed_kmh / 3.6)
            yield hop_s + (0.0 if fresh else times.dwell_s), ("ride", li, nxt, direction, False)
        if not fresh:
            yield 0.0, ("alight", stops[li][pos])
    else:
        station = state[1]
        yield times.transfer_s, ("ready", station)
        for other, cost in neighbours[station]:
            yield cost, ("ready", other)


def _connection_scan(
    network: RailNetwork,
    ready_s: np.ndarray,
    start: datetime,
    horizon_s: float,
    times: RailTimes,
) -> np.ndarray:
    try:
        zone = ZoneInfo(network.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise RailNetworkError(f"unknown time zone {network.timezone!r} in the GTFS feed") from None
    local = start.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    since_midnight_s = (local - midnight).total_seconds()

    # Every hop of every trip, on each service day the horizon touches, in start-relative time.
    deps, arrs, froms, tos, runs = [], [], [], [], []
    last_day = math.ceil((since_midnight_s + horizon_s) / 86_400.0)
    for day in range(-2, last_day + 1):
        day_offset_s = (midnight + timedelta(days=day) - local).total_seconds()
        for ti, trip in enumerate(network.trips):
            for k in range(len(trip.station_ids) - 1):
                dep = trip.departures_s[k] + day_offset_s
                if 0.0 <= dep <= horizon_s:
                    deps.append(dep)
                    arrs.append(trip.arrivals_s[k + 1] + day_offset_s)
                    froms.append(network.station_index(trip.station_ids[k]))
                    tos.append(network.station_index(trip.station_ids[k + 1]))
                    runs.append((ti, day))

    order = sorted(range(len(deps)), key=deps.__getitem__)
    neighbours = _road_neighbours(network, times)
    ready = ready_s.copy()
    alight_s = np.full(len(network.stations), math.inf)
    boarded: set[tuple[int, int]] = set()
    for c in order:
        run = runs[c]
        if run not in boarded:
            if ready[froms[c]] > deps[c]:
                continue
            boarded.add(run)
        arrival, station = arrs[c], tos[c]
        if arrival > horizon_s or arrival >= alight_s[station]:
            continue
        alight_s[station] = arrival
        ready[station] = min(ready[station], arrival + times.transfer_s)
        for other, cost in neighbours[station]:
            ready[other] = min(ready[other], arrival + cost)
    return alight_s
