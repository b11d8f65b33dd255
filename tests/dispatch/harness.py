"""What the dispatch service tests share: a webhook receiver, an SSE client, the API on a port.

Everything here is real: an aiohttp server that checks each webhook's Standard Webhooks
signature, the service's FastAPI app under uvicorn on a loopback port, and an httpx client that
reads the server-sent events stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import uvicorn
from aiohttp import web
from standardwebhooks import Webhook

from dispatch.notices.signing import webhook_secret_for

START = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
ZHENGZHOU = (34.7466, 113.6254)  # lat, lon


def prefix() -> str:
    """A topic prefix of its own for one test."""
    return f"t{uuid.uuid4().hex[:10]}."


def case_body(case_id: str, *, minutes_ago: int = 30, **extra: Any) -> dict[str, Any]:
    lat, lon = ZHENGZHOU
    body: dict[str, Any] = {
        "case_id": case_id,
        "category": "vehicle_abduction",
        "last_seen": {
            "lat": lat,
            "lon": lon,
            "time": (START - timedelta(minutes=minutes_ago)).isoformat(),
        },
        "texts": [
            {"language": "en", "headline": "Missing boy, 7", "description": "Red coat, blue cap."},
            {"language": "zh", "headline": "寻找7岁男孩", "description": "红色外套，蓝色帽子。"},
        ],
        "private": {"name": "Wang Xiaoming", "id_number": "410102201901010011"},
    }
    body.update(extra)
    return body


def device(
    subscriber_id: str, km_east: float, channel: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """A device ``km_east`` kilometres east of the last-seen point."""
    lat, lon = ZHENGZHOU
    return {
        "id": subscriber_id,
        "kind": "device",
        "lat": lat,
        "lon": lon + km_east / 91.6,  # about 91.6 km per degree of longitude at 34.7° N
        "channel": channel,
        **extra,
    }


class WebhookReceiver:
    """A local HTTP server that records the notices posted to it, signature checked."""

    def __init__(self, master_key: bytes) -> None:
        self.master_key = master_key
        self.notices: list[dict[str, Any]] = []
        self.bad_signatures = 0
        self.changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        notice = json.loads(body)
        secret = webhook_secret_for(self.master_key, notice["subscriber_id"])
        try:
            Webhook(secret).verify(body, dict(request.headers))
        except Exception:
            self.bad_signatures += 1
            return web.Response(status=400)
        self.notices.append(notice)
        self.changed.set()
        return web.Response(status=204)

    async def start(self) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class ApiServer:
    """The service's app under uvicorn on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self._task: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self) -> ApiServer:
        self._task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)


class SseClient:
    """Reads a subscriber's notices stream and records each notice."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.notices: list[dict[str, Any]] = []
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            httpx.AsyncClient(timeout=None) as client,
            client.stream("GET", self.url, headers=headers) as response,
        ):
            response.raise_for_status()
            self.connected.set()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    self.notices.append(json.loads(line[5:].strip()))

    async def start(self) -> SseClient:
        self._task = asyncio.create_task(self._read())
        await asyncio.wait_for(self.connected.wait(), 10)
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def eventually(check: Callable[[], bool], timeout_s: float = 30.0, what: str = "") -> None:
    """Wait until ``check()`` holds, polling; fail with ``what`` after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


def received(notices: list[dict[str, Any]], msg_type: str) -> Counter[str]:
    """How many notices of ``msg_type`` each subscriber received."""
    return Counter(n["subscriber_id"] for n in notices if n["type"] == msg_type)
