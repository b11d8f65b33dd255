"""Delivery: the consumer group over ``notices`` that gets each notice to each recipient once.

For each :class:`~dispatch.notices.model.NoticeBatch` read from ``notices``:

1. drop the recipients whose delivery the store already settled (a batch consumed again after
   a crash or a rebalance resends nothing that was acknowledged and recorded);
2. deliver the rest concurrently, at most ``concurrency`` at a time: webhooks signed and
   retried (:mod:`dispatch.notices.webhook`), SSE into the hub (:mod:`dispatch.notices.sse`),
   Kafka to the platform's topic;
3. park each delivery that failed for good on ``<prefix>notices.dead`` with its reason, as a
   one-recipient batch that can be produced back to ``notices`` as it is;
4. record each settled delivery in the store, flushed every ``flush_interval_ms`` and before
   step 5;
5. commit the Kafka offsets of the batches once all their deliveries are recorded.

The guarantee this gives is stated in :mod:`dispatch.notices.store`: at least once on the wire
with a stable idempotency key (the delivery id), effectively once for a receiver that dedupes on
it, and never a resend of what the store recorded.

A message on ``notices`` that is not a valid batch is parked on ``notices.dead`` with the reason
and its offset committed; the worker keeps going. Log lines carry delivery ids, counts and
reasons, never a subscriber id, a URL or a notice's text.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from pydantic import ValidationError

from dispatch.metrics import consumer_lag
from dispatch.notices.model import NoticeBatch, Recipient
from dispatch.notices.rendering import NoticeRenderer
from dispatch.notices.signing import SecretSource
from dispatch.notices.sse import SseEvent, SseHub
from dispatch.notices.store import DeliveryStore, Outcome
from dispatch.notices.webhook import RetryPolicy, WebhookSender

__all__ = [
    "DeliveryReport",
    "Deliverer",
    "DeliveryWorker",
    "notices_topic",
    "dead_letter_topic",
    "run_delivery_worker",
]

logger = logging.getLogger(__name__)


def notices_topic(prefix: str) -> str:
    """The ``notices`` topic under ``prefix``."""
    return f"{prefix}notices"


def dead_letter_topic(prefix: str) -> str:
    """The ``notices.dead`` topic under ``prefix``."""
    return f"{prefix}notices.dead"


@dataclass
class DeliveryReport:
    """What became of one batch's recipients."""

    delivered: int = 0
    skipped: int = 0
    dead: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)

    def add(self, other: DeliveryReport) -> None:
        self.delivered += other.delivered
        self.skipped += other.skipped
        self.dead += other.dead
        for channel, count in other.by_channel.items():
            self.by_channel[channel] = self.by_channel.get(channel, 0) + count


