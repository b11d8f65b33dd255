"""The PostGIS fixture: a real PostgreSQL 15 whose geography distances are geodesic."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.postgis

# Two points on the equator 0.009 degrees of longitude apart: 1001.9 m on the WGS 84 ellipsoid.
# A planar reading of degrees would call them 0.009 apart (within any radius above 0.009), and a
# sphere of radius 6371 km puts them 1000.8 m apart, so only a geodesic answer splits the radii
# 1001.0 m and 1002.5 m the way the assertions below expect.
_WITHIN = """
SELECT ST_DWithin(
    ST_SetSRID(ST_MakePoint(0, 0), 4326)::geography,
    ST_SetSRID(ST_MakePoint(0.009, 0), 4326)::geography,
    %(radius_m)s
)
"""


def test_postgis_extension_is_installed(postgis_dsn: str) -> None:
    with psycopg.connect(postgis_dsn) as conn:
        row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
        version = row.fetchone()
    assert version is not None
    assert version[0].startswith("3.")


@pytest.mark.parametrize(("radius_m", "within"), [(1001.0, False), (1002.5, True)])
def test_st_dwithin_on_geography_measures_metres_on_the_ellipsoid(
    postgis_dsn: str, radius_m: float, within: bool
) -> None:
    with psycopg.connect(postgis_dsn) as conn:
        row = conn.execute(_WITHIN, {"radius_m": radius_m}).fetchone()
    assert row is not None
    assert row[0] is within


def test_st_dwithin_finds_exactly_the_rows_inside_the_radius(postgis_dsn: str) -> None:
    with psycopg.connect(postgis_dsn) as conn:
        conn.execute(
            "CREATE TEMP TABLE place (name text PRIMARY KEY, position geography(Point, 4326))"
        )
        # Around Zhengzhou East station (113.7723 E, 34.7597 N): one point 400 m north, one
        # 600 m north (one degree of latitude there is about 110.95 km).
        conn.execute(
            """
            INSERT INTO place VALUES
              ('station', ST_MakePoint(113.7723, 34.7597)::geography),
              ('north-400m', ST_MakePoint(113.7723, 34.7597 + 400 / 110950.0)::geography),
              ('north-600m', ST_MakePoint(113.7723, 34.7597 + 600 / 110950.0)::geography)
            """
        )
        rows = conn.execute(
            """
            SELECT name FROM place
            WHERE ST_DWithin(position, ST_MakePoint(113.7723, 34.7597)::geography, 500)
            ORDER BY name
            """
        ).fetchall()
    assert [name for (name,) in rows] == ["north-400m", "station"]
