"""The delivery worker on the real Apache Kafka broker: retries, dead letters, platform topics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from standardwebhooks import Webhook

from dispatch.notices import NoticeBatch, Recipient
from dispatch.notices.delivery import (
    Deliverer,
    DeliveryReport,
    DeliveryWorker,
    dead_letter_topic,
    notices_topic,
)
from dispatch.notices.signing import derived_secrets, webhook_secret_for
from dispatch.notices.store import SqliteDeliveryStore
from dispatch.notices.webhook import RetryPolicy, WebhookSender
from tests.dispatch.notices.builders import notice_batch
from tests.dispatch.notices.kafka_helpers import create_topics, produce, read, unique_prefix
from tests.dispatch.notices.receiver import Receiver, ReceiverServer

pytestmark = pytest.mark.kafka

MASTER_KEY = b"delivery-tests-master-key-32-byt"


@dataclass
class Rig:
    prefix: str
    bootstrap: str
    worker: DeliveryWorker
    store: SqliteDeliveryStore
    sleeps: list[float]
    delivered: list[tuple[str, float]]
    parked: list[str]

    async def publish(self, *batches: NoticeBatch) -> None:
        await produce(
            self.bootstrap, notices_topic(self.prefix), [b.to_bytes() for b in batches], b"case-1"
        )

    async def run_until(self, settled: int, polls: int = 60) -> DeliveryReport:
        """Poll until ``settled`` deliveries were made or parked (or the polls run out)."""
        total = DeliveryReport()
        for _ in range(polls):
            total.add(await self.worker.poll_once())
            if total.delivered + total.dead + total.skipped >= settled:
                break
        return total


@pytest.fixture
async def rig(kafka_bootstrap: str, tmp_path: Path) -> AsyncIterator[Rig]:
    prefix = unique_prefix()
    await create_topics(
        kafka_bootstrap,
        {notices_topic(prefix): 3, dead_letter_topic(prefix): 1, f"{prefix}partner": 1},
    )
    sleeps: list[float] = []
    delivered: list[tuple[str, float]] = []
    parked: list[str] = []

    async def sleep(delay_s: float) -> None:
        sleeps.append(delay_s)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    store = SqliteDeliveryStore(tmp_path / "deliveries.sqlite3")
    retry = RetryPolicy(attempts=3, base_ms=50, cap_ms=80)
    async with WebhookSender(derived_secrets(MASTER_KEY), retry=retry, sleep=sleep) as webhooks:
        deliverer = Deliverer(
            store,
            webhooks,
            producer=producer,
            dead_topic=dead_letter_topic(prefix),
            on_delivered=lambda channel, latency_s: delivered.append((channel, latency_s)),
            on_parked=parked.append,
        )
        worker = DeliveryWorker(
            deliverer,
            bootstrap_servers=kafka_bootstrap,
            topic=notices_topic(prefix),
            group_id=f"{prefix}delivery",
        )
        await worker.start()
        yield Rig(prefix, kafka_bootstrap, worker, store, sleeps, delivered, parked)
        await worker.stop()
    await producer.stop()
    store.close()


async def test_a_failing_webhook_is_retried_with_backoff_then_parked_with_its_reason(
    rig: Rig,
) -> None:
    with (
        ReceiverServer(Receiver(fail_first=99, fail_status=503)) as failing,
        ReceiverServer(Receiver(fail_first=2, fail_status=502)) as flaky,
        ReceiverServer() as healthy,
    ):
        down = Recipient(subscriber_id="sub-down", channel="webhook", target=failing.url)
        late = Recipient(subscriber_id="sub-late", channel="webhook", target=flaky.url)
        up = Recipient(subscriber_id="sub-up", channel="webhook", target=healthy.url)
        batch = notice_batch([down, late, up])
        await rig.publish(batch)
        report = await rig.run_until(settled=3)

    assert (report.delivered, report.dead) == (2, 1)
    assert failing.attempts[batch.delivery_id(down)] == 3
    assert flaky.attempts[batch.delivery_id(late)] == 3
    assert flaky.accepted_ids() == {batch.delivery_id(late)}
    assert healthy.accepted_ids() == {batch.delivery_id(up)}
    assert len(rig.sleeps) == 4 and all(0 <= s <= 0.08 for s in rig.sleeps)

    (parked,) = await read(rig.bootstrap, dead_letter_topic(rig.prefix), 1)
    assert parked.key == b"sub-down"
    value = json.loads(parked.value)
    assert value["delivery_id"] == batch.delivery_id(down)
    assert "503" in value["reason"] and "after 3 attempts" in value["reason"]
    # The parked value holds a one-recipient batch that can be produced back to notices.
    redrive = NoticeBatch.model_validate(value["batch"])
    assert redrive.recipients == (down,) and redrive.notice_id == batch.notice_id
    assert rig.store.outcome(batch.delivery_id(down)) == "dead"
    assert rig.store.outcome(batch.delivery_id(late)) == "delivered"
    assert rig.parked == [dead_letter_topic(rig.prefix)]
    assert sorted(channel for channel, _ in rig.delivered) == ["webhook", "webhook"]
    assert all(latency_s > 0 for _, latency_s in rig.delivered)  # the batch was sent earlier


async def test_offsets_are_committed_once_the_batch_is_recorded(rig: Rig) -> None:
    with ReceiverServer() as receiver:
        await rig.publish(
            notice_batch([Recipient(subscriber_id="s", channel="webhook", target=receiver.url)])
        )
        await rig.run_until(settled=1)

    consumer = rig.worker._consumer
    committed = 0
    for partition in range(3):
        offset = await consumer.committed(TopicPartition(notices_topic(rig.prefix), partition))
        committed += offset or 0
    assert committed == 1


async def test_a_batch_consumed_twice_reaches_each_receiver_once(rig: Rig) -> None:
    with ReceiverServer() as receiver:
        recipients = [
            Recipient(subscriber_id=f"s{i}", channel="webhook", target=receiver.url)
            for i in range(20)
        ]
        batch = notice_batch(recipients)
        await rig.publish(batch, batch)
        report = await rig.run_until(settled=40)

    assert (report.delivered, report.skipped) == (20, 20)
    assert sorted(receiver.accepted.values()) == [1] * 20
    for request in receiver.requests:
        subscriber = request.notice["subscriber_id"]
        Webhook(webhook_secret_for(MASTER_KEY, subscriber)).verify(request.body, request.headers)


async def test_a_platform_gets_the_json_notice_on_its_topic_with_cloudevents_headers(
    rig: Rig,
) -> None:
    platform = Recipient(subscriber_id="plat-1", channel="kafka", target=f"{rig.prefix}partner")
    batch = notice_batch([platform], msg_type="Update", tick=3)
    await rig.publish(batch)
    report = await rig.run_until(settled=1)
    assert report.by_channel == {"kafka": 1}

    (message,) = await read(rig.bootstrap, f"{rig.prefix}partner", 1)
    headers = dict(message.headers)
    notice = json.loads(message.value)
    assert message.key == b"case-1"
    assert headers["ce_id"].decode() == notice["id"] == batch.delivery_id(platform)
    assert headers["ce_type"] == b"org.wayhome.notice.update"
    assert notice["type"] == "Update" and notice["references"]


async def test_a_malformed_message_is_parked_and_the_worker_keeps_going(rig: Rig) -> None:
    with ReceiverServer() as receiver:
        good = notice_batch([Recipient(subscriber_id="s", channel="webhook", target=receiver.url)])
        await produce(
            rig.bootstrap,
            notices_topic(rig.prefix),
            [b"not json at all", b'{"case_id": "c"}', good.to_bytes()],
            b"case-1",
        )
        report = await rig.run_until(settled=1)

    assert report.delivered == 1 and len(receiver.accepted) == 1
    parked = await read(rig.bootstrap, dead_letter_topic(rig.prefix), 2)
    reasons = [json.loads(p.value)["reason"] for p in parked]
    assert len(reasons) == 2 and all(r.startswith("not a notice batch") for r in reasons)
    assert any("tick: Field required" in r for r in reasons)
