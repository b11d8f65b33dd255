"""The rail network: stations, lines with their speeds, and (from GTFS) a timetable.

Two sources:

- GTFS (``stops.txt``, ``trips.txt``, ``stop_times.txt``, optionally ``agency.txt`` for the
  time zone and ``frequencies.txt``), as a directory or a zip. Platforms are merged into their
  ``parent_station``. Blank times of stops that are not timepoints are interpolated between
  the timed stops around them; a trip of ``frequencies.txt`` runs at every headway of its
  periods.
  ``calendar.txt`` is not read: every trip is taken to run every day, which can only grow the
  area and so keeps it an upper bound.
- A simple GeoJSON FeatureCollection: stations as Points (``id``, ``name``), lines as
  LineStrings (``name``, ``speed_kmh``, optional ``headway_min``, and ``stations``: the ids of
  its stops in order; without it, the LineString's vertices within 1 km of a station are its
  stops).

``load_rail_sample()`` loads the GeoJSON shipped in ``geo/data/``: China's Beijing-Guangzhou,
Beijing-Shanghai and Xuzhou-Lanzhou high-speed corridors.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import math
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from geo.disc import WGS84
from geo.errors import RailNetworkError

__all__ = [
    "Line",
    "RailNetwork",
    "Station",
    "Trip",
    "load_gtfs",
    "load_rail_geojson",
    "load_rail_network",
    "load_rail_sample",
]

logger = logging.getLogger(__name__)

_SNAP_M = 1_000.0
_MIN_CURVATURE_RADIUS_M = 6_335_439.0
"""WGS84's smallest radius of curvature (meridional, at the equator): no geodesic is shorter
than this radius times the angle between the normals at its ends."""
_SAMPLE = "china_hsr.geojson"


@dataclass(frozen=True)
class Station:
    """A station (GTFS: a parent station, or a stop without one)."""

    id: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Line:
    """A line served in both directions at ``speed_kmh``, a train every ``headway_min``."""

    name: str
    station_ids: tuple[str, ...]
    speed_kmh: float
    headway_min: float = 30.0
    path: tuple[tuple[float, float], ...] = ()
    """(lon, lat) vertices for drawing; the stations themselves when not given."""


@dataclass(frozen=True)
class Trip:
    """One timetabled run: its stops and times, in seconds from the service day's midnight."""

    id: str
    station_ids: tuple[str, ...]
    arrivals_s: tuple[int, ...]
    departures_s: tuple[int, ...]


