"""``wayhome demo``: one case played end to end on synthetic subscribers, faster than real time.

The demo starts the whole service as ``wayhome serve`` does (the embedded broker unless
``KAFKA_BOOTSTRAP_SERVERS`` is set, SQLite in a fresh data dir), with an accelerated clock.
It then, through the HTTP API like any client:

1. subscribes ``subscribers`` synthetic devices (population-weighted around China's cities,
   :mod:`subscribers.synthetic`) by server-sent events, and one platform watching Henan;
2. files a case in Zhengzhou (a child taken by car, last seen a few minutes ago), whose area is
   the multimodal reach: walking, driving and high-speed rail from the stations in reach;
3. lets the case tick for ``hours`` of case time, showing the area and the alerted count;
4. adds a sighting in Wuhan half-way (the area restarts there; everyone alerted gets an
   Update) and resolves the case at the end (a Cancel to exactly those alerted);
5. prints where to look: the area GeoJSON, the CAP document, the log's checkpoint, metrics,
   with a token to read them, and keeps serving until Ctrl-C (``--exit`` to stop instead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chain.entries import parse_entry
from dispatch.clock import AcceleratedClock
from dispatch.service import Service
from dispatch.settings import Settings

ZHENGZHOU = (34.7466, 113.6254)
WUHAN = (30.5928, 114.3055)
HENAN = {
    "type": "Polygon",
    "coordinates": [[[110.3, 31.4], [116.7, 31.4], [116.7, 36.4], [110.3, 36.4], [110.3, 31.4]]],
}


def synthetic_devices(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` SSE devices from :func:`subscribers.synthetic.generate`."""
    from subscribers import synthetic

    _, lon, lat = synthetic.generate(n, seed=seed)
    return [
        {
            "id": f"demo-{i:06d}",
            "kind": "device",
            "lon": float(x),
            "lat": float(y),
            "channel": {"kind": "sse"},
            "language": "zh" if i % 4 else "en",
        }
        for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True))
    ]


async def _subscribe(
    client: httpx.AsyncClient,
    token: str,
    bodies: list[dict[str, Any]],
    progress: Progress,
    description: str,
) -> None:
    task = progress.add_task(description, total=len(bodies))
    headers = {"Authorization": f"Bearer {token}"}
    semaphore = asyncio.Semaphore(32)

    async def one(body: dict[str, Any]) -> None:
        async with semaphore:
            response = await client.post("/v1/subscribers", headers=headers, json=body)
            response.raise_for_status()
            progress.advance(task)

    await asyncio.gather(*(one(body) for body in bodies))


