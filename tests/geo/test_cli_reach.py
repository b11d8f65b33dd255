"""``wayhome reach``: GeoJSON on stdout, a real PNG, one sentence for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from PIL import Image
from pyproj import Geod
from shapely.geometry import Point, shape
from typer.testing import CliRunner

from dispatch.cli import app as wayhome
from dispatch.cli import reach

# The command on an application of its own, so that these tests exercise it alone; the
# PNG test below runs the root ``wayhome`` application.
app = typer.Typer()
reach.register(app)


@app.callback()
def _root() -> None:
    """Keep ``reach`` a subcommand."""


SINCE = "2026-12-03T08:00:00+08:00"
THREE_HOURS = "2026-12-03T11:00:00+08:00"
ZHENGZHOU_EAST = ["--lat", "34.7586", "--lon", "113.7755"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GEOD = Geod(ellps="WGS84")
BEIJING_WEST = (39.8949, 116.3218)
WUHAN = (30.6073, 114.4247)
OUTLINE_RGB = (242, 239, 230)


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["reach", *args])


def test_reach_prints_the_area_and_the_ring_as_a_feature_collection() -> None:
    result = _run(
        *ZHENGZHOU_EAST,
        "--since",
        SINCE,
        "--at",
        THREE_HOURS,
        "--previous",
        "2026-12-03T10:00:00+08:00",
    )

    assert result.exit_code == 0, result.output
    collection = json.loads(result.stdout)
    assert collection["type"] == "FeatureCollection"
    area, ring = collection["features"]
    assert area["properties"]["kind"] == "area" and ring["properties"]["kind"] == "ring"
    assert 0 < ring["properties"]["area_km2"] < area["properties"]["area_km2"]
    assert shape(area["geometry"]).contains(Point(116.3218, 39.8949))  # Beijing West
    assert not shape(ring["geometry"]).contains(Point(113.7755, 34.7586))


def test_tiers_policy_gives_the_tuanyuan_disc() -> None:
    result = _run(
        *ZHENGZHOU_EAST, "--since", SINCE, "--at", "2026-12-03T09:30:00+08:00", "--policy", "tiers"
    )

    assert result.exit_code == 0, result.output
    (area,) = json.loads(result.stdout)["features"]
    # 200 km tier: pi * 200^2 = 125,664 km^2, plus at most a 0.1 mile rim.
    assert 125_663 < area["properties"]["area_km2"] < 125_664 * 1.002


def test_a_lost_child_category_walks_only() -> None:
    result = _run(
        *ZHENGZHOU_EAST, "--since", SINCE, "--at", THREE_HOURS, "--category", "lost_child_4_6"
    )

    assert result.exit_code == 0, result.output
    (area,) = json.loads(result.stdout)["features"]
    assert area["properties"]["area_km2"] < 3.14159 * 3.6**2


def test_reach_draws_a_real_png_over_the_outline(tmp_path: Path) -> None:
    picture = tmp_path / "reach.png"

    # The root application of the ``wayhome`` console script, run in this process.
    done = CliRunner().invoke(
        wayhome,
        ["reach", *ZHENGZHOU_EAST, "--since", SINCE, "--at", THREE_HOURS,
         "--previous", "2026-12-03T10:30:00+08:00", "--png", str(picture)],
    )  # fmt: skip

    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["type"] == "FeatureCollection"
    assert picture.read_bytes().startswith(PNG_SIGNATURE)
    image = Image.open(picture).convert("RGB")
    pixel = _georeferenced(image)
    # Beside Beijing West and Wuhan (their own pixels carry the station marks): area colours.
    for lat, lon in (BEIJING_WEST, WUHAN):
        for azimuth in (90, 180, 270):
            near_lon, near_lat, _ = GEOD.fwd(lon, lat, azimuth, 40_000)
            assert _is_area_colour(image.getpixel(pixel(near_lon, near_lat))), (lat, lon, azimuth)
    # In the Tarim Basin, 1,500 km from any line and off the grid: the outline's colour only.
    assert image.getpixel(pixel(87.0, 38.0)) == OUTLINE_RGB


def _georeferenced(image: Image.Image):  # type: ignore[no-untyped-def]
    frame = json.loads(image.info["wayhome:frame"])
    west, south, east, north = frame["lonlat"]
    left, top, right, bottom = frame["pixels"]

    def pixel(lon: float, lat: float) -> tuple[int, int]:
        x = left + (lon - west) / (east - west) * (right - left)
        y = top + (north - lat) / (north - south) * (bottom - top)
        return round(x), round(y)

    return pixel


def _is_area_colour(rgb: tuple[int, int, int]) -> bool:
    # The area's red and the ring's orange over the outline: red high, green and blue low.
    red, green, blue = rgb
    return red > 200 and green < 190 and blue < 175


BASE = [*ZHENGZHOU_EAST, "--since", SINCE, "--at", THREE_HOURS]
BAD_INPUT = [
    (
        ["--lat", "91", "--lon", "113.7", "--since", SINCE, "--at", THREE_HOURS],
        "latitude must be within -90..90, got 91.0",
    ),
    (
        [*ZHENGZHOU_EAST, "--since", THREE_HOURS, "--at", SINCE],
        "--at (2026-12-03T08:00:00+08:00) must not be before --since",
    ),
    (
        [*ZHENGZHOU_EAST, "--since", "2026-12-03T08:00:00", "--at", THREE_HOURS],
        "--since must carry a UTC offset",
    ),
    (
        [*ZHENGZHOU_EAST, "--since", "yesterday", "--at", THREE_HOURS],
        "--since must be an ISO 8601 time",
    ),
    ([*BASE, "--driving-kmh", "-5"], "driving_kmh must be greater than zero, got -5.0"),
    ([*BASE, "--category", "teleported"], "category must be one of"),
    ([*BASE, "--previous", "2026-12-03T12:00:00+08:00"], "--previous"),
    (
        [*BASE, "--policy", "tiers", "--no-rail"],
        "--rail and --no-rail apply to --policy multimodal",
    ),
    (
        [*BASE, "--policy", "tiers", "--walking-kmh", "5"],
        "--walking-kmh and --driving-kmh apply to --policy multimodal only",
    ),
    (
        [*BASE, "--category", "lost_child_4_6", "--walking-kmh", "9"],
        "do not apply to lost_child_4_6: a lost child on foot walks at the pace of its age band",
    ),
]


@pytest.mark.parametrize(("args", "sentence"), BAD_INPUT)
def test_bad_input_gets_one_sentence_and_nothing_on_stdout(args: list[str], sentence: str) -> None:
    result = _run(*args)

    assert result.exit_code == 2
    assert result.stdout == ""
    assert sentence in result.stderr
    assert result.stderr.count("\n") == 1


def test_an_invalid_perimeter_polygon_gets_one_sentence(tmp_path: Path) -> None:
    bowtie = tmp_path / "bowtie.geojson"
    bowtie.write_text(
        json.dumps(
            {
                "type": "Polygon",
                "coordinates": [[[113, 34], [114, 35], [114, 34], [113, 35], [113, 34]]],
            }
        )
    )

    result = _run(
        *ZHENGZHOU_EAST, "--since", SINCE, "--at", THREE_HOURS, "--perimeter", str(bowtie)
    )

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "the Polygon is not a valid polygon: Self-intersection" in result.stderr


def test_a_perimeter_can_replace_the_area_and_china_can_mask_it(tmp_path: Path) -> None:
    square = tmp_path / "square.geojson"
    square.write_text(
        json.dumps(
            {
                "type": "Polygon",
                "coordinates": [[[113, 34], [114, 34], [114, 35], [113, 35], [113, 34]]],
            }
        )
    )

    replaced = _run(
        *ZHENGZHOU_EAST,
        "--since",
        SINCE,
        "--at",
        THREE_HOURS,
        "--perimeter",
        str(square),
        "--perimeter-mode",
        "replace",
    )
    masked = _run(
        *ZHENGZHOU_EAST, "--since", SINCE, "--at", "2026-12-04T20:00:00+08:00", "--mask", "china"
    )

    assert replaced.exit_code == 0 and masked.exit_code == 0
    assert shape(json.loads(replaced.stdout)["features"][0]["geometry"]).equals(
        shape(json.loads(square.read_text()))
    )
    assert not shape(json.loads(masked.stdout)["features"][0]["geometry"]).contains(
        Point(129.0, 36.0)
    )  # Korea


def test_reach_follows_a_gtfs_timetable_given_with_rail(tmp_path: Path) -> None:
    from tests.geo.test_rail import _gtfs_dir

    feed = _gtfs_dir(tmp_path)
    args = ["--lat", "30.0", "--lon", "110.0", "--since", "2026-12-03T07:50:00+08:00"]

    result = _run(*args, "--at", "2026-12-03T09:00:00+08:00", "--rail", str(feed))

    assert result.exit_code == 0, result.output
    (area,) = json.loads(result.stdout)["features"]
    # Charlie (32.0 N) is reached by the 08:00 train; 70 minutes by road would not get there.
    assert shape(area["geometry"]).contains(Point(110.0, 32.05))


def test_a_rail_file_that_cannot_be_read_gets_one_sentence(tmp_path: Path) -> None:
    result = _run(*BASE, "--rail", str(tmp_path / "absent.zip"))

    assert result.exit_code == 2
    assert result.stdout == ""
    assert "no GTFS feed at" in result.stderr