@dataclass(frozen=True)
class RailNetwork:
    """Stations and lines; ``trips`` when built from a timetable."""

    stations: tuple[Station, ...]
    lines: tuple[Line, ...]
    trips: tuple[Trip, ...] = ()
    timezone: str = "Asia/Shanghai"
    _index: dict[str, int] = field(init=False, repr=False, compare=False)
    _lat: np.ndarray = field(init=False, repr=False, compare=False)
    _lon: np.ndarray = field(init=False, repr=False, compare=False)
    _pairs: dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        index = {station.id: i for i, station in enumerate(self.stations)}
        if len(index) != len(self.stations):
            raise RailNetworkError("station ids must be unique in a rail network")
        for line in self.lines:
            _check_line(line, index)
        for trip in self.trips:
            missing = [s for s in trip.station_ids if s not in index]
            if missing:
                raise RailNetworkError(f"trip {trip.id} stops at unknown station {missing[0]}")
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_lat", np.array([s.lat for s in self.stations], dtype=float))
        object.__setattr__(self, "_lon", np.array([s.lon for s in self.stations], dtype=float))
        object.__setattr__(self, "_pairs", {})

    @property
    def has_timetable(self) -> bool:
        """True when trips with times were loaded (GTFS)."""
        return bool(self.trips)

    @property
    def lat(self) -> np.ndarray:
        """Station latitudes, in station order."""
        return self._lat

    @property
    def lon(self) -> np.ndarray:
        """Station longitudes, in station order."""
        return self._lon

    def station_index(self, station_id: str) -> int:
        """Position of a station in ``stations``."""
        try:
            return self._index[station_id]
        except KeyError:
            raise RailNetworkError(f"no station with id {station_id!r} in the network") from None

    def station(self, station_id: str) -> Station:
        """The station with this id."""
        return self.stations[self.station_index(station_id)]

    def distances_from_m(self, lat: float, lon: float) -> np.ndarray:
        """Geodesic distance from a point to every station, in metres."""
        n = len(self.stations)
        _, _, d = WGS84.inv(np.full(n, lon), np.full(n, lat), self._lon, self._lat)
        return np.asarray(d, dtype=float)

    @functools.cached_property
    def segment_lengths_m(self) -> tuple[np.ndarray, ...]:
        """For every line, the geodesic length of each hop between consecutive stops."""
        lengths = []
        for line in self.lines:
            idx = np.array([self._index[s] for s in line.station_ids])
            _, _, d = WGS84.inv(
                self._lon[idx[:-1]], self._lat[idx[:-1]], self._lon[idx[1:]], self._lat[idx[1:]]
            )
            lengths.append(np.atleast_1d(np.asarray(d, dtype=float)))
        return tuple(lengths)

    def distances_between_m(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Geodesic distances between stations ``i[k]`` and ``j[k]``, in metres."""
        i, j = np.asarray(i, dtype=int), np.asarray(j, dtype=int)
        if i.size == 0:
            return np.zeros(0)
        _, _, d = WGS84.inv(self._lon[i], self._lat[i], self._lon[j], self._lat[j])
        return np.atleast_1d(np.asarray(d, dtype=float))

    def station_pairs_within_m(self, radius_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every ordered pair of distinct stations at most ``radius_m`` apart: (i, j, metres).

        Stations are put in cubic cells of a 3-D grid on the unit sphere, one cell as wide as
        the radius (with a margin for the ellipsoid), so only stations in neighbouring cells
        are measured: the work grows with the number of close pairs, not with the square of
        the number of stations, and poles and the antimeridian need no special case.
        """
        if radius_m in self._pairs:
            return self._pairs[radius_m]
        n = len(self.stations)
        lat, lon = np.radians(self._lat), np.radians(self._lon)
        xyz = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
        cell = 1.02 * radius_m / _MIN_CURVATURE_RADIUS_M
        keys = np.floor(xyz / cell).astype(np.int64)
        width = int(np.ceil(2.0 / cell)) + 4
        flat = _cell_key(keys, width)
        order = np.argsort(flat, kind="stable")
        sorted_keys = flat[order]

        # Candidates: every station against the stations of the 27 cells around its own.
        firsts, seconds = [], []
        for offset in np.array(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1])).reshape(3, -1).T:
            wanted = _cell_key(keys + offset, width)
            lo = np.searchsorted(sorted_keys, wanted, side="left")
            hi = np.searchsorted(sorted_keys, wanted, side="right")
            counts = hi - lo
            first = np.repeat(np.arange(n), counts)
            starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
            seconds.append(order[np.arange(first.size) + starts])
            firsts.append(first)
        i, j = np.concatenate(firsts), np.concatenate(seconds)
        i, j = i[i != j], j[i != j]

        d = self.distances_between_m(i, j)
        near = d <= radius_m
        self._pairs[radius_m] = (i[near], j[near], d[near])
        return self._pairs[radius_m]

    def line_paths(self) -> Iterator[tuple[str, np.ndarray]]:
        """(name, array of (lon, lat)) for every line, for drawing and distance checks."""
        for line in self.lines:
            if line.path:
                yield line.name, np.array(line.path, dtype=float)
            else:
                idx = [self._index[s] for s in line.station_ids]
                yield line.name, np.column_stack([self._lon[idx], self._lat[idx]])


@functools.cache
def load_rail_sample() -> RailNetwork:
    """The shipped sample: China's Beijing-Guangzhou, Beijing-Shanghai and Xuzhou-Lanzhou lines.

    Loaded once per process and shared: a network is immutable, and sharing it shares the
    distances it caches.
    """
    text = resources.files("geo.data").joinpath(_SAMPLE).read_text(encoding="utf-8")
    return _from_geojson(json.loads(text), _SAMPLE)


