"""Server-sent events for connected apps: an in-process hub and its FastAPI router.

The delivery worker publishes each SSE notice to the :class:`SseHub`; the hub keeps the last
``buffer_size`` notices of every subscriber and pushes each new one to the subscriber's open
streams. ``GET /v1/subscribers/{id}/notices`` (see :func:`notices_router`) streams them as
``text/event-stream`` with the event's ``id:`` set to the delivery id and ``event:`` to the
notice type (``alert``, ``update``, ``cancel``), so that the browser's ``EventSource`` resends
the last id it saw as ``Last-Event-ID`` when it reconnects, and the stream resumes after it.

A stream opened without ``Last-Event-ID``, or with an id the buffer no longer holds, first
replays the whole buffer; apps dedupe on the id. A notice counts as delivered once the hub
holds it: an app that is offline receives it from the buffer when it connects.

Known limits: the buffer lives in the process's memory, so the hub must run in the process
that serves the API (``wayhome serve`` runs both); notices buffered for an app that never
reconnects before the process restarts are lost, and a subscriber with more than
``buffer_size`` undelivered notices loses the oldest. Both are bounded, deliberate trade-offs
for a channel meant for apps in the foreground; platforms that must not miss anything use
the Kafka channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import APIRouter, Header, Request
from sse_starlette.sse import EventSourceResponse

__all__ = ["SseEvent", "SseHub", "notices_router"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SseEvent:
    """One notice as an SSE event: its delivery id, its type and its JSON data."""

    id: str
    event: str
    data: str


class SseHub:
    """Buffers each subscriber's recent notices and fans them out to its open streams."""

    def __init__(
        self, buffer_size: int = 256, max_subscribers: int = 100_000, queue_size: int = 1024
    ) -> None:
        if buffer_size < 1 or max_subscribers < 1 or queue_size < 1:
            raise ValueError(
                "buffer_size, max_subscribers and queue_size must be at least 1, got "
                f"{buffer_size}, {max_subscribers}, {queue_size}"
            )
        self.buffer_size = buffer_size
        self.max_subscribers = max_subscribers
        self.queue_size = queue_size
        # Least recently published subscribers are dropped first when the hub is full.
        self._buffers: OrderedDict[str, deque[SseEvent]] = OrderedDict()
        self._streams: dict[str, set[asyncio.Queue[SseEvent]]] = {}

    def publish(self, subscriber_id: str, event: SseEvent) -> None:
        """Buffer ``event`` for ``subscriber_id`` and push it to its open streams."""
        buffer = self._buffers.get(subscriber_id)
        if buffer is None:
            buffer = self._buffers[subscriber_id] = deque(maxlen=self.buffer_size)
            if len(self._buffers) > self.max_subscribers:
                self._buffers.popitem(last=False)
        else:
            self._buffers.move_to_end(subscriber_id)
        if any(held.id == event.id for held in buffer):
            return
        buffer.append(event)

        for queue in self._streams.get(subscriber_id, ()):
            if queue.full():
                # A stream that does not read is behind by a whole queue; it resumes from the
                # buffer when the app reconnects with its Last-Event-ID.
                continue
            queue.put_nowait(event)

    def buffered(self, subscriber_id: str, after_id: str | None = None) -> list[SseEvent]:
        """The buffered events of ``subscriber_id``, only those after ``after_id`` if it is held."""
        events = list(self._buffers.get(subscriber_id, ()))
        if after_id:
            for index, event in enumerate(events):
                if event.id == after_id:
                    return events[index + 1 :]
        return events

    def connected(self, subscriber_id: str) -> int:
        """How many streams of ``subscriber_id`` are open."""
        return len(self._streams.get(subscriber_id, ()))

    async def stream(
        self, subscriber_id: str, last_event_id: str | None = None
    ) -> AsyncIterator[SseEvent]:
        """The events of ``subscriber_id``: the buffer after ``last_event_id``, then live ones."""
        queue: asyncio.Queue[SseEvent] = asyncio.Queue(maxsize=self.queue_size)
        streams = self._streams.setdefault(subscriber_id, set())
        streams.add(queue)
        try:
            sent: set[str] = set()
            for event in self.buffered(subscriber_id, last_event_id):
                sent.add(event.id)
                yield event
            while True:
                event = await queue.get()
                if event.id not in sent:
                    yield event
        finally:
            streams.discard(queue)
            if not streams:
                self._streams.pop(subscriber_id, None)


def notices_router(hub: SseHub, ping_s: float = 15.0) -> APIRouter:
    """The router of ``GET /v1/subscribers/{subscriber_id}/notices`` over ``hub``.

    Authorization is the including application's: mount it with
    ``app.include_router(router, dependencies=[...])``.
    """
    router = APIRouter(tags=["notices"])

    @router.get(
        "/v1/subscribers/{subscriber_id}/notices",
        summary="Stream a subscriber's notices as server-sent events",
        response_class=EventSourceResponse,
    )
    async def stream_notices(
        subscriber_id: str,
        request: Request,
        last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
    ) -> EventSourceResponse:
        async def events() -> AsyncIterator[dict[str, str]]:
            logger.info("sse stream opened resume=%s", bool(last_event_id))
            try:
                async for event in hub.stream(subscriber_id, last_event_id):
                    if await request.is_disconnected():
                        break
                    yield {"id": event.id, "event": event.event, "data": event.data}
            finally:
                logger.info("sse stream closed")

        return EventSourceResponse(events(), ping=int(ping_s))

    return router
