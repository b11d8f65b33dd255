"""Benchmark of dispatch into Kafka: wayhome's batched notices beside one message per notice.

Two measurements, on one Apache Kafka broker (``KAFKA_BOOTSTRAP_SERVERS``, or one started from
the test services' jars when unset; ``--embedded`` uses the embedded tansu broker instead):

1. Report → notices on Kafka. A running :class:`~dispatch.dispatcher.Dispatcher` follows a
   ``subscribers`` topic of ``--subscribers`` devices (default 100,000, all within the first
   100 km tier of the last-seen point). A case is produced to ``cases``; the clock stops when a
   ``read_committed`` consumer of ``notices`` has seen every recipient of the first tick. The
   p50 over ``--reports`` cases is the figure the design asks to keep under one second.
2. Recipients per second into Kafka, side by side:

   - wayhome: :class:`~dispatch.plan.Planner` computes the tick (index query, alerted set,
     batches of 10,000 recipients spliced from cached JSON) and a transactional producer
     commits the batches, the case state and the log record: what the dispatcher does per tick.
   - baseline: the same recipients, one JSON notice per recipient
     (:func:`dispatch.notices.notice_for`), each produced as its own message with aiokafka
     (``acks=all``, ``linger_ms=5``), all sends in flight at once, then flushed;
   - lean baseline: the same, but each message holds only the notice id and the recipient, so
     the comparison is of message counts, not of message sizes.

Run: ``python -m benchmarks.dispatch`` (``--subscribers N``, ``--reports N``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from dispatch.cases import CaseState
from dispatch.clock import SystemClock
from dispatch.directory import Directory
from dispatch.dispatcher import Dispatcher, DispatcherConfig
from dispatch.events import CaseReported, LastSeen, SubscriberUpserted, encode
from dispatch.notices import CaseText, NoticeBatch, PublicCase, notice_for
from dispatch.plan import Planner
from dispatch.schedule import TickSchedule
from dispatch.settings import Settings
from dispatch.topics import Topics, ensure_topics

ZHENGZHOU = (34.7466, 113.6254)
console = Console()


@contextlib.contextmanager
def kafka(embedded: bool) -> Iterator[tuple[str, str]]:
    """Bootstrap servers and a name of the broker used."""
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured, "configured Kafka"
        return
    if embedded:
        from dispatch.broker import EmbeddedBroker

        with EmbeddedBroker(port=0) as broker:
            yield broker.bootstrap_servers, "embedded tansu"
        return
    from tests.services.kafka import start_kafka

    broker = start_kafka()
    try:
        yield broker.bootstrap_servers, "Apache Kafka"
    finally:
        broker.stop()


def synthetic_devices(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` devices within about 50 km of Zhengzhou (inside the first 100 km tier)."""
    rng = np.random.default_rng(seed)
    lats = ZHENGZHOU[0] + rng.uniform(-0.4, 0.4, n)
    lons = ZHENGZHOU[1] + rng.uniform(-0.5, 0.5, n)
    return [
        {
            "id": f"dev-{i:07d}",
            "kind": "device",
            "lat": float(lat),
            "lon": float(lon),
            "channel": {"kind": "webhook", "url": f"https://app{i % 16}.example.org/hooks/wayhome"},
            "language": "zh" if i % 3 else "en",
        }
        for i, (lat, lon) in enumerate(zip(lats, lons, strict=True))
    ]


def public_case(case_id: str) -> PublicCase:
    return PublicCase(
        case_id=case_id,
        category="vehicle_abduction",
        texts=(
            CaseText(language="zh", headline="寻找7岁男孩", description="红色外套，蓝色帽子。"),
            CaseText(language="en", headline="Missing boy, 7", description="Red coat, blue cap."),
        ),
    )


def report(case_id: str, now: datetime) -> CaseReported:
    return CaseReported(
        case_id=case_id,
        case=public_case(case_id),
        last_seen=LastSeen(lat=ZHENGZHOU[0], lon=ZHENGZHOU[1], time=now - timedelta(minutes=20)),
        reported_at=now,
    )


