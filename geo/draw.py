"""A PNG of a search area (and its ring) over the country outline and the rail network.

Drawn with matplotlib's Agg backend, so it needs no display. The map is plain longitude/latitude
with the aspect set for the latitude of the view (one degree east as long as it is on the ground
there), which is honest enough at a country's scale. The main cities are named at their stations
of the shipped sample network, whatever network the area was computed with.

The PNG carries its georeference as a text chunk, ``wayhome:frame``: JSON with ``lonlat``
(west, south, east, north of the map) and ``pixels`` (left, top, right, bottom of the map in the
image), so a reader or a test can find any longitude/latitude in the picture.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import shapely  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, PathPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
from shapely.geometry.base import BaseGeometry  # noqa: E402

from geo.area import Area, LastSeen  # noqa: E402
from geo.outline import china_outline  # noqa: E402
from geo.rail import RailNetwork, load_rail_sample  # noqa: E402

__all__ = ["LANDMARKS", "draw_png"]

LANDMARKS: tuple[tuple[str, str], ...] = (
    ("Beijing", "Beijing West"),
    ("Zhengzhou", "Zhengzhou East"),
    ("Wuhan", "Wuhan"),
    ("Shanghai", "Shanghai Hongqiao"),
    ("Guangzhou", "Guangzhou South"),
    ("Xi'an", "Xi'an North"),
    ("Lanzhou", "Lanzhou West"),
)
"""Cities named on the map, each placed at its station of the shipped sample network."""

_DPI = 130


def draw_png(
    path: str | Path,
    area: Area,
    last_seen: LastSeen,
    *,
    ring: Area | None = None,
    rail: RailNetwork | None = None,
    outline: BaseGeometry | None = None,
    title: str = "",
) -> None:
    """Write a PNG of ``area`` (and ``ring``) over ``outline`` (China's by default)."""
    outline = china_outline() if outline is None else outline
    figure, axes = plt.subplots(figsize=(9, 8), dpi=_DPI)
    try:
        _fill(axes, outline, facecolor="#f2efe6", edgecolor="#8a8577", linewidth=0.8)
        _fill(
            axes, area.geometry, facecolor="#d7301f", edgecolor="#99000d", alpha=0.35, linewidth=0.8
        )
        if ring is not None and not ring.is_empty:
            _fill(
                axes,
                ring.geometry,
                facecolor="#fdae6b",
                edgecolor="#e6550d",
                alpha=0.6,
                linewidth=0.6,
            )
        if rail is not None:
            for _, line in rail.line_paths():
                axes.plot(line[:, 0], line[:, 1], color="#253494", linewidth=1.0, zorder=3)
            axes.scatter(rail.lon, rail.lat, s=6, color="#253494", zorder=4)
        axes.plot(last_seen.lon, last_seen.lat, marker="*", markersize=14, color="black", zorder=5)
        _frame(axes, outline, area.geometry)
        _label_cities(axes)

        handles = [
            Patch(facecolor="#d7301f", alpha=0.35, label="search area"),
            Line2D(
                [],
                [],
                marker="*",
                color="black",
                linestyle="none",
                markersize=10,
                label="last seen",
            ),
        ]
        if ring is not None:
            handles.insert(
                1, Patch(facecolor="#fdae6b", alpha=0.6, label="new since previous tick")
            )
        if rail is not None:
            handles.append(Line2D([], [], color="#253494", marker=".", label="high-speed rail"))
        axes.legend(handles=handles, loc="lower left", fontsize=8)
        axes.set_xlabel("longitude (°E)")
        axes.set_ylabel("latitude (°N)")
        label = f"area {area.area_km2:,.0f} km²"
        if ring is not None:
            label += f"; new since previous tick {ring.area_km2:,.0f} km²"
        axes.set_title(f"{title}\n{label}" if title else label, fontsize=10)
        axes.grid(True, linewidth=0.3, alpha=0.5)
        figure.tight_layout()
        figure.savefig(
            path, format="png", dpi=_DPI, metadata={"wayhome:frame": _georeference(axes)}
        )
    finally:
        plt.close(figure)


def _label_cities(axes: Axes) -> None:
    # Names on a white halo so that they read over the area, the ring and the rail lines.
    stations = {station.name: station for station in load_rail_sample().stations}
    (west, east), (south, north) = axes.get_xlim(), axes.get_ylim()
    for city, station_name in LANDMARKS:
        station = stations[station_name]
        if not (west <= station.lon <= east and south <= station.lat <= north):
            continue
        axes.plot(
            station.lon, station.lat, marker="o", markersize=4, markerfacecolor="white",
            markeredgecolor="black", zorder=6,
        )  # fmt: skip
        axes.annotate(
            city,
            (station.lon, station.lat),
            xytext=(5, 4),
            textcoords="offset points",
            fontsize=9,
            fontweight="bold",
            zorder=7,
            bbox={
                "boxstyle": "round,pad=0.15",
                "facecolor": "white",
                "edgecolor": "none",
                "alpha": 0.8,
            },
        )


def _georeference(axes: Axes) -> str:
    # Pixel box of the map as drawn: the aspect is applied when the figure is drawn.
    axes.figure.canvas.draw()
    box = axes.get_window_extent()
    height = axes.figure.bbox.height
    (west, east), (south, north) = axes.get_xlim(), axes.get_ylim()
    return json.dumps(
        {
            "lonlat": [west, south, east, north],
            "pixels": [box.x0, height - box.y1, box.x1, height - box.y0],
        }
    )


def _fill(axes: Axes, geometry: BaseGeometry, **style: Any) -> None:
    # One compound path per polygon, so that holes (a ring's inside) stay see-through.
    for polygon in shapely.get_parts(geometry):
        if polygon.is_empty or polygon.geom_type != "Polygon":
            continue
        rings = [polygon.exterior, *polygon.interiors]
        path = MplPath.make_compound_path(
            *(MplPath(np.asarray(r.coords)[:, :2], closed=True) for r in rings)
        )
        axes.add_patch(PathPatch(path, **style))


def _frame(axes: Axes, outline: BaseGeometry, area: BaseGeometry) -> None:
    shapes = [g for g in (outline, area) if not g.is_empty]
    west, south, east, north = shapely.union_all(shapes).bounds
    pad_x, pad_y = (east - west) * 0.03, (north - south) * 0.03
    axes.set_xlim(west - pad_x, east + pad_x)
    axes.set_ylim(south - pad_y, north + pad_y)
    mid_lat = math.radians((south + north) / 2)
    axes.set_aspect(1.0 / max(math.cos(mid_lat), 0.1))
