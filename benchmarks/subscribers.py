"""Who is inside: wayhome's SubscriberIndex beside geopandas, shapely, H3 and PostGIS.

Run::

    python -m benchmarks.subscribers                      # 10 M subscribers, in PostGIS too
    python -m benchmarks.subscribers --n 1000000 --postgis-rows 200000 --repeat 10

Every peer answers the same questions, in the same process, on the same synthetic subscribers
(``subscribers.synthetic``, seed 0): geodesic discs of 5, 50 and 300 km around Zhengzhou from
``geo.disc``, and the 50-60 km ring between ``disc(60 km)`` and ``disc(50 km)``. The reference
set is ``shapely.contains_xy`` over every point (for the ring: inside the outer disc and not
inside the inner one); each method's symmetric difference from it is reported beside its
median latency.

- wayhome: ``SubscriberIndex.inside`` for a disc and ``inside_ring(outer, inner)`` for the
  ring, as the dispatcher asks it;
- geopandas ``sjoin(predicate="within")`` with the points' spatial index built beforehand, and
  shapely ``STRtree`` over the points, ``query(area, predicate="contains")``; both take the
  ring as one geometry, ``outer.difference(inner)``;
- H3 (v4): every point's res-9 cell, sorted; a query covers the disc with ``grid_disk`` (the
  ring: the outer cover minus a disk inside the inner disc) and takes each cover cell's res-9
  descendants as one ``searchsorted`` range. Two covers are timed: at res 8 (edge ~0.5 km,
  the size of wayhome's finest cells), and at the finest resolution whose cover stays under
  ~20,000 cells. Both are inexact at the edge, by construction;
- PostGIS: a table of ``--postgis-rows`` points (all of them by default; loading 10 M rows
  takes a few minutes) loaded with COPY, GiST indexes on the geography and on its geometry
  cast; ``ST_DWithin`` on the geography (a true geodesic disc) and ``ST_Contains(area,
  position::geometry)``, which like ``contains_xy`` leaves a point on the boundary outside.
  Compared with wayhome on the same rows: the first wayhome measurement when the rows are all
  the subscribers, a second index over the rows otherwise.

Also measured: index build time from arrays, bytes per subscriber, and location updates
applied per second (batches of 100,000, merges included: the clocks stop when the last
merge, which runs on the index's own thread, is done). The bytes are the steady state:
building the index, and merging moved points into it, briefly hold the old and the new arrays
together, about twice as many bytes.
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from rich.console import Console
from rich.table import Table

from geo import disc
from subscribers import SubscriberIndex, synthetic

ZHENGZHOU_LAT, ZHENGZHOU_LON = 34.75778, 113.64861
RADII_KM = (5, 50, 300)

console = Console()


@dataclass
class Measure:
    """Median seconds of one method on one query, and how far its answer is from the truth."""

    seconds: float
    symdiff: int
    found: int
    cpu_seconds: float | None = None


@dataclass
class Results:
    rows: dict[str, dict[str, Measure]] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)

    def put(self, query: str, method: str, measure: Measure) -> None:
        self.rows.setdefault(query, {})[method] = measure


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls after one warm-up call, and the last result."""
    seconds, _, result = median_times(fn, repeat)
    return seconds, result


