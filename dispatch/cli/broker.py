"""``wayhome broker``: run the embedded Kafka-compatible broker (tansu) in the foreground.

It listens on loopback (``WAYHOME_BROKER_HOST``/``WAYHOME_BROKER_PORT``, or ``--host``/``--port``)
until Ctrl-C or SIGTERM, then stops the broker and exits 0. See :mod:`dispatch.broker`.
"""

from __future__ import annotations

import signal
import threading
import types

import typer
from rich.console import Console

from dispatch.broker import BrokerError, EmbeddedBroker
from dispatch.settings import get_settings


def _run(host: str | None, port: int | None) -> None:
    console = Console()
    settings = get_settings()
    broker = EmbeddedBroker(
        host=host or settings.broker_host,
        port=settings.broker_port if port is None else port,
    )

    # Ctrl-C (SIGINT) and SIGTERM only ask for a stop; the main thread then stops the broker,
    # so a signal never lands in the middle of starting or stopping it.
    stop = threading.Event()

    def _request_stop(signum: int, frame: types.FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with console.status(f"Starting the embedded broker on {broker.bootstrap_servers}..."):
            broker.start()
        console.print(
            f"[green]Embedded broker (tansu) listening on [bold]{broker.bootstrap_servers}"
            f"[/bold][/green] (memory only; pid {broker.pid})"
        )
        console.print(
            f"Use it with [bold]KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}[/bold]. "
            "Press Ctrl-C to stop."
        )
        while not stop.wait(0.2):
            if not broker.running:
                console.print("[red]Error:[/red] the embedded broker exited by itself.")
                raise typer.Exit(1)
        code = broker.stop()
        console.print(f"Embedded broker stopped (exit {code}).")
    except BrokerError as exc:
        console.print(f"[red]Error:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def register(app: typer.Typer) -> None:
    """Add ``wayhome broker`` to the root command."""

    @app.command()
    def broker(
        host: str | None = typer.Option(
            None, help="Address to listen on; default WAYHOME_BROKER_HOST (127.0.0.1)."
        ),
        port: int | None = typer.Option(
            None,
            min=0,
            max=65535,
            help="Port to listen on (0: any free port); default WAYHOME_BROKER_PORT (9092).",
        ),
    ) -> None:
        """Run the embedded Kafka-compatible broker (tansu) on loopback until Ctrl-C."""
        _run(host, port)
