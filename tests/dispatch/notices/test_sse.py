"""Server-sent events end to end: deliverer -> hub -> a real uvicorn server -> an httpx stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from dispatch.notices import NoticeBatch, Recipient
from dispatch.notices.delivery import Deliverer
from dispatch.notices.signing import derived_secrets
from dispatch.notices.sse import SseEvent, SseHub, notices_router
from dispatch.notices.store import SqliteDeliveryStore
from dispatch.notices.webhook import WebhookSender
from tests.dispatch.notices.builders import notice_batch

APP = Recipient(subscriber_id="app-1", channel="sse", language="zh-CN")
OTHER = Recipient(subscriber_id="app-2", channel="sse", language="en")


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Deliverer]]:
    hub = SseHub(buffer_size=8)
    app = FastAPI()
    app.include_router(notices_router(hub, ping_s=1))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]

    store = SqliteDeliveryStore(tmp_path / "deliveries.sqlite3")
    async with WebhookSender(derived_secrets(b"k" * 32)) as webhooks:
        yield f"http://127.0.0.1:{port}", Deliverer(store, webhooks, hub=hub)
    server.should_exit = True
    await task
    store.close()


async def read_events(
    client: httpx.AsyncClient, url: str, count: int, last_event_id: str | None = None
) -> list[dict[str, str]]:
    """The first ``count`` events of the stream at ``url``, as dicts of their fields."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    events: list[dict[str, str]] = []
    async with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if not line:
                if "data" in fields:
                    events.append(fields)
                    if len(events) == count:
                        break
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
    return events


async def test_a_connected_app_gets_buffered_and_live_notices_with_delivery_ids(
    served: tuple[str, Deliverer],
) -> None:
    base, deliverer = served
    url = f"{base}/v1/subscribers/app-1/notices"
    alert = notice_batch([APP, OTHER])
    await deliverer.deliver([alert])

    async with httpx.AsyncClient(timeout=10) as client:
        reader = asyncio.create_task(read_events(client, url, 2))
        await asyncio.sleep(0.3)
        update = notice_batch([APP], msg_type="Update", tick=2)
        report = await deliverer.deliver([update])
        events = await asyncio.wait_for(reader, 10)

    assert report.delivered == 1 and report.by_channel == {"sse": 1}
    assert [e["id"] for e in events] == [alert.delivery_id(APP), update.delivery_id(APP)]
    assert [e["event"] for e in events] == ["alert", "update"]
    first = json.loads(events[0]["data"])
    assert first["subscriber_id"] == "app-1" and first["language"] == "zh-CN"
    assert first["id"] == events[0]["id"]


async def test_a_reconnecting_app_resumes_after_its_last_event_id(
    served: tuple[str, Deliverer],
) -> None:
    base, deliverer = served
    url = f"{base}/v1/subscribers/app-1/notices"
    batches: list[NoticeBatch] = [
        notice_batch([APP]),
        notice_batch([APP], msg_type="Update", tick=1),
        notice_batch([APP], msg_type="Cancel", tick=2),
    ]
    await deliverer.deliver(batches)

    async with httpx.AsyncClient(timeout=10) as client:
        seen = await read_events(client, url, 1)
        resumed = await read_events(client, url, 2, last_event_id=seen[0]["id"])

    assert [e["event"] for e in seen + resumed] == ["alert", "update", "cancel"]


async def test_delivering_the_same_batch_again_publishes_nothing_twice(
    served: tuple[str, Deliverer],
) -> None:
    _, deliverer = served
    batch = notice_batch([APP, OTHER])
    first = await deliverer.deliver([batch])
    again = await deliverer.deliver([batch])
    assert (first.delivered, again.delivered, again.skipped) == (2, 0, 2)
    assert deliverer.hub is not None
    assert len(deliverer.hub.buffered("app-1")) == 1


def test_the_buffer_keeps_only_the_latest_events_per_subscriber() -> None:
    hub = SseHub(buffer_size=3)
    for i in range(5):
        hub.publish("s", SseEvent(f"id{i}", "alert", "{}"))
    assert [e.id for e in hub.buffered("s")] == ["id2", "id3", "id4"]
    assert [e.id for e in hub.buffered("s", after_id="id3")] == ["id4"]
    # An id the buffer no longer holds replays everything it has.
    assert [e.id for e in hub.buffered("s", after_id="id0")] == ["id2", "id3", "id4"]


def test_the_hub_forgets_the_least_recent_subscriber_when_full() -> None:
    hub = SseHub(buffer_size=2, max_subscribers=2)
    for subscriber in ("a", "b", "a", "c"):
        hub.publish(subscriber, SseEvent(f"{subscriber}-x", "alert", "{}"))
    assert hub.buffered("b") == [] and len(hub.buffered("a")) == 1 and len(hub.buffered("c")) == 1


async def test_a_batch_met_twice_in_one_poll_is_delivered_once(
    served: tuple[str, Deliverer],
) -> None:
    _, deliverer = served
    batch = notice_batch([APP, OTHER, APP])
    report = await deliverer.deliver([batch, batch])
    assert (report.delivered, report.skipped) == (2, 4)
    assert deliverer.hub is not None
    assert len(deliverer.hub.buffered("app-1")) == 1
