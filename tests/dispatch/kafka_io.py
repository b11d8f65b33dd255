"""Kafka helpers of the dispatch tests: put subscribers and cases on topics, read notices back."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from dispatch.events import CaseReported, LastSeen, SubscriberUpserted, encode
from dispatch.notices.model import CaseText, NoticeBatch, PublicCase
from dispatch.topics import Topics


def devices_around(
    lat: float, lon: float, n: int, spread_deg: float, seed: int = 0
) -> list[dict[str, Any]]:
    """``n`` SSE devices uniformly within ``spread_deg`` of a point."""
    rng = np.random.default_rng(seed)
    lats = lat + rng.uniform(-spread_deg, spread_deg, n)
    lons = lon + rng.uniform(-spread_deg, spread_deg, n)
    return [
        {
            "id": f"d{seed}-{i}",
            "kind": "device",
            "lat": float(la),
            "lon": float(lo),
            "channel": {"kind": "sse"},
        }
        for i, (la, lo) in enumerate(zip(lats, lons, strict=True))
    ]


async def produce_subscribers(
    bootstrap: str, topics: Topics, subscribers: list[dict[str, Any]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    try:
        futures = []
        for subscriber in subscribers:
            value, headers = encode(SubscriberUpserted(subscriber=subscriber))
            futures.append(
                await producer.send(
                    topics.subscribers, value, key=subscriber["id"].encode(), headers=headers
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def report_event(
    case_id: str, lat: float, lon: float, last_seen: datetime, now: datetime
) -> CaseReported:
    return CaseReported(
        case_id=case_id,
        case=PublicCase(
            case_id=case_id,
            category="vehicle_abduction",
            texts=(CaseText(language="en", headline="Missing child", description="Test case."),),
        ),
        last_seen=LastSeen(lat=lat, lon=lon, time=last_seen),
        reported_at=now,
    )


async def produce_case_events(bootstrap: str, topics: Topics, events: list[Any]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for event in events:
            value, headers = encode(event)
            await producer.send_and_wait(
                topics.cases, value, key=event.case_id.encode(), headers=headers
            )
    finally:
        await producer.stop()


class NoticeReader:
    """Reads notice batches from ``notices`` (committed only, or everything) into counters."""

    def __init__(self, bootstrap: str, topic: str, *, committed: bool = True) -> None:
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            fetch_max_wait_ms=50,
            isolation_level="read_committed" if committed else "read_uncommitted",
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        self.batches: list[NoticeBatch] = []

    async def start(self) -> NoticeReader:
        await self.consumer.start()
        return self

    async def poll(self, timeout_ms: int = 200) -> int:
        batch = await self.consumer.getmany(timeout_ms=timeout_ms)
        count = 0
        for records in batch.values():
            for record in records:
                self.batches.append(NoticeBatch.from_bytes(record.value))
                count += 1
        return count

    def recipients(self, case_id: str, msg_type: str) -> Counter[str]:
        """How often each subscriber appears as a recipient of ``msg_type`` notices of a case."""
        counts: Counter[str] = Counter()
        for batch in self.batches:
            if batch.case_id == case_id and batch.msg_type == msg_type:
                counts.update(r.subscriber_id for r in batch.recipients)
        return counts

    async def stop(self) -> None:
        await self.consumer.stop()
