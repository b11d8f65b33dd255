"""Benchmark of webhook delivery: wayhome's deliverer beside a naive sender, to one receiver.

The receiver is a minimal ASGI app on uvicorn in a subprocess on loopback; it reads each
request's body, counts it and answers 204. Since it shares the machine's two cores with the
sender, wayhome also runs once more against a lean receiver (httptools' parser on a bare
asyncio protocol, also in a subprocess), which leaves the sender more of the CPU. The notices
are one batch of webhook recipients of a real case (Chinese and English texts, a search area of
~130 vertices).

- wayhome: :class:`dispatch.notices.delivery.Deliverer` as the delivery worker runs it
  (without the Kafka consumer around it): for each recipient the JSON notice is rendered, signed
  per Standard Webhooks with the subscriber's own secret, POSTed over aiohttp's keep-alive pool
  with bounded concurrency, and recorded in the SQLite dedupe store, under uvloop.
- naive: what one writes first: for each notice, render it, sign it and ``httpx.post`` it,
  one after the other, a new connection each time.
- keep-alive: the naive loop with one ``httpx.Client`` kept open, so each POST reuses its
  connection, still one after the other.
- httpx pool: the same loop as wayhome's but through one pooled ``httpx.AsyncClient`` with the
  same concurrency, to show why the deliverer uses aiohttp.

Run: ``python -m benchmarks.delivery`` (``--notices N`` to change the batch size).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import httpx
from rich.console import Console
from rich.table import Table
from shapely.geometry import Point, mapping

from dispatch.notices import CaseText, NoticeBatch, PublicCase, Recipient
from dispatch.notices.delivery import Deliverer
from dispatch.notices.rendering import NoticeRenderer
from dispatch.notices.signing import derived_secrets
from dispatch.notices.store import SqliteDeliveryStore
from dispatch.notices.webhook import WebhookSender, signed_headers

MASTER_KEY = b"benchmark-master-key-0123456789a"
CONCURRENCY = 32

_received = 0


async def receiver_app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    """The receiver: counts POSTs (answering 204) and tells the count on ``GET /count``."""
    global _received
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["method"] == "GET":
        body = str(_received).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    _received += 1
    headers = [(b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 204, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LeanReceiver(asyncio.Protocol):
    """The lean receiver: httptools' parser on a bare asyncio protocol, no ASGI, no framework.

    It costs the shared CPU a fraction of what uvicorn does, which leaves more to the sender.
    """

    count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        import httptools

        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.parser = httptools.HttpRequestParser(self)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        if self.parser.get_method() == b"GET":
            body = str(LeanReceiver.count).encode()
            head = f"HTTP/1.1 200 OK\r\ncontent-length: {len(body)}\r\n\r\n".encode()
            self.transport.write(head + body)
            return
        LeanReceiver.count += 1
        self.transport.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")


async def serve_lean(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(LeanReceiver, "127.0.0.1", port)
    await server.serve_forever()


def start_receiver(kind: str = "uvicorn") -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    if kind == "uvicorn":
        command = [
            *(sys.executable, "-m", "uvicorn", "benchmarks.delivery:receiver_app"),
            *("--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop"),
            *("--log-level", "warning", "--no-access-log", "--lifespan", "off"),
        ]
    else:
        command = [sys.executable, "-m", "benchmarks.delivery", "--serve-lean", str(port)]
    process = subprocess.Popen(command)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{base}/count", timeout=1)
            return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the benchmark receiver did not start within 30 s")


def received(base: str) -> int:
    return int(httpx.get(f"{base}/count").text)


def make_batch(url: str, notices: int, tag: str) -> NoticeBatch:
    case = PublicCase(
        case_id=f"bench-{tag}",
        category="vehicle_abduction",
        texts=(
            CaseText(
                language="zh-CN",
                headline="儿童走失：男孩，5岁，蓝色外套",
                description="最后出现在郑州东站附近，可能被带上一辆白色轿车。",
                instruction="如有线索请拨打110。",
            ),
            CaseText(
                language="en",
                headline="Missing child: boy, 5, blue coat",
                description="Last seen near Zhengzhou East station, possibly taken in a white car.",
                instruction="Call 110 with any information.",
            ),
        ),
        contact="110",
    )
    recipients = tuple(
        Recipient(
            subscriber_id=f"sub-{tag}-{i}",
            channel="webhook",
            target=url,
            language="zh-CN" if i % 3 else "en",
        )
        for i in range(notices)
    )
    return NoticeBatch(
        case_id=case.case_id,
        tick=0,
        msg_type="Alert",
        sent=datetime.now(timezone(timedelta(hours=8))),
        case=case,
        area=mapping(Point(113.78, 34.76).buffer(1.5, quad_segs=32)),
        recipients=recipients,
    )


async def run_wayhome(url: str, notices: int, workdir: Path) -> tuple[float, float]:
    batch = make_batch(url, notices, "wayhome")
    store = SqliteDeliveryStore(workdir / "deliveries.sqlite3")
    try:
        sender = WebhookSender(derived_secrets(MASTER_KEY), max_connections=CONCURRENCY)
        async with sender as webhooks:
            deliverer = Deliverer(store, webhooks, concurrency=CONCURRENCY)
            started, cpu = time.perf_counter(), time.process_time()
            report = await deliverer.deliver([batch])
            elapsed = time.perf_counter() - started, time.process_time() - cpu
    finally:
        store.close()
    if report.delivered != notices:
        raise RuntimeError(f"wayhome delivered {report.delivered} of {notices} notices")
    return elapsed


def run_naive(url: str, notices: int) -> tuple[float, float]:
    batch = make_batch(url, notices, "naive")
    secrets = derived_secrets(MASTER_KEY)
    started, cpu = time.perf_counter(), time.process_time()
    for recipient in batch.recipients:
        body = json.dumps(_notice(batch, recipient), ensure_ascii=False).encode()
        delivery_id = batch.delivery_id(recipient)
        headers = signed_headers(
            secrets(recipient.subscriber_id), delivery_id, datetime.now(UTC), body
        )
        httpx.post(url, content=body, headers=headers).raise_for_status()
    return time.perf_counter() - started, time.process_time() - cpu


def run_keepalive(url: str, notices: int) -> tuple[float, float]:
    batch = make_batch(url, notices, "keepalive")
    secrets = derived_secrets(MASTER_KEY)
    renderer = NoticeRenderer(batch)
    with httpx.Client() as client:
        started, cpu = time.perf_counter(), time.process_time()
        for recipient in batch.recipients:
            delivery_id = batch.delivery_id(recipient)
            body = renderer.body(recipient, delivery_id)
            secret = secrets(recipient.subscriber_id)
            headers = signed_headers(secret, delivery_id, datetime.now(UTC), body)
            client.post(url, content=body, headers=headers).raise_for_status()
        return time.perf_counter() - started, time.process_time() - cpu


def _notice(batch: NoticeBatch, recipient: Recipient) -> dict[str, Any]:
    from dispatch.notices import notice_for

    return notice_for(batch, recipient)


async def run_httpx_pool(url: str, notices: int) -> tuple[float, float]:
    batch = make_batch(url, notices, "httpx")
    secrets = derived_secrets(MASTER_KEY)
    renderer = NoticeRenderer(batch)
    slots = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)

    async with httpx.AsyncClient(limits=limits) as client:

        async def one(recipient: Recipient) -> None:
            async with slots:
                body = renderer.body(recipient)
                delivery_id = batch.delivery_id(recipient)
                secret = secrets(recipient.subscriber_id)
                headers = signed_headers(secret, delivery_id, datetime.now(UTC), body)
                (await client.post(url, content=body, headers=headers)).raise_for_status()

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(r) for r in batch.recipients))
        return time.perf_counter() - started, time.process_time() - cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=20_000, help="webhooks wayhome sends")
    parser.add_argument("--naive-notices", type=int, default=500, help="webhooks the naive sends")
    parser.add_argument("--pool-notices", type=int, default=2_000, help="for each httpx client")
    parser.add_argument("--serve-lean", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import uvloop

    if args.serve_lean:
        uvloop.run(serve_lean(args.serve_lean))
        return

    console = Console()
    rows: list[tuple[str, int, tuple[float, float]]] = []
    with tempfile.TemporaryDirectory() as workdir, console.status("delivering") as status:
        receiver, base = start_receiver("uvicorn")
        url = f"{base}/hook"
        try:
            status.update(f"naive: {args.naive_notices:,} sequential httpx.post")
            naive = run_naive(url, args.naive_notices)
            rows.append(("naive: httpx.post, sequential", args.naive_notices, naive))
            status.update(f"keep-alive: {args.pool_notices:,} sequential posts")
            keepalive = run_keepalive(url, args.pool_notices)
            rows.append(("httpx.Client keep-alive, sequential", args.pool_notices, keepalive))
            status.update(f"httpx pool: {args.pool_notices:,} webhooks")
            pool = uvloop.run(run_httpx_pool(url, args.pool_notices))
            rows.append((f"httpx.AsyncClient, {CONCURRENCY} concurrent", args.pool_notices, pool))
            status.update(f"wayhome: {args.notices:,} webhooks")
            ours = uvloop.run(run_wayhome(url, args.notices, Path(workdir) / "a"))
            rows.append((f"wayhome Deliverer, {CONCURRENCY} concurrent", args.notices, ours))
            expected = args.notices + args.naive_notices + 2 * args.pool_notices
            check_received(base, expected)
        finally:
            stop_receiver(receiver)

        receiver, base = start_receiver("lean")
        try:
            status.update(f"wayhome, lean receiver: {args.notices:,} webhooks")
            ours = uvloop.run(run_wayhome(f"{base}/hook", args.notices, Path(workdir) / "b"))
            rows.append(("wayhome Deliverer, lean receiver", args.notices, ours))
            check_received(base, args.notices)
        finally:
            stop_receiver(receiver)

    naive_rate = rows[0][1] / rows[0][2][0]
    table = Table(title="Signed webhook delivery to a local receiver (loopback)")
    for column in ("sender", "notices", "seconds", "notices/s", "× naive", "sender CPU µs/notice"):
        table.add_column(column, justify="left" if column == "sender" else "right")
    for name, count, (seconds, cpu_s) in rows:
        rate = count / seconds
        table.add_row(
            name,
            f"{count:,}",
            f"{seconds:.2f}",
            f"{rate:,.0f}",
            f"{rate / naive_rate:.1f}",
            f"{cpu_s / count * 1e6:,.0f}",
        )
    console.print(table)
    console.print("every receiver acknowledged every webhook it was sent")


def check_received(base: str, expected: int) -> None:
    total = received(base)
    if total != expected:
        raise RuntimeError(f"the receiver counted {total} webhooks, expected {expected}")


def stop_receiver(receiver: subprocess.Popen[bytes]) -> None:
    receiver.terminate()
    receiver.wait(10)


if __name__ == "__main__":
    main()