def load_rail_network(path: str | Path) -> RailNetwork:
    """A network from a GeoJSON file (``.geojson``/``.json``) or a GTFS feed (zip or directory)."""
    path = Path(path)
    if path.suffix.lower() in (".geojson", ".json"):
        return load_rail_geojson(path)
    return load_gtfs(path)


def load_rail_geojson(path: str | Path) -> RailNetwork:
    """A network from a GeoJSON FeatureCollection of station Points and line LineStrings."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RailNetworkError(f"cannot read the rail GeoJSON {path}: {exc}") from None
    return _from_geojson(document, str(path))


def load_gtfs(path: str | Path) -> RailNetwork:
    """A network with its timetable from a GTFS feed, a zip file or a directory."""
    path = Path(path)
    tables = _GtfsTables(path)
    stations, parent_of = _gtfs_stations(tables.read("stops.txt"), path)
    trips = _gtfs_trips(tables.read("stop_times.txt"), parent_of, stations, path)
    trips = _gtfs_frequencies(trips, tables.read("frequencies.txt", required=False), path)
    timezone = "Asia/Shanghai"
    agencies = tables.read("agency.txt", required=False)
    if agencies and agencies[0].get("agency_timezone"):
        timezone = agencies[0]["agency_timezone"]

    # Lines for drawing and for the headway model: one per distinct stop sequence.
    sequences = dict.fromkeys(trip.station_ids for trip in trips)
    lines = tuple(
        Line(
            name=f"{seq[0]}-{seq[-1]}",
            station_ids=seq,
            speed_kmh=_fastest_kmh(trips, seq, stations),
        )
        for seq in sequences
        if len(seq) >= 2
    )
    logger.info("gtfs loaded stations=%d trips=%d", len(stations), len(trips))
    return RailNetwork(stations=tuple(stations), lines=lines, trips=tuple(trips), timezone=timezone)


def _cell_key(keys: np.ndarray, width: int) -> np.ndarray:
    shifted = keys + width // 2
    return (shifted[:, 0] * width + shifted[:, 1]) * width + shifted[:, 2]


def _check_line(line: Line, index: Mapping[str, int]) -> None:
    if len(line.station_ids) < 2:
        raise RailNetworkError(f"line {line.name!r} must stop at two stations at least")
    unknown = [s for s in line.station_ids if s not in index]
    if unknown:
        raise RailNetworkError(f"line {line.name!r} stops at unknown station {unknown[0]!r}")
    if not (math.isfinite(line.speed_kmh) and line.speed_kmh > 0):
        raise RailNetworkError(
            f"line {line.name!r} must have a speed_kmh greater than zero, got {line.speed_kmh}"
        )
    if not (math.isfinite(line.headway_min) and line.headway_min >= 0):
        raise RailNetworkError(
            f"line {line.name!r} must have a headway_min of zero or more, got {line.headway_min}"
        )


def _from_geojson(document: Any, source: str) -> RailNetwork:
    if not isinstance(document, Mapping) or document.get("type") != "FeatureCollection":
        raise RailNetworkError(f"the rail GeoJSON {source} must be a FeatureCollection")
    features = document.get("features", [])
    if not isinstance(features, list):
        raise RailNetworkError(
            f"the features of the rail GeoJSON {source} must be a list, "
            f"got {type(features).__name__}"
        )

    stations: list[Station] = []
    line_features: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
    for number, feature in enumerate(features):
        geometry, props = _feature_parts(feature, number, source)
        kind = geometry.get("type")
        if kind == "Point":
            lon, lat = _position(geometry.get("coordinates"), source)
            station_id = str(props.get("id") or props.get("name") or "")
            if not station_id:
                raise RailNetworkError(f"a station in {source} has neither an id nor a name")
            stations.append(Station(station_id, str(props.get("name", station_id)), lat, lon))
        elif kind == "LineString":
            line_features.append((geometry, props))
    if not stations:
        raise RailNetworkError(f"the rail GeoJSON {source} has no station Points")

    lines = tuple(
        _geojson_line(geometry, props, stations, source) for geometry, props in line_features
    )
    return RailNetwork(stations=tuple(stations), lines=lines)


def _feature_parts(
    feature: Any, number: int, source: str
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The geometry and properties of a feature, each checked to be an object."""
    if not isinstance(feature, Mapping):
        raise RailNetworkError(
            f"feature {number} of the rail GeoJSON {source} must be an object, "
            f"got {type(feature).__name__}"
        )
    parts = []
    for member in ("geometry", "properties"):
        value = feature.get(member) or {}
        if not isinstance(value, Mapping):
            raise RailNetworkError(
                f"the {member} of feature {number} in {source} must be an object, "
                f"got {type(value).__name__}"
            )
        parts.append(value)
    return parts[0], parts[1]