class Deliverer:
    """Delivers batches to their recipients; the part of the worker that knows no consumer.

    ``producer`` is a started ``AIOKafkaProducer``: it carries platforms' notices and parked
    deliveries. It may be None when no batch has Kafka recipients and nothing fails for good
    (the benchmark's case); a delivery that then needs it fails loudly.

    ``on_delivered(channel, latency_s)`` is called after each delivery with the seconds since
    the notice was sent, and ``on_parked(topic)`` after each message parked: hooks for metrics.
    """

    def __init__(
        self,
        store: DeliveryStore,
        webhooks: WebhookSender,
        *,
        hub: SseHub | None = None,
        producer: AIOKafkaProducer | None = None,
        dead_topic: str = "wayhome.notices.dead",
        concurrency: int = 64,
        flush_interval_ms: float = 20.0,
        source: str = "wayhome/delivery",
        on_delivered: Callable[[str, float], None] | None = None,
        on_parked: Callable[[str], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.store = store
        self.webhooks = webhooks
        self.hub = hub
        self.producer = producer
        self.dead_topic = dead_topic
        self.concurrency = concurrency
        self.flush_interval_s = flush_interval_ms / 1000
        self.source = source
        self.on_delivered = on_delivered
        self.on_parked = on_parked
        self._clock = clock
        self._settled: list[tuple[str, Outcome]] = []
        self._last_flush = time.monotonic()

    def flush(self) -> None:
        """Record every delivery settled since the last flush."""
        settled, self._settled = self._settled, []
        self._last_flush = time.monotonic()
        self.store.record(settled)

    def _settle(self, delivery_id: str, outcome: Outcome) -> None:
        self._settled.append((delivery_id, outcome))
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    async def deliver(self, batches: Iterable[NoticeBatch]) -> DeliveryReport:
        """Deliver every pending recipient of ``batches``; returns once all are recorded."""
        report = DeliveryReport()
        pending: deque[tuple[NoticeRenderer, Recipient, str]] = deque()
        scheduled: set[str] = set()  # a delivery met twice in these batches is made once
        for batch in batches:
            renderer = NoticeRenderer(batch)
            ids = [batch.delivery_id(recipient) for recipient in batch.recipients]
            done = self.store.settled(ids)
            for recipient, delivery_id in zip(batch.recipients, ids, strict=True):
                if delivery_id in done or delivery_id in scheduled:
                    report.skipped += 1
                    continue
                scheduled.add(delivery_id)
                pending.append((renderer, recipient, delivery_id))

        # A fixed pool of senders drains the queue: no task per recipient, no semaphore queue.
        senders = min(self.concurrency, len(pending))
        await asyncio.gather(*(self._drain(pending, report) for _ in range(senders)))
        self.flush()
        return report

    async def _drain(
        self, pending: deque[tuple[NoticeRenderer, Recipient, str]], report: DeliveryReport
    ) -> None:
        while pending:
            renderer, recipient, delivery_id = pending.popleft()
            await self._deliver_one(renderer, recipient, delivery_id, report)

    async def _deliver_one(
        self,
        renderer: NoticeRenderer,
        recipient: Recipient,
        delivery_id: str,
        report: DeliveryReport,
    ) -> None:
        try:
            reason = await self._send(renderer, recipient, delivery_id)
        except Exception as exc:  # one recipient must not stop the batch
            reason = f"delivery failed unexpectedly ({exc.__class__.__name__})"
            logger.exception("delivery failed delivery_id=%s", delivery_id)

        if reason is None:
            report.delivered += 1
            report.by_channel[recipient.channel] = report.by_channel.get(recipient.channel, 0) + 1
            self._settle(delivery_id, "delivered")
            if self.on_delivered is not None:
                latency_s = (self._clock() - renderer.batch.sent).total_seconds()
                self.on_delivered(recipient.channel, latency_s)
            return

        await self._park(renderer.batch, recipient, delivery_id, reason)
        report.dead += 1
        self._settle(delivery_id, "dead")

    async def _send(
        self, renderer: NoticeRenderer, recipient: Recipient, delivery_id: str
    ) -> str | None:
        """Sends one notice; None when it was delivered, else the reason it was not."""
        body = renderer.body(recipient, delivery_id)

        if recipient.channel == "webhook":
            assert recipient.target is not None  # the model requires a URL for webhooks
            result = await self.webhooks.send(
                recipient.target, delivery_id, recipient.subscriber_id, body
            )
            return None if result.delivered else result.reason

        if recipient.channel == "sse":
            if self.hub is None:
                return "this delivery worker serves no SSE hub; run it with the API process"
            event = SseEvent(delivery_id, renderer.batch.msg_type.lower(), body.decode())
            self.hub.publish(recipient.subscriber_id, event)
            return None

        # A platform's Kafka topic: keyed by case so that a case's notices stay in order.
        if self.producer is None:
            return "this delivery worker has no Kafka producer for platform topics"
        assert recipient.target is not None
        await self.producer.send_and_wait(
            recipient.target,
            value=body,
            key=renderer.batch.case_id.encode(),
            headers=self._cloudevent_headers(renderer.batch, delivery_id),
        )
        return None

    def _cloudevent_headers(self, batch: NoticeBatch, delivery_id: str) -> list[tuple[str, bytes]]:
        return [
            ("ce_specversion", b"1.0"),
            ("ce_id", delivery_id.encode()),
            ("ce_type", f"org.wayhome.notice.{batch.msg_type.lower()}".encode()),
            ("ce_source", self.source.encode()),
            ("ce_time", batch.sent.isoformat().encode()),
            ("content-type", b"application/json"),
        ]

    async def _park(
        self, batch: NoticeBatch, recipient: Recipient, delivery_id: str, reason: str
    ) -> None:
        logger.warning("delivery parked delivery_id=%s reason=%r", delivery_id, reason)
        parked = batch.model_copy(update={"recipients": (recipient,), "part": 0})
        value = {
            "delivery_id": delivery_id,
            "reason": reason,
            "parked_at": datetime.now(UTC).isoformat(),
            "batch": json.loads(parked.to_bytes()),
        }
        await self._produce_dead(recipient.subscriber_id, value)

    async def _produce_dead(self, key: str | None, value: dict[str, Any]) -> None:
        if self.producer is None:
            raise RuntimeError("a delivery must be parked but the deliverer has no Kafka producer")
        await self.producer.send_and_wait(
            self.dead_topic,
            value=json.dumps(value).encode(),
            key=key.encode() if key else None,
        )
        if self.on_parked is not None:
            self.on_parked(self.dead_topic)

    async def park_malformed(self, raw: bytes | None, reason: str, origin: str) -> None:
        """Park a message of ``notices`` that is not a valid batch, with the reason."""
        logger.warning("malformed notice batch parked origin=%s reason=%r", origin, reason)
        value = {
            "reason": reason,
            "origin": origin,
            "parked_at": datetime.now(UTC).isoformat(),
            "raw": (raw or b"").decode("utf-8", errors="replace"),
        }
        await self._produce_dead(None, value)


class _LogAssignments(ConsumerRebalanceListener):
    """Logs the partitions this worker gains and loses (lifecycle, so at info)."""

    async def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            logger.info(
                "partitions revoked %s", sorted(f"{p.topic}/{p.partition}" for p in revoked)
            )

    async def on_partitions_assigned(self, assigned: Any) -> None:
        logger.info("partitions assigned %s", sorted(f"{p.topic}/{p.partition}" for p in assigned))


class DeliveryWorker:
    """A member of the delivery consumer group: reads ``notices``, delivers, commits."""

    def __init__(
        self,
        deliverer: Deliverer,
        *,
        bootstrap_servers: str,
        topic: str = "wayhome.notices",
        group_id: str = "wayhome-delivery",
        max_batches: int = 64,
        poll_timeout_ms: int = 500,
        isolation_level: str = "read_committed",
        on_lag: Callable[[int], None] | None = None,
    ) -> None:
        self.deliverer = deliverer
        self.topic = topic
        self.max_batches = max_batches
        self.poll_timeout_ms = poll_timeout_ms
        self.on_lag = on_lag
        self._committed_only = isolation_level == "read_committed"
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # A dispatcher writing notices in transactions may abort a tick it will redo;
            # only committed batches are delivered.
            isolation_level=isolation_level,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=16 * 1024 * 1024,
        )
        self._stopping = asyncio.Event()
        self.report = DeliveryReport()

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=_LogAssignments())
        logger.info("delivery worker started topic=%s", self.topic)

    async def stop(self) -> None:
        self._stopping.set()
        self.deliverer.flush()  # what was delivered is not sent again by the next owner
        await self._consumer.stop()
        logger.info(
            "delivery worker stopped delivered=%d skipped=%d dead=%d",
            self.report.delivered,
            self.report.skipped,
            self.report.dead,
        )

    def request_stop(self) -> None:
        """Ask :meth:`run` to return after the batches in hand."""
        self._stopping.set()

    async def poll_once(self) -> DeliveryReport:
        """Read up to ``max_batches`` batches, deliver them, record them, commit their offsets."""
        records = await self._consumer.getmany(
            timeout_ms=self.poll_timeout_ms, max_records=self.max_batches
        )
        batches: list[NoticeBatch] = []
        offsets: dict[TopicPartition, int] = {}
        for partition, messages in records.items():
            for message in messages:
                origin = f"{partition.topic}/{partition.partition}@{message.offset}"
                try:
                    batches.append(NoticeBatch.from_bytes(message.value or b""))
                except ValidationError as exc:
                    problems = "; ".join(
                        f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
                        for err in exc.errors(include_input=False)[:5]
                    )
                    await self.deliverer.park_malformed(
                        message.value, f"not a notice batch: {problems}", origin
                    )
                offsets[partition] = message.offset + 1

        report = await self.deliverer.deliver(batches)
        if offsets:
            await self._consumer.commit(offsets)
            logger.debug(
                "batches delivered batches=%d delivered=%d skipped=%d dead=%d",
                len(batches),
                report.delivered,
                report.skipped,
                report.dead,
            )
        self.report.add(report)
        if self.on_lag is not None:
            self.on_lag(await consumer_lag(self._consumer, committed_only=self._committed_only))
        return report

    async def run(self) -> None:
        """Deliver until :meth:`request_stop` is called."""
        while not self._stopping.is_set():
            await self.poll_once()


