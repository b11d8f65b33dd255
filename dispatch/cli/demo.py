"""``wayhome demo``: a case played end to end on synthetic subscribers, faster than real time."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        subscribers: int = typer.Option(20_000, min=1, help="Synthetic devices to subscribe."),
        hours: float = typer.Option(4.0, min=0.1, help="Hours of case time to play."),
        speed: float = typer.Option(900.0, min=1, help="How much faster than real time."),
        port: int = typer.Option(None, help="Port of the HTTP API (default WAYHOME_HTTP_PORT)."),
        exit_at_end: bool = typer.Option(False, "--exit", help="Stop when the case is closed."),
    ) -> None:
        """Play a case end to end (file, ticks, sighting, resolution); then say where to look."""
        from dispatch.demo import main

        main(subscribers, hours, speed, exit_at_end, port)