def _geojson_line(
    geometry: Mapping[str, Any], props: Mapping[str, Any], stations: list[Station], source: str
) -> Line:
    name = str(props.get("name", "unnamed line"))
    coordinates = geometry.get("coordinates") or []
    if not isinstance(coordinates, list):
        raise RailNetworkError(
            f"the coordinates of line {name!r} in {source} must be a list of positions, "
            f"got {type(coordinates).__name__}"
        )
    path = tuple(_position(p, source) for p in coordinates)
    try:
        speed_kmh = float(props["speed_kmh"])
        headway_min = float(props.get("headway_min", 30.0))
    except (KeyError, TypeError, ValueError):
        raise RailNetworkError(f"line {name!r} in {source} needs a numeric speed_kmh") from None

    if "stations" in props:
        listed = props["stations"]
        if not isinstance(listed, list) or not all(
            isinstance(s, str | int) and not isinstance(s, bool) for s in listed
        ):
            raise RailNetworkError(
                f"the stations of line {name!r} in {source} must be a list of station ids, "
                f"got {listed!r}"
            )
        station_ids = tuple(str(s) for s in listed)
    else:
        station_ids = _snap_stops(path, stations)
    return Line(name, station_ids, speed_kmh, headway_min, tuple(path))


def _snap_stops(path: tuple[tuple[float, float], ...], stations: list[Station]) -> tuple[str, ...]:
    lat = np.array([s.lat for s in stations])
    lon = np.array([s.lon for s in stations])
    stops: list[str] = []
    for vertex_lon, vertex_lat in path:
        n = len(stations)
        _, _, d = WGS84.inv(np.full(n, vertex_lon), np.full(n, vertex_lat), lon, lat)
        nearest = int(np.argmin(d))
        if d[nearest] <= _SNAP_M and (not stops or stops[-1] != stations[nearest].id):
            stops.append(stations[nearest].id)
    return tuple(stops)


def _position(value: Any, source: str) -> tuple[float, float]:
    try:
        lon, lat = float(value[0]), float(value[1])
    except (TypeError, ValueError, IndexError):
        raise RailNetworkError(f"a position in {source} is not [longitude, latitude]") from None
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise RailNetworkError(
            f"a position in {source} is outside longitude -180..180 / latitude -90..90: "
            f"[{lon}, {lat}]"
        )
    return lon, lat