async def run_delivery_worker(
    *,
    bootstrap_servers: str,
    store: DeliveryStore,
    secrets: SecretSource,
    topic_prefix: str = "wayhome.",
    group_id: str = "wayhome-delivery",
    hub: SseHub | None = None,
    retry: RetryPolicy | None = None,
    concurrency: int = 64,
    flush_interval_ms: float = 20.0,
    poll_timeout_ms: int = 500,
    enable_idempotence: bool = True,
    on_delivered: Callable[[str, float], None] | None = None,
    on_parked: Callable[[str], None] | None = None,
    on_lag: Callable[[int], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    stop: asyncio.Event | None = None,
) -> DeliveryReport:
    """Run one delivery worker until ``stop`` is set (or the task is cancelled).

    It owns its Kafka producer (acks from all replicas; idempotent unless
    ``enable_idempotence`` is False, as it must be on the embedded broker, which refuses it),
    webhook connection pool and consumer; ``store`` and ``hub`` are the caller's, shared with
    the API in ``serve``. ``on_delivered``, ``on_parked`` and ``clock`` are the
    :class:`Deliverer`'s metric hooks and the clock its latencies are measured by; ``on_lag``
    is given the worker's lag on ``notices`` after each poll.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        enable_idempotence=enable_idempotence,
        acks="all",
        linger_ms=5,
    )
    await producer.start()
    try:
        async with WebhookSender(secrets, retry=retry, max_connections=concurrency) as webhooks:
            deliverer = Deliverer(
                store,
                webhooks,
                hub=hub,
                producer=producer,
                dead_topic=dead_letter_topic(topic_prefix),
                concurrency=concurrency,
                flush_interval_ms=flush_interval_ms,
                on_delivered=on_delivered,
                on_parked=on_parked,
                clock=clock,
            )
            worker = DeliveryWorker(
                deliverer,
                bootstrap_servers=bootstrap_servers,
                topic=notices_topic(topic_prefix),
                group_id=group_id,
                poll_timeout_ms=poll_timeout_ms,
                on_lag=on_lag,
            )
            await worker.start()
            try:
                while stop is None or not stop.is_set():
                    await worker.poll_once()
            finally:
                await worker.stop()
            return worker.report
    finally:
        await producer.stop()
