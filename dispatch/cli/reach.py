"""``wayhome reach``: the search area at a time, as GeoJSON, and optionally as a picture.

Prints one GeoJSON FeatureCollection on stdout: the area at ``--at`` and, with ``--previous``,
the ring (what is new since the previous tick). Bad input gets one sentence on stderr, exit
status 2, and nothing on stdout.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from geo import Category

logger = logging.getLogger(__name__)


class PolicyName(StrEnum):
    TIERS = "tiers"
    MULTIMODAL = "multimodal"


class PerimeterMode(StrEnum):
    ADD = "add"
    REPLACE = "replace"


def register(app: typer.Typer) -> None:
    @app.command()
    def reach(
        lat: float = typer.Option(..., help="Latitude of the last-seen point, -90..90."),
        lon: float = typer.Option(..., help="Longitude of the last-seen point, -180..180."),
        since: str = typer.Option(..., help="Last-seen time, ISO 8601 with a UTC offset."),
        at: str = typer.Option(..., help="Time of the area, ISO 8601 with a UTC offset."),
        policy: PolicyName = typer.Option(PolicyName.MULTIMODAL, help="Reach policy."),
        category: str = typer.Option(
            "vehicle_abduction", help="Case category, e.g. vehicle_abduction, lost_child_4_6."
        ),
        rail: Path | None = typer.Option(
            None, help="Rail network: GeoJSON or GTFS (zip or directory); default: the sample."
        ),
        no_rail: bool = typer.Option(False, "--no-rail", help="Leave rail out of the model."),
        previous: str | None = typer.Option(
            None, help="Time of the previous tick: also print the ring since then."
        ),
        perimeter: Path | None = typer.Option(None, help="GeoJSON polygon of a police perimeter."),
        perimeter_mode: PerimeterMode = typer.Option(
            PerimeterMode.ADD, help="Add the perimeter to the area, or replace the area by it."
        ),
        mask: str | None = typer.Option(
            None, help="Clip the area: 'china' (approximate outline) or a GeoJSON polygon file."
        ),
        walking_kmh: float | None = typer.Option(None, help="Walking speed, km/h."),
        driving_kmh: float | None = typer.Option(None, help="Driving speed, km/h."),
        png: Path | None = typer.Option(None, help="Also draw the area over China's outline."),
    ) -> None:
        """Print the search area at --at (and the ring since --previous) as GeoJSON."""
        from geo import GeoError

        try:
            collection, drawing = _compute(
                lat, lon, since, at, policy, category, rail, no_rail, previous,
                perimeter, perimeter_mode, mask, walking_kmh, driving_kmh,
            )  # fmt: skip
            if png is not None:
                _draw(png, drawing)
        except (GeoError, _InputError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(json.dumps(collection))


class _InputError(ValueError):
    """A command-line value that cannot be used."""


def _time(option: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _InputError(
            f"{option} must be an ISO 8601 time such as 2026-12-03T08:00:00+08:00, got {text!r}"
        ) from None
    if value.tzinfo is None:
        raise _InputError(f"{option} must carry a UTC offset (e.g. +08:00 or Z), got {text!r}")
    return value


def _geojson_file(option: str, path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _InputError(f"{option} must be a readable GeoJSON file, got {path} ({exc})") from None


def _category(name: str) -> Category:
    from geo import Category

    try:
        return Category(name)
    except ValueError:
        known = ", ".join(c.value for c in Category)
        raise _InputError(f"--category must be one of {known}, got {name!r}") from None


def _compute(
    lat: float,
    lon: float,
    since: str,
    at: str,
    policy_name: PolicyName,
    category: str,
    rail_path: Path | None,
    no_rail: bool,
    previous: str | None,
    perimeter: Path | None,
    perimeter_mode: PerimeterMode,
    mask: str | None,
    walking_kmh: float | None,
    driving_kmh: float | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    from geo import (
        LastSeen,
        MultimodalPolicy,
        SearchArea,
        TiersPolicy,
        load_rail_network,
        load_rail_sample,
    )
    from geo.modes import on_foot_limit
    from geo.outline import china_outline

    since_time, at_time = _time("--since", since), _time("--at", at)
    if at_time < since_time:
        raise _InputError(f"--at ({at}) must not be before --since ({since})")
    previous_time = _time("--previous", previous) if previous is not None else None
    if previous_time is not None and not since_time <= previous_time <= at_time:
        raise _InputError(f"--previous ({previous}) must lie between --since and --at")

    last_seen = LastSeen(lat=lat, lon=lon, time=since_time)
    case_category = _category(category)
    rail = None
    if policy_name is PolicyName.TIERS:
        if walking_kmh is not None or driving_kmh is not None:
            raise _InputError("--walking-kmh and --driving-kmh apply to --policy multimodal only")
        if rail_path is not None or no_rail:
            raise _InputError("--rail and --no-rail apply to --policy multimodal only")
        policy: TiersPolicy | MultimodalPolicy = TiersPolicy()
    elif on_foot_limit(case_category) is not None and (
        walking_kmh is not None or driving_kmh is not None or rail_path is not None
    ):
        raise _InputError(
            f"--walking-kmh, --driving-kmh and --rail do not apply to {category}: a lost child "
            "on foot walks at the pace of its age band, up to its distance cap"
        )
    else:
        if not no_rail:
            rail = load_rail_network(rail_path) if rail_path is not None else load_rail_sample()
        speeds = {"walking_kmh": walking_kmh, "driving_kmh": driving_kmh}
        policy = MultimodalPolicy(rail=rail, **{k: v for k, v in speeds.items() if v is not None})

    model = SearchArea(last_seen, policy, case_category)
    if perimeter is not None:
        model = model.with_perimeter(_geojson_file("--perimeter", perimeter), perimeter_mode.value)
    if mask is not None:
        shape = china_outline() if mask == "china" else _geojson_file("--mask", Path(mask))
        model = model.with_mask(shape)

    area = model.area(at_time)
    features = [area.to_geojson()]
    ring = model.ring(previous_time, at_time) if previous_time is not None else None
    if ring is not None:
        features.append(ring.to_geojson())

    collection = {"type": "FeatureCollection", "features": features}
    title = (
        f"{policy_name.value}, {category}, {(at_time - since_time).total_seconds() / 3600:.2f} h"
    )
    drawing = {"area": area, "ring": ring, "last_seen": last_seen, "rail": rail, "title": title}
    return collection, drawing


def _draw(path: Path, drawing: dict[str, Any]) -> None:
    from geo.draw import draw_png

    try:
        draw_png(
            path,
            drawing["area"],
            drawing["last_seen"],
            ring=drawing["ring"],
            rail=drawing["rail"],
            title=drawing["title"],
        )
    except OSError as exc:
        raise _InputError(f"--png must name a writable file, got {path} ({exc})") from None