def median_times(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Median wall and CPU (this thread) time of ``repeat`` calls after a warm-up call."""
    result = fn()
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.thread_time()
        result = fn()
        cpu.append(time.thread_time() - start_cpu)
        wall.append(time.perf_counter() - start)
    return statistics.median(wall), statistics.median(cpu), result


def symdiff(found: np.ndarray, truth: np.ndarray) -> int:
    return len(np.setxor1d(found, truth, assume_unique=False))


@dataclass(frozen=True)
class Query:
    """An area, and for a ring the area before (its points are left out)."""

    area: Any
    before: Any = None

    @property
    def geometry(self) -> Any:
        """One geometry for the peers that take one: the ring as the difference."""
        return self.area if self.before is None else self.area.difference(self.before)

    def truth(self, keys: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Sorted keys inside by ``contains_xy``: inside the area and not inside the before."""
        hit = shapely.contains_xy(self.area, lon, lat)
        if self.before is not None:
            hit &= ~shapely.contains_xy(self.before, lon, lat)
        return np.sort(keys[hit])


def queries() -> dict[str, Query]:
    areas = {
        f"disc {r} km": Query(disc(ZHENGZHOU_LAT, ZHENGZHOU_LON, r * 1000.0)) for r in RADII_KM
    }
    outer = disc(ZHENGZHOU_LAT, ZHENGZHOU_LON, 60_000.0)
    inner = disc(ZHENGZHOU_LAT, ZHENGZHOU_LON, 50_000.0)
    areas["ring 50-60 km"] = Query(outer, inner)
    return areas


def radius_of(name: str) -> tuple[float, float]:
    """(inner, outer) radius in metres of a named query (inner 0 for a disc)."""
    if name.startswith("ring"):
        return 50_000.0, 60_000.0
    return 0.0, float(name.split()[1]) * 1000.0


# -- wayhome --------------------------------------------------------------------------------


def bench_wayhome(
    keys: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    areas: dict[str, Query],
    truths: dict[str, np.ndarray],
    repeat: int,
    results: Results,
    label: str = "wayhome",
) -> SubscriberIndex:
    start, start_cpu = time.perf_counter(), time.process_time()
    index = SubscriberIndex.from_arrays(keys, lon, lat)
    build_s, build_cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
    if label == "wayhome":
        results.facts["build from arrays (s), wall / CPU"] = f"{build_s:.2f} / {build_cpu_s:.2f}"
        results.facts["bytes per subscriber (index arrays)"] = f"{index.nbytes / len(index):.1f}"
    for name, query in areas.items():
        seconds, cpu_seconds, found = median_times(
            lambda q=query: index.inside_ring(q.area, q.before), repeat
        )
        measure = Measure(seconds, symdiff(found, truths[name]), len(found), cpu_seconds)
        results.put(name, label, measure)
    return index


def bench_updates(
    index: SubscriberIndex,
    keys: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    areas: dict[str, Query],
    results: Results,
    batches: int = 10,
    batch: int = 100_000,
) -> None:
    rng = np.random.default_rng(42)
    batch = min(batch, len(keys))
    lon, lat = lon.copy(), lat.copy()
    moves = []
    for _ in range(batches):
        # Most devices drift a few hundred metres; one in ten turns up somewhere else.
        who = rng.choice(len(keys), batch, replace=False)
        new_lon = lon[who] + rng.normal(0.0, 0.003, batch)
        new_lat = lat[who] + rng.normal(0.0, 0.003, batch)
        far = rng.random(batch) < 0.1
        elsewhere = rng.integers(0, len(keys), int(far.sum()))
        new_lon[far], new_lat[far] = lon[elsewhere], lat[elsewhere]
        np.clip(new_lon, -180.0, 180.0, out=new_lon)
        np.clip(new_lat, -90.0, 90.0, out=new_lat)
        lon[who], lat[who] = new_lon, new_lat
        moves.append((keys[who], new_lon, new_lat))

    # update() leaves merges to the index's merging thread; the clocks run until the last
    # merge is done, so the rate includes them (and CPU counts every thread of the process).
    start, start_cpu = time.perf_counter(), time.process_time()
    for moved_keys, new_lon, new_lat in moves:
        index.update(moved_keys, new_lon, new_lat)
    index.wait_for_merge()
    elapsed = time.perf_counter() - start
    elapsed_cpu = time.process_time() - start_cpu
    results.facts["location updates applied per second, wall / CPU"] = (
        f"{batches * batch / elapsed:,.0f} / {batches * batch / elapsed_cpu:,.0f}"
    )

    area = areas["disc 50 km"]
    found = index.inside(area.area)
    results.facts["symdiff after updates (50 km)"] = str(symdiff(found, area.truth(keys, lon, lat)))

    # Queries with moved points still waiting to be merged: force a full delta, then time.
    index.compact()
    index.compact_min = 10**12
    who = rng.choice(len(keys), len(keys) // 32, replace=False)
    index.update(keys[who], np.minimum(lon[who] + 0.01, 180.0), lat[who])
    for name in ("disc 5 km", "disc 50 km"):
        seconds, _ = median_time(lambda name=name: index.inside(areas[name].area), 21)
        results.facts[f"{name} with {index.pending:,} moves pending (ms)"] = ms(seconds)


# -- shapely and geopandas ------------------------------------------------------------------


def bench_shapely_and_geopandas(
    keys: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    areas: dict[str, Query],
    truths: dict[str, np.ndarray],
    repeat: int,
    results: Results,
) -> None:
    import geopandas

    points = shapely.points(lon, lat)
    start = time.perf_counter()
    tree = shapely.STRtree(points)
    results.facts["STRtree build (s)"] = f"{time.perf_counter() - start:.2f}"
    for name, query in areas.items():
        seconds, found = median_time(
            lambda area=query.geometry, tree=tree: keys[tree.query(area, predicate="contains")],
            max(3, repeat // 4),
        )
        results.put(name, "STRtree", Measure(seconds, symdiff(found, truths[name]), len(found)))
    del tree
    gc.collect()

    frame = geopandas.GeoDataFrame({"key": keys}, geometry=points, crs="EPSG:4326")
    del points
    start = time.perf_counter()
    frame.sindex  # noqa: B018 - builds the spatial index sjoin then uses
    results.facts["geopandas sindex build (s)"] = f"{time.perf_counter() - start:.2f}"
    for name, query in areas.items():
        target = geopandas.GeoDataFrame(geometry=[query.geometry], crs="EPSG:4326")

        def run(target: Any = target, frame: Any = frame) -> np.ndarray:
            joined = geopandas.sjoin(frame, target, predicate="within", how="inner")
            return joined["key"].to_numpy()

        seconds, found = median_time(run, 3)
        results.put(
            name, "geopandas sjoin", Measure(seconds, symdiff(found, truths[name]), len(found))
        )
    del frame
    gc.collect()


# -- H3 --------------------------------------------------------------------------------------

H3_POINT_RES = 9
H3_FIXED_RES = 8
_H3_RES_SHIFT = np.uint64(52)
_H3_RES_MASK = np.uint64(0xF) << _H3_RES_SHIFT


def h3_descendant_range(cells: np.ndarray, res: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last res-9 descendants of res-``res`` cells (3-bit digits, 7 = unused)."""
    lo = (cells & ~_H3_RES_MASK) | (np.uint64(H3_POINT_RES) << _H3_RES_SHIFT)
    hi = lo.copy()
    for digit_res in range(res + 1, H3_POINT_RES + 1):
        shift = np.uint64((15 - digit_res) * 3)
        lo &= ~(np.uint64(7) << shift)
        hi = (hi & ~(np.uint64(7) << shift)) | (np.uint64(6) << shift)
    return lo, hi


def bench_h3(
    keys: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    areas: dict[str, Query],
    truths: dict[str, np.ndarray],
    repeat: int,
    results: Results,
) -> None:
    from h3.api import basic_int as h3

    start = time.perf_counter()
    cells = np.fromiter(
        (
            h3.latlng_to_cell(y, x, H3_POINT_RES)
            for x, y in zip(lon.tolist(), lat.tolist(), strict=True)
        ),
        dtype=np.uint64,
        count=len(lon),
    )
    order = np.argsort(cells)
    cells, cell_keys = cells[order], keys[order]
    results.facts["H3 build (s)"] = f"{time.perf_counter() - start:.2f}"
    centre = h3.latlng_to_cell(ZHENGZHOU_LAT, ZHENGZHOU_LON, H3_POINT_RES)

    for name in areas:
        inner_m, outer_m = radius_of(name)

        # Two covers, each holding every point of the area plus extras near its edge: at res 8
        # (edge ~0.5 km, the size of wayhome's finest cells), and at the finest resolution
        # whose grid_disk stays under ~20,000 cells (faster, coarser).
        adaptive = H3_POINT_RES
        while adaptive > 0 and 3 * h3_disk_k(h3, outer_m, adaptive) ** 2 > 20_000:
            adaptive -= 1
        for label, res in (("H3 res 8", H3_FIXED_RES), ("H3 ≤20k cells", adaptive)):

            def run(res: int = res, inner_m: float = inner_m, outer_m: float = outer_m) -> Any:
                centre_cell = h3.cell_to_parent(centre, res)
                cover = set(h3.grid_disk(centre_cell, h3_disk_k(h3, outer_m, res)))
                if inner_m:
                    cover -= set(h3.grid_disk(centre_cell, h3_inner_k(h3, inner_m, res)))
                ids = np.fromiter(cover, dtype=np.uint64, count=len(cover))
                lo, hi = h3_descendant_range(ids, res)
                starts = np.searchsorted(cells, lo, side="left")
                ends = np.searchsorted(cells, hi, side="right")
                return take_ranges(cell_keys, starts, ends)

            seconds, found = median_time(run, 5 if label == "H3 res 8" else repeat)
            results.put(name, label, Measure(seconds, symdiff(found, truths[name]), len(found)))


def h3_edge_m(h3: Any, res: int) -> float:
    """Edge length of the hexagon at Zhengzhou at ``res`` (from its area; the global average
    runs ~12 % long here, which would leave grid_disk covers short)."""
    cell = h3.latlng_to_cell(ZHENGZHOU_LAT, ZHENGZHOU_LON, res)
    return float(np.sqrt(2.0 * h3.cell_area(cell, unit="m^2") / (3.0 * np.sqrt(3.0))))


def h3_disk_k(h3: Any, radius_m: float, res: int) -> int:
    """Rings of a grid_disk that covers a disc of ``radius_m``.

    A grid_disk of k rings is a hexagon whose edges lie 1.5 x edge length x k from its centre,
    so k = radius / (1.5 x edge) reaches the disc everywhere (and overshoots at the corners);
    5 % more allows for the grid's distortion across the disc.
    """
    return int(np.ceil(1.05 * radius_m / (1.5 * h3_edge_m(h3, res))))


def h3_inner_k(h3: Any, radius_m: float, res: int) -> int:
    """Rings of a grid_disk inside a disc of ``radius_m`` (corners at sqrt(3) x edge x k)."""
    return max(int(np.floor(0.95 * radius_m / (np.sqrt(3.0) * h3_edge_m(h3, res)))) - 1, 0)


def take_ranges(keys: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """keys[starts[i]:ends[i]] for all i, by slices when few, by one gather when many."""
    if len(starts) <= 4096:
        return np.concatenate(
            [keys[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
        )
    lengths = ends - starts
    offsets = np.cumsum(lengths) - lengths
    positions = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))
    return keys[positions]


# -- PostGIS ---------------------------------------------------------------------------------


def bench_postgis(
    keys: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    areas: dict[str, Query],
    truths: dict[str, np.ndarray],
    repeat: int,
    results: Results,
) -> None:
    import psycopg

    from tests.services.postgis import start_postgis

    server = start_postgis()
    try:
        with psycopg.connect(server.dsn, autocommit=True) as db:
            start = time.perf_counter()
            db.execute("CREATE TABLE bench_raw (key bigint, lon float8, lat float8)")
            with db.cursor().copy("COPY bench_raw (key, lon, lat) FROM STDIN") as copy:
                buffer = io.StringIO()
                np.savetxt(
                    buffer, np.c_[keys, lon, lat], fmt=["%d", "%.17g", "%.17g"], delimiter="\t"
                )
                copy.write(buffer.getvalue())
            db.execute(
                "CREATE TABLE bench AS SELECT key, "
                "ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geography AS position FROM bench_raw"
            )
            db.execute("CREATE INDEX ON bench USING gist (position)")
            db.execute("CREATE INDEX ON bench USING gist ((position::geometry))")
            db.execute("VACUUM ANALYZE bench")
            results.facts["PostGIS load + index (s)"] = f"{time.perf_counter() - start:.1f}"

            for name, query in areas.items():
                inner_m, outer_m = radius_of(name)
                truth = truths[name]

                def fetch(sql: str, params: tuple[Any, ...]) -> np.ndarray:
                    row = db.execute(sql, params, binary=True).fetchone()
                    return np.array(row[0] or [], dtype=np.int64)

                # As the PostGIS store asks: a point on the boundary is outside, as for wayhome.
                contains_sql = (
                    "SELECT array_agg(key) FROM bench WHERE "
                    "ST_Contains(ST_GeomFromWKB(%s, 4326), position::geometry)"
                )
                wkbs: tuple[Any, ...] = (shapely.to_wkb(query.area),)
                if query.before is not None:
                    contains_sql += (
                        " AND NOT ST_Contains(ST_GeomFromWKB(%s, 4326), position::geometry)"
                    )
                    wkbs += (shapely.to_wkb(query.before),)
                seconds, found = median_time(
                    lambda wkbs=wkbs, sql=contains_sql: fetch(sql, wkbs), repeat
                )
                results.put(
                    name,
                    "PostGIS ST_Contains",
                    Measure(seconds, symdiff(found, truth), len(found)),
                )

                centre = f"SRID=4326;POINT({ZHENGZHOU_LON} {ZHENGZHOU_LAT})"
                within_sql = (
                    "SELECT array_agg(key) FROM bench WHERE ST_DWithin(position, %s::geography, %s)"
                )
                if inner_m:
                    within_sql += " AND NOT ST_DWithin(position, %s::geography, %s)"
                params: tuple[Any, ...] = (centre, outer_m) + ((centre, inner_m) if inner_m else ())
                seconds, found = median_time(
                    lambda params=params, sql=within_sql: fetch(sql, params), repeat
                )
                results.put(
                    name, "PostGIS ST_DWithin", Measure(seconds, symdiff(found, truth), len(found))
                )
    finally:
        server.stop()


# -- report ----------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def report(results: Results, n: int, postgis_rows: int) -> str:
    """The results as a rich table on the terminal, and as Markdown (returned)."""
    peers_at_n = ["geopandas sjoin", "STRtree", "H3 res 8", "H3 ≤20k cells"]
    peers_at_pg = ["PostGIS ST_Contains", "PostGIS ST_DWithin"]
    groups = [("wayhome", n, peers_at_n), ("wayhome (PostGIS rows)", postgis_rows, peers_at_pg)]
    if postgis_rows == n:
        # PostGIS holds every subscriber: one wayhome measurement for all the peers.
        groups = [("wayhome", n, peers_at_n + peers_at_pg)]
    header = [
        "query",
        "method",
        "rows",
        "p50 ms",
        "wayhome p50 ms",
        "wayhome faster by",
        "found",
        "symdiff",
    ]
    table = Table(title="who is inside: synthetic subscribers around Zhengzhou, seed 0")
    for column in header:
        table.add_column(column)
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]

    def add(cells: list[str]) -> None:
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")

    for name, row in results.rows.items():
        for label, rows, peers in groups:
            ours = row.get(label)
            if ours is None:
                continue
            cpu = "" if ours.cpu_seconds is None else f" (CPU {ms(ours.cpu_seconds)})"
            add(
                [
                    name,
                    "**wayhome**",
                    f"{rows:,}",
                    f"**{ms(ours.seconds)}**{cpu}",
                    "",
                    "",
                    f"{ours.found:,}",
                    str(ours.symdiff),
                ]
            )
            for peer in peers:
                theirs = row.get(peer)
                if theirs is None:
                    continue
                ratio = theirs.seconds / ours.seconds
                add(
                    [
                        name,
                        peer,
                        f"{rows:,}",
                        ms(theirs.seconds),
                        ms(ours.seconds),
                        f"**{ratio:,.1f}×**",
                        f"{theirs.found:,}",
                        str(theirs.symdiff),
                    ]
                )

    console.print(table)
    facts = Table(title="index facts")
    facts.add_column("measure")
    facts.add_column("value")
    for key, value in results.facts.items():
        facts.add_row(key, value)
    console.print(facts)
    lines.append("")
    lines.extend(f"- {key}: {value}" for key, value in results.facts.items())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="synthetic subscribers")
    parser.add_argument(
        "--postgis-rows",
        type=int,
        default=10_000_000,
        help="rows loaded into PostGIS (the first ones; at most --n)",
    )
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per wayhome query")
    parser.add_argument("--skip", nargs="*", default=[], choices=["geopandas", "h3", "postgis"])
    parser.add_argument("--markdown", help="also write the table as Markdown to this file")
    args = parser.parse_args(argv)

    results = Results()
    results.facts["load average at start"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
    console.print(f"generating {args.n:,} synthetic subscribers")
    start = time.perf_counter()
    keys, lon, lat = synthetic.generate(args.n, seed=0)
    results.facts["synthetic generate (s)"] = f"{time.perf_counter() - start:.2f}"
    areas = queries()
    truths = {name: query.truth(keys, lon, lat) for name, query in areas.items()}

    console.print("wayhome")
    index = bench_wayhome(keys, lon, lat, areas, truths, args.repeat, results)
    if "h3" not in args.skip:
        console.print("H3")
        bench_h3(keys, lon, lat, areas, truths, args.repeat, results)
    if "geopandas" not in args.skip:
        console.print("shapely STRtree and geopandas sjoin")
        bench_shapely_and_geopandas(keys, lon, lat, areas, truths, args.repeat, results)
    if "postgis" not in args.skip:
        rows = min(args.postgis_rows, args.n)
        sub = slice(0, rows)
        pg_truths = truths
        if rows < args.n:
            console.print(f"wayhome on the first {rows:,} rows, as loaded into PostGIS")
            pg_truths = {
                name: query.truth(keys[sub], lon[sub], lat[sub]) for name, query in areas.items()
            }
            bench_wayhome(
                keys[sub],
                lon[sub],
                lat[sub],
                areas,
                pg_truths,
                args.repeat,
                results,
                label="wayhome (PostGIS rows)",
            )
        console.print(f"PostGIS with {rows:,} rows")
        bench_postgis(
            keys[sub], lon[sub], lat[sub], areas, pg_truths, max(5, args.repeat // 3), results
        )
    console.print("location updates")
    bench_updates(index, keys, lon, lat, areas, results)

    results.facts["load average at end"] = " ".join(f"{v:.1f}" for v in os.getloadavg())
    text = report(results, args.n, min(args.postgis_rows, args.n))
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main()