class _GtfsTables:
    """Reads GTFS text files from a directory or a zip."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise RailNetworkError(f"no GTFS feed at {path}; give a zip file or a directory")
        self.path = path

    def read(self, name: str, *, required: bool = True) -> list[dict[str, str]]:
        try:
            if self.path.is_dir():
                file = self.path / name
                if not file.exists():
                    return self._missing(name, required)
                text = file.read_text(encoding="utf-8-sig")
            else:
                with zipfile.ZipFile(self.path) as archive:
                    if name not in archive.namelist():
                        return self._missing(name, required)
                    text = archive.read(name).decode("utf-8-sig")
        except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
            raise RailNetworkError(
                f"cannot read {name} of the GTFS feed {self.path}: {exc}"
            ) from None
        return [
            {k.strip(): (v or "").strip() for k, v in row.items()}
            for row in csv.DictReader(io.StringIO(text))
        ]

    def _missing(self, name: str, required: bool) -> list[dict[str, str]]:
        if required:
            raise RailNetworkError(f"the GTFS feed {self.path} has no {name}")
        return []


def _gtfs_stations(
    rows: list[dict[str, str]], source: Path
) -> tuple[list[Station], dict[str, str]]:
    stations: list[Station] = []
    parent_of: dict[str, str] = {}
    for row in rows:
        stop_id = row.get("stop_id", "")
        parent = row.get("parent_station", "")
        if parent:
            parent_of[stop_id] = parent
            continue
        if row.get("location_type", "0") not in ("", "0", "1"):
            continue
        try:
            lat, lon = float(row["stop_lat"]), float(row["stop_lon"])
        except (KeyError, ValueError):
            raise RailNetworkError(
                f"stop {stop_id!r} in {source} has no numeric stop_lat/stop_lon"
            ) from None
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise RailNetworkError(f"stop {stop_id!r} in {source} lies outside -90..90 / -180..180")
        stations.append(Station(stop_id, row.get("stop_name", stop_id), lat, lon))
        parent_of[stop_id] = stop_id
    return stations, parent_of


def _gtfs_trips(
    rows: list[dict[str, str]],
    parent_of: dict[str, str],
    stations: list[Station],
    source: Path,
) -> list[Trip]:
    by_trip: dict[str, list[_StopTime]] = {}
    for row in rows:
        trip_id = row.get("trip_id", "")
        try:
            sequence = int(row["stop_sequence"])
            arrival = _optional_seconds(row.get("arrival_time") or row.get("departure_time"))
            departure = _optional_seconds(row.get("departure_time") or row.get("arrival_time"))
            shape_m = _optional_float(row.get("shape_dist_traveled"))
        except (KeyError, ValueError):
            raise RailNetworkError(
                f"stop_times.txt of {source} has a row without stop_sequence, with times not "
                f"HH:MM:SS or a shape_dist_traveled not a number (trip {trip_id or '?'})"
            ) from None
        station = parent_of.get(row.get("stop_id", ""))
        if station is None:
            raise RailNetworkError(
                f"stop_times.txt of {source} names unknown stop {row.get('stop_id')!r}"
            )
        by_trip.setdefault(trip_id, []).append(
            _StopTime(sequence, station, arrival, departure, shape_m)
        )

    positions = {s.id: (s.lon, s.lat) for s in stations}
    trips = []
    for trip_id, stops in by_trip.items():
        stops.sort(key=lambda stop: stop.sequence)
        arrivals, departures = _interpolated_times(trip_id, stops, positions, source)
        trips.append(
            Trip(
                id=trip_id,
                station_ids=tuple(stop.station for stop in stops),
                arrivals_s=arrivals,
                departures_s=departures,
            )
        )
    return trips


@dataclass(frozen=True)
class _StopTime:
    """A row of stop_times.txt; times are ``None`` where the feed leaves them blank."""

    sequence: int
    station: str
    arrival_s: int | None
    departure_s: int | None
    shape_m: float | None


def _interpolated_times(
    trip_id: str,
    stops: list[_StopTime],
    positions: Mapping[str, tuple[float, float]],
    source: Path,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Arrival and departure times of a trip, the blank ones filled in.

    GTFS lets a trip leave the times of stops that are not timepoints blank; the first and
    the last stop must carry times. A blank stop gets the time at its share of the way between
    the timed stops around it: by ``shape_dist_traveled`` when every stop of that stretch has
    one, else by the straight-line distance from stop to stop.
    """
    if stops[0].departure_s is None or stops[-1].arrival_s is None:
        raise RailNetworkError(
            f"trip {trip_id} in stop_times.txt of {source} must give times at its first and "
            "last stops; only stops in between may be left blank"
        )
    arrivals = [stop.arrival_s for stop in stops]
    departures = [stop.departure_s for stop in stops]
    timed = [k for k, stop in enumerate(stops) if stop.arrival_s is not None]
    for before, after in zip(timed[:-1], timed[1:], strict=True):
        if after - before < 2:
            continue
        stretch = stops[before : after + 1]
        along_m = _distances_along_m(stretch, positions)
        start_s, end_s = departures[before], arrivals[after]
        assert start_s is not None and end_s is not None
        for k in range(before + 1, after):
            share = along_m[k - before] / along_m[-1] if along_m[-1] > 0 else 0.0
            arrivals[k] = departures[k] = round(start_s + (end_s - start_s) * share)
    return tuple(int(t) for t in arrivals if t is not None), tuple(
        int(t) for t in departures if t is not None
    )


