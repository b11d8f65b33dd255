"""``wayhome broker``: run the embedded Kafka-compatible broker in the foreground."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def broker() -> None:
        """Run the embedded Kafka-compatible broker (tansu) on loopback until Ctrl-C."""
        raise typer.Exit(1)