async def produce_subscribers(
    bootstrap: str, topics: Topics, devices: list[dict[str, Any]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("subscribers onto Kafka", total=len(devices))
            futures = []
            for index, device in enumerate(devices):
                value, headers = encode(SubscriberUpserted(subscriber=device))
                futures.append(
                    await producer.send(
                        topics.subscribers, value, key=device["id"].encode(), headers=headers
                    )
                )
                if index % 5000 == 4999:
                    await asyncio.gather(*futures)
                    futures = []
                    progress.advance(task, 5000)
            await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def report_latency(bootstrap: str, embedded: bool, n: int, reports: int) -> list[float]:
    """Seconds from producing a report to every recipient of its first tick on Kafka."""
    topics = Topics(f"bench{int(time.time())}.")
    await ensure_topics(bootstrap, topics, partitions=4)
    await produce_subscribers(bootstrap, topics, synthetic_devices(n))
    dispatcher = Dispatcher(
        DispatcherConfig(
            bootstrap_servers=bootstrap,
            topics=topics,
            worker_id=f"bench-{os.getpid()}",
            group_id=f"{topics.prefix}dispatch",
            exactly_once=not embedded,
            fetch_max_wait_ms=50 if embedded else 20,
        ),
        SystemClock(),
    )
    with console.status("dispatcher catching up with the subscribers"):
        await dispatcher.start()
    consumer = AIOKafkaConsumer(
        topics.notices,
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        auto_offset_reset="latest",
        fetch_max_wait_ms=20,
        max_partition_fetch_bytes=16 << 20,
        enable_auto_commit=False,
    )
    await consumer.start()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    latencies = []
    try:
        # The group join and the first fetch position are not part of a report's latency.
        warm = report("warm-up", datetime.now(UTC))
        await _file_and_wait(producer, consumer, topics, warm, n)
        for index in range(reports):
            event = report(f"bench-{index}", datetime.now(UTC))
            latencies.append(await _file_and_wait(producer, consumer, topics, event, n))
            console.print(f"  report {index + 1}: {latencies[-1] * 1000:.0f} ms")
    finally:
        await producer.stop()
        await consumer.stop()
        await dispatcher.stop()
    return latencies


async def _file_and_wait(
    producer: AIOKafkaProducer,
    consumer: AIOKafkaConsumer,
    topics: Topics,
    event: CaseReported,
    n: int,
) -> float:
    value, headers = encode(event)
    started = time.perf_counter()
    await producer.send_and_wait(topics.cases, value, key=event.case_id.encode(), headers=headers)
    seen = 0
    while seen < n:
        batch = await consumer.getmany(timeout_ms=1000)
        for records in batch.values():
            for record in records:
                if f'"case_id":"{event.case_id}"'.encode() in record.value[:200]:
                    seen += record.value.count(b'"subscriber_id"')
        if time.perf_counter() - started > 120:
            raise RuntimeError(f"only {seen} of {n} recipients arrived in two minutes")
    return time.perf_counter() - started


def _directory(devices: list[dict[str, Any]]) -> Directory:
    from subscribers import Subscriber

    directory = Directory()
    directory.bulk_devices([Subscriber.model_validate(device) for device in devices])
    return directory


async def wayhome_throughput(bootstrap: str, embedded: bool, n: int, runs: int) -> float:
    """Recipients per second: plan the tick and commit its batches, state and record."""
    topics = Topics(f"benchw{int(time.time())}.")
    await ensure_topics(bootstrap, topics, partitions=4)
    planner = Planner(
        _directory(synthetic_devices(n)),
        TickSchedule.parse("0h=1m"),
        batch_size=Settings().notice_batch_size,
        secret=b"benchmark",
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        max_request_size=8 << 20,
        linger_ms=5,
        compression_type=Settings().kafka_compression,
        **(
            {}
            if embedded
            else {"transactional_id": f"benchw-{os.getpid()}", "enable_idempotence": True}
        ),
    )
    await producer.start()
    best = []
    try:
        for run in range(-1, runs):  # run -1 warms the producer, the topic and numpy up
            now = datetime.now(UTC)
            state = CaseState.reported(report(f"w-{run}", now), 0, now)
            started = time.perf_counter()
            dispatch = planner.tick(state, now)
            planned = time.perf_counter()
            context = contextlib.nullcontext() if embedded else producer.transaction()
            async with context:  # type: ignore[attr-defined]
                futures = [
                    await producer.send(topics.notices, value, key=b"w")
                    for value in dispatch.batches
                ]
                futures.append(
                    await producer.send(topics.state, state.to_bytes(), key=b"w", partition=0)
                )
                futures.append(
                    await producer.send(topics.dispatches, json.dumps(dispatch.record).encode())
                )
                await asyncio.gather(*futures)
            elapsed = time.perf_counter() - started
            assert dispatch.recipient_count == n
            if run < 0:
                continue
            best.append(n / elapsed)
            console.print(
                f"  run {run + 1}: tick {(planned - started) * 1000:.0f} ms, "
                f"produce and commit {(started + elapsed - planned) * 1000:.0f} ms, "
                f"{n / elapsed:,.0f} recipients/s"
            )
    finally:
        await producer.stop()
    return statistics.median(best)


async def baseline_throughput(bootstrap: str, n: int, lean: bool = False) -> float:
    """Recipients per second: one JSON notice per recipient, one Kafka message each.

    ``lean``: the message holds only the notice id and the recipient (what a delivery worker
    would then have to look the notice up by), not the whole notice.
    """
    topics = Topics(f"benchb{int(time.time())}.")
    await ensure_topics(bootstrap, topics, partitions=4)
    devices = synthetic_devices(n)
    directory = _directory(devices)
    now = datetime.now(UTC)
    from dispatch.plan import rounded_geojson
    from dispatch.reach import CaseArea

    area = CaseArea(report("b", now).last_seen, "vehicle_abduction").area(now)
    header = NoticeBatch(
        case_id="b",
        tick=0,
        msg_type="Alert",
        sent=now,
        case=public_case("b"),
        area=rounded_geojson(area),
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        started = time.perf_counter()
        keys = directory.inside(area)
        futures = []
        for key in keys.tolist():
            contact = directory.contacts[key]
            if lean:
                value = b'{"notice_id":"%s","recipient":%s}' % (
                    header.notice_id.encode(),
                    contact.recipient_json,
                )
            else:
                value = json.dumps(notice_for(header, contact.recipient())).encode()
            recipient = contact
            futures.append(
                await producer.send(topics.notices, value, key=recipient.subscriber_id.encode())
            )
        await asyncio.gather(*futures)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return len(keys) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=5)
    parser.add_argument("--skip-latency", action="store_true", help="throughput only")
    parser.add_argument("--embedded", action="store_true", help="use the embedded tansu broker")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with kafka(args.embedded) as (bootstrap, broker_name):
        console.print(
            f"[bold]dispatch benchmark[/bold] on {broker_name} ({bootstrap}), "
            f"{args.subscribers:,} subscribers"
        )
        latencies = (
            [float("nan")]
            if args.skip_latency
            else await report_latency(bootstrap, args.embedded, args.subscribers, args.reports)
        )
        console.print("throughput: wayhome")
        wayhome = await wayhome_throughput(bootstrap, args.embedded, args.subscribers, 5)
        console.print("throughput: baseline (one message per notice)")
        baseline = await baseline_throughput(bootstrap, args.subscribers)
        console.print("throughput: lean baseline (notice id and recipient per message)")
        lean = await baseline_throughput(bootstrap, args.subscribers, lean=True)

    table = Table(title=f"dispatch into {broker_name}, {args.subscribers:,} recipients")
    table.add_column("measure")
    table.add_column("wayhome", justify="right")
    table.add_column("baseline: a message per notice", justify="right")
    table.add_column("ratio", justify="right")
    p50 = statistics.median(latencies)
    table.add_row(
        "report → all notices on Kafka, p50",
        f"{p50 * 1000:.0f} ms",
        f"{args.subscribers / baseline * 1000:.0f} ms (produce time)",
        f"{args.subscribers / baseline / p50:.1f}×",
    )
    table.add_row(
        "recipients / s into Kafka",
        f"{wayhome:,.0f}",
        f"{baseline:,.0f}",
        f"{wayhome / baseline:.1f}×",
    )
    table.add_row(
        "recipients / s, lean baseline (notice id + recipient a message)",
        f"{wayhome:,.0f}",
        f"{lean:,.0f}",
        f"{wayhome / lean:.1f}×",
    )
    console.print(table)
    console.print(f"report latencies (ms): {', '.join(f'{x * 1000:.0f}' for x in latencies)}")


if __name__ == "__main__":
    asyncio.run(main())
