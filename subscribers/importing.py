"""Bulk import of subscribers from CSV, GeoJSON, GeoPackage or GeoParquet files.

Columns (all files): ``id``, ``kind`` (device | area | platform), ``fix_time`` (ISO 8601 with
an offset), ``channel_kind`` (webhook | sse | kafka), ``channel_url``, ``channel_topic``,
``language``. A CSV gives a device's place in ``lon`` and ``lat`` and a watched area as GeoJSON
text in ``area``; the spatial formats give it as the feature's geometry (a Point for a device, a
Polygon or MultiPolygon for an area or a platform's region), and then ``kind`` may be left out.

Every row is validated by the subscriber model. A row that breaks a rule, shares its id with
another valid row of the file (every such row: the file does not say which one is meant), or
names an id already registered (unless replacing is asked for) is rejected with a sentence;
the rows accepted are written in one transaction, so a failure while writing leaves the store
as it was. Positions never appear in a rejection reason.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import shapely
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from subscribers.errors import ImportFailed
from subscribers.model import Subscriber, validation_error_to_sentence

if TYPE_CHECKING:
    from subscribers.registry import ImportReport, Registry

__all__ = ["SUPPORTED_SUFFIXES", "import_into", "read_rows"]

logger = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".csv", ".geojson", ".json", ".gpkg", ".parquet", ".geoparquet")
_FIELDS = ("id", "kind", "lon", "lat", "fix_time", "area", "language")
_CHANNEL_FIELDS = {"channel_kind": "kind", "channel_url": "url", "channel_topic": "topic"}


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def read_rows(path: Path) -> tuple[int, Iterator[dict[str, Any]]]:
    """(row count, rows as plain dicts) of a supported file, or ImportFailed with a sentence."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ImportFailed(
            f"cannot import {path.name}: the file must end in one of "
            f"{', '.join(SUPPORTED_SUFFIXES)}, got {suffix or 'no suffix'!r}"
        )
    if not path.is_file():
        raise ImportFailed(f"cannot import {path}: there is no such file")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            import geopandas

            if suffix in (".parquet", ".geoparquet"):
                frame = geopandas.read_parquet(path)
            else:
                frame = geopandas.read_file(path, engine="pyogrio")
    except Exception as exc:  # noqa: BLE001 - any reader failure means the same thing here
        raise ImportFailed(
            f"cannot import {path.name}: it could not be read as {suffix[1:]} ({exc})"
        ) from None
    crs = getattr(frame, "crs", None)
    if crs is not None and not crs.equals("EPSG:4326", ignore_axis_order=True):
        # Positions are WGS84 lon/lat everywhere in wayhome; a projected file is converted.
        frame = frame.to_crs("EPSG:4326")
    if "id" not in frame.columns:
        raise ImportFailed(f"cannot import {path.name}: it has no 'id' column")
    return len(frame), _rows_of(frame)


def _rows_of(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    geometry_column = getattr(frame, "_geometry_column_name", None)
    for record in frame.to_dict("records"):
        row: dict[str, Any] = {}
        for name in _FIELDS:
            if name in record and not _blank(record[name]):
                row[name] = record[name]
        channel = {
            key: record[column]
            for column, key in _CHANNEL_FIELDS.items()
            if column in record and not _blank(record[column])
        }
        row["channel"] = channel or None
        if isinstance(row.get("area"), str):
            try:
                row["area"] = json.loads(row["area"])
            except json.JSONDecodeError:
                row["area"] = {"type": "unreadable GeoJSON text"}
        if geometry_column is not None:
            _place_from_geometry(row, record.get(geometry_column))
        yield row


def _place_from_geometry(row: dict[str, Any], geometry: Any) -> None:
    if geometry is None or _blank(geometry) or geometry.is_empty:
        return
    if geometry.geom_type == "Point":
        row.setdefault("kind", "device")
        row["lon"], row["lat"] = geometry.x, geometry.y
    else:
        row.setdefault("kind", "area")
        row["area"] = json.loads(shapely.to_geojson(geometry))


def _progress(show: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not show,
        transient=False,
    )


def import_into(
    registry: Registry,
    path: Path,
    *,
    replace_existing: bool,
    all_or_nothing: bool,
    show_progress: bool,
) -> ImportReport:
    """Validate every row of ``path`` and write those accepted into ``registry`` at once."""
    from subscribers.registry import ImportReport

    report = ImportReport()
    total, rows = read_rows(path)
    accepted: list[tuple[int, Subscriber]] = []
    rows_of: dict[str, list[int]] = {}

    with _progress(show_progress) as progress:
        # (1) validate each row.
        checking = progress.add_task(f"checking {path.name}", total=total)
        for number, row in enumerate(rows, start=1):
            progress.advance(checking)
            try:
                subscriber = Subscriber.model_validate(row)
            except ValidationError as exc:
                report.rejected.append((number, validation_error_to_sentence(exc)))
                continue
            rows_of.setdefault(subscriber.id, []).append(number)
            accepted.append((number, subscriber))

        # (2) refuse every row of an id the file gives more than once.
        repeated = {sid: numbers for sid, numbers in rows_of.items() if len(numbers) > 1}
        if repeated:
            for number, subscriber in accepted:
                numbers = repeated.get(subscriber.id)
                if numbers is not None:
                    others = ", ".join(str(n) for n in numbers if n != number)
                    report.rejected.append(
                        (
                            number,
                            f"id {subscriber.id!r} is also in row {others}; ids must be unique "
                            "within a file, so none of these rows is imported",
                        )
                    )
            accepted = [(n, s) for n, s in accepted if s.id not in repeated]

        # (3) refuse ids already registered, unless replacing them was asked for.
        if not replace_existing and accepted:
            taken = registry.existing_ids([s.id for _, s in accepted])
            for number, subscriber in accepted:
                if subscriber.id in taken:
                    report.rejected.append(
                        (
                            number,
                            f"id {subscriber.id!r} is already registered; import with "
                            "replace_existing to overwrite it",
                        )
                    )
            accepted = [(n, s) for n, s in accepted if s.id not in taken]

        # (4) one transaction for every accepted row.
        report.rejected.sort()
        if all_or_nothing and report.rejected:
            logger.info(
                "import refused whole file rows=%d rejected=%d", total, len(report.rejected)
            )
            return report
        writing = progress.add_task(f"writing {path.name}", total=len(accepted))
        registry.write_all([s for _, s in accepted])
        progress.update(writing, completed=len(accepted))

    report.accepted = len(accepted)
    logger.info(
        "import done rows=%d accepted=%d rejected=%d", total, report.accepted, len(report.rejected)
    )
    return report
