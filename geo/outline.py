"""An approximate outline of China, for drawing maps and as a coarse optional mask.

The outline in ``geo/data/china_outline.geojson`` was drawn by hand from about 120 known border
and coast positions (mainland and Hainan). Its edges are off by tens of kilometres in places:
good for a backdrop and for clipping an area to roughly the country, never for deciding whether
a person is inside a border.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from shapely.geometry import MultiPolygon, Polygon

from geo.geometry import geojson_to_geometry

__all__ = ["china_outline"]


@functools.cache
def china_outline() -> Polygon | MultiPolygon:
    """China's approximate outline (mainland and Hainan) in longitude/latitude."""
    text = resources.files("geo.data").joinpath("china_outline.geojson").read_text("utf-8")
    return geojson_to_geometry(json.loads(text))
