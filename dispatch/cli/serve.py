"""``wayhome serve``: the API, the dispatcher, the recorder and delivery in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import typer

from dispatch.settings import get_settings


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        port: int = typer.Option(None, help="Port of the HTTP API (default WAYHOME_HTTP_PORT)."),
        host: str = typer.Option(None, help="Address of the HTTP API (default WAYHOME_HTTP_HOST)."),
    ) -> None:
        """Run wayhome: the embedded broker unless KAFKA_BOOTSTRAP_SERVERS is set, SQLite state."""
        from dispatch.service import serve as run

        settings = get_settings()
        updates = {k: v for k, v in {"http_port": port, "http_host": host}.items() if v is not None}
        if updates:
            settings = settings.model_copy(update=updates)
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
        )
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run(settings))