def _distances_along_m(
    stretch: list[_StopTime], positions: Mapping[str, tuple[float, float]]
) -> np.ndarray:
    """Distance from the first stop of a stretch to each of its stops, in metres."""
    shape_m = [stop.shape_m for stop in stretch]
    if all(m is not None for m in shape_m):
        first = shape_m[0]
        assert first is not None
        return np.array([m - first for m in shape_m if m is not None], dtype=float)

    lon, lat = np.array([positions[stop.station] for stop in stretch], dtype=float).T
    _, _, hops = WGS84.inv(lon[:-1], lat[:-1], lon[1:], lat[1:])
    return np.concatenate([[0.0], np.cumsum(np.atleast_1d(hops))])


def _gtfs_frequencies(trips: list[Trip], rows: list[dict[str, str]], source: Path) -> list[Trip]:
    """The trips with every trip of frequencies.txt run at each of its headways.

    A trip listed in frequencies.txt is a template: its times give the durations, and it runs
    from each row's start_time (inclusive) to its end_time (exclusive) every headway_secs.
    Trips not listed run once, as timetabled.
    """
    if not rows:
        return trips
    runs: dict[str, list[int]] = {}
    for row in rows:
        trip_id = row.get("trip_id", "")
        try:
            start_s = _gtfs_seconds(row["start_time"])
            end_s = _gtfs_seconds(row["end_time"])
            headway_s = int(row["headway_secs"])
        except (KeyError, ValueError):
            raise RailNetworkError(
                f"frequencies.txt of {source} needs HH:MM:SS start_time and end_time and a whole "
                f"number of headway_secs (trip {trip_id or '?'})"
            ) from None
        if headway_s <= 0:
            raise RailNetworkError(
                f"frequencies.txt of {source} must have headway_secs greater than zero, got "
                f"{headway_s} (trip {trip_id or '?'})"
            )
        runs.setdefault(trip_id, []).extend(range(start_s, end_s, headway_s))

    unknown = set(runs) - {trip.id for trip in trips}
    if unknown:
        raise RailNetworkError(
            f"frequencies.txt of {source} names trip {sorted(unknown)[0]!r}, "
            "which stop_times.txt does not have"
        )
    expanded: list[Trip] = []
    for trip in trips:
        if trip.id not in runs:
            expanded.append(trip)
            continue
        for start_s in runs[trip.id]:
            shift = start_s - trip.departures_s[0]
            expanded.append(
                Trip(
                    id=f"{trip.id}@{start_s}",
                    station_ids=trip.station_ids,
                    arrivals_s=tuple(t + shift for t in trip.arrivals_s),
                    departures_s=tuple(t + shift for t in trip.departures_s),
                )
            )
    return expanded


def _optional_seconds(text: str | None) -> int | None:
    return _gtfs_seconds(text) if text else None


def _optional_float(text: str | None) -> float | None:
    if not text:
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _gtfs_seconds(text: str) -> int:
    hours, minutes, seconds = (int(part) for part in text.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def _fastest_kmh(trips: list[Trip], sequence: tuple[str, ...], stations: list[Station]) -> float:
    # The headway model is not used with a timetable; this speed only describes the line.
    index = {s.id: s for s in stations}
    best = 0.0
    for trip in trips:
        if trip.station_ids != sequence:
            continue
        first, last = index[sequence[0]], index[sequence[-1]]
        _, _, d = WGS84.inv(first.lon, first.lat, last.lon, last.lat)
        hours = (trip.arrivals_s[-1] - trip.departures_s[0]) / 3600.0
        if hours > 0:
            best = max(best, d / 1000.0 / hours)
    return best or 1.0