async def run_demo(
    settings: Settings,
    *,
    subscribers: int,
    hours: float,
    speed: float,
    exit_at_end: bool,
    console: Console,
) -> dict[str, Any]:
    """Play the demo; returns what it saw (for tests)."""
    clock = AcceleratedClock(speed)
    service = await Service(settings, clock).start()
    assert service.app is not None and service.tokens is not None and service.view is not None
    server = uvicorn.Server(
        uvicorn.Config(
            service.app,
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            lifespan="off",
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = settings.public_url or f"http://{settings.http_host}:{port}"
    police, platform = (
        service.tokens.create("police", "demo"),
        service.tokens.create("platform", "demo"),
    )
    analyst = service.tokens.create("analyst", "demo")
    outcome: dict[str, Any] = {"base_url": base}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,.0f}/{task.total:,.0f}"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                devices = synthetic_devices(subscribers, seed=1)
                await _subscribe(
                    client, platform, devices, progress, "subscribing synthetic devices"
                )
                await _subscribe(
                    client,
                    platform,
                    [
                        {
                            "id": "platform-henan",
                            "kind": "platform",
                            "area": HENAN,
                            "channel": {"kind": "sse"},
                        }
                    ],
                    progress,
                    "subscribing a platform for Henan",
                )
                assert service.dispatcher is not None
                while len(service.dispatcher.directory) < subscribers + 1:
                    await asyncio.sleep(0.1)

                # File the case, last seen ten minutes ago (case time).
                last_seen = clock.now() - timedelta(minutes=10)
                case = {
                    "case_id": "demo-zhengzhou",
                    "category": "vehicle_abduction",
                    "policy": "multimodal",
                    "last_seen": {
                        "lat": ZHENGZHOU[0],
                        "lon": ZHENGZHOU[1],
                        "time": last_seen.isoformat(),
                    },
                    "texts": [
                        {
                            "language": "zh",
                            "headline": "紧急寻人：7岁男孩",
                            "description": "身穿红色外套，蓝色帽子，可能被带上一辆白色面包车。",
                        },
                        {
                            "language": "en",
                            "headline": "Missing boy, 7",
                            "description": "Red coat, blue cap; may be in a white van.",
                        },
                    ],
                    "private": {"name": "(demo) Wang Xiaoming"},
                }
                police_headers = {"Authorization": f"Bearer {police}"}
                (
                    await client.post("/v1/cases", headers=police_headers, json=case)
                ).raise_for_status()

                # Let it tick; a sighting half-way, the resolution at the end.
                ticking = progress.add_task("case time (h)", total=hours)
                sighted = False
                started = clock.now()
                while (elapsed_h := (clock.now() - started).total_seconds() / 3600) < hours:
                    state = service.view.get("demo-zhengzhou")
                    if state is not None:
                        area_km2 = _area_km2(state.previous_area)
                        progress.update(
                            ticking,
                            completed=min(elapsed_h, hours),
                            description=(
                                f"case time {elapsed_h:4.1f} h · tick {state.tick} · "
                                f"area {area_km2:,.0f} km² · alerted {state.alerted_count():,}"
                            ),
                        )
                    if not sighted and elapsed_h >= hours / 2:
                        sighting = {
                            "lat": WUHAN[0],
                            "lon": WUHAN[1],
                            "time": clock.now().isoformat(),
                            "note": "seen at a service area",
                        }
                        (
                            await client.post(
                                "/v1/cases/demo-zhengzhou/sightings",
                                headers=police_headers,
                                json=sighting,
                            )
                        ).raise_for_status()
                        sighted = True
                        console.print(
                            f"[yellow]sighting in Wuhan at case time {elapsed_h:.1f} h: "
                            "the area restarts there; the alerted get an Update[/yellow]"
                        )
                    await asyncio.sleep(0.2)
                progress.update(ticking, completed=hours)
                (
                    await client.post(
                        "/v1/cases/demo-zhengzhou/resolution",
                        headers=police_headers,
                        json={"outcome": "found"},
                    )
                ).raise_for_status()
                while (
                    state := service.view.get("demo-zhengzhou")
                ) is None or state.status != "resolved":
                    await asyncio.sleep(0.1)
            # The log's recorder follows the dispatches; wait (a while at most) for the last.
            for _ in range(100):
                if service.recorder is None or service.recorder.appended >= state.tick + 1:
                    break
                await asyncio.sleep(0.1)
            service.ledger.flush()
            kinds = Counter(
                parse_entry(entry).record["kind"]
                for entry in service.ledger.entries(0, service.ledger.size)
            )
            outcome.update(
                tick=state.tick,
                alerted=state.alerted_count(),
                log_size=service.ledger.size,
                log_kinds=dict(kinds),
            )
            console.print(
                f"[green]found.[/green] {state.alerted_count():,} subscribers were alerted "
                f"over {state.tick + 1} dispatches; each got a Cancel."
            )
        _where_to_look(console, base, analyst, police, service)
        if not exit_at_end:
            console.print("serving until Ctrl-C")
            await serving
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 5)
        await service.stop()
    return outcome


def _area_km2(area: Any) -> float:
    if area is None:
        return 0.0
    from pyproj import Geod

    return abs(Geod(ellps="WGS84").geometry_area_perimeter(area)[0]) / 1e6


def _where_to_look(
    console: Console, base: str, analyst: str, police: str, service: Service
) -> None:
    table = Table(title="where to look", show_lines=False)
    table.add_column("what", no_wrap=True)
    table.add_column("where", overflow="fold")
    case = f"{base}/v1/cases/demo-zhengzhou"
    table.add_row("the case", case)
    table.add_row("its last area (GeoJSON)", f"{case}/area")
    table.add_row("its last notice (CAP 1.2)", f"{case}/alert.cap")
    table.add_row("the log's checkpoint", f"{base}/v1/ledger/checkpoint")
    table.add_row("a proof of entry 0", f"{base}/v1/ledger/proof/0")
    table.add_row("metrics (Prometheus)", f"{base}/metrics")
    table.add_row("the API (OpenAPI)", f"{base}/docs")
    console.print(table)
    console.print(f"analyst token: [bold]{analyst}[/bold]", soft_wrap=True)
    console.print(f"police token:  [bold]{police}[/bold]", soft_wrap=True)
    console.print("try:", soft_wrap=True)
    console.print(f'  curl -H "Authorization: Bearer {analyst}" {case}/area', soft_wrap=True)
    console.print(f"data dir: {service.settings.data_dir}")


def demo_settings(base: Settings, data_dir: Path | None) -> Settings:
    """The demo's settings: a fresh data dir of its own, topics of its own."""
    directory = data_dir or Path(tempfile.mkdtemp(prefix="wayhome-demo-"))
    return base.model_copy(update={"data_dir": directory, "topic_prefix": "wayhome-demo."})


def main(subscribers: int, hours: float, speed: float, exit_at_end: bool, port: int | None) -> None:
    """Entry point of ``wayhome demo``."""
    from dispatch.settings import get_settings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    settings = demo_settings(get_settings(), None)
    if port is not None:
        settings = settings.model_copy(update={"http_port": port})
    console = Console()
    console.print(
        f"[bold]wayhome demo[/bold]: {subscribers:,} synthetic subscribers, "
        f"{hours} h of case time at {speed:g}× speed"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_demo(
                settings,
                subscribers=subscribers,
                hours=hours,
                speed=speed,
                exit_at_end=exit_at_end,
                console=console,
            )
        )
