"""``wayhome subscribers import FILE``: bulk-import subscribers into the registry.

The store is the one the service uses: PostgreSQL + PostGIS when ``WAYHOME_DATABASE_URL`` is
set, else the SQLite file ``subscribers.sqlite3`` in ``WAYHOME_DATA_DIR``. Every row is checked
first (with a progress bar); the rows accepted are then written in one transaction, and each
rejected row is listed with the reason. Exit status: 0 when every row was accepted, 1 when some
were rejected, 2 when the file or the store could not be used at all.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dispatch.settings import get_settings

_SHOWN_REJECTIONS = 50


def _import(
    path: Path = typer.Argument(..., help="A .csv, .geojson, .gpkg or .parquet file."),
    replace_existing: bool = typer.Option(
        False, "--replace-existing", help="Overwrite subscribers whose id is already registered."
    ),
    all_or_nothing: bool = typer.Option(
        False, "--all-or-nothing", help="Write nothing if any row is rejected."
    ),
) -> None:
    """Import subscribers (devices, watched areas, platforms) from a file."""
    from subscribers import PostgisRegistry, Registry, SqliteRegistry, SubscriberError

    console = Console()
    settings = get_settings()
    try:
        registry: Registry
        if settings.database_url:
            registry = PostgisRegistry(settings.database_url)
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            registry = SqliteRegistry(settings.data_dir / "subscribers.sqlite3")
        with registry:
            report = registry.import_file(
                path,
                replace_existing=replace_existing,
                all_or_nothing=all_or_nothing,
                show_progress=True,
            )
    except SubscriberError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None

    console.print(
        f"[green]{report.accepted:,} subscribers imported[/], "
        f"{len(report.rejected):,} rows rejected"
    )
    if report.rejected:
        table = Table("row", "reason", title="rejected rows")
        for number, reason in report.rejected[:_SHOWN_REJECTIONS]:
            table.add_row(str(number), reason)
        console.print(table)
        if len(report.rejected) > _SHOWN_REJECTIONS:
            console.print(f"... and {len(report.rejected) - _SHOWN_REJECTIONS:,} more")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``subscribers`` command group to the root application."""
    group = typer.Typer(help="Manage subscribers: bulk import.", no_args_is_help=True)
    group.command("import")(_import)
    app.add_typer(group, name="subscribers")
