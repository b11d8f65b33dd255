"""The Apache Kafka fixture: a real KRaft broker that keeps group offsets and transactions."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.kafka


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
        )
    finally:
        await admin.close()


async def _drain(consumer: AIOKafkaConsumer, want: int, timeout_ms: int = 10_000) -> list[bytes]:
    """Values of up to ``want`` records, polling until they arrive or ``timeout_ms`` passes."""
    values: list[bytes] = []
    rounds = timeout_ms // 500
    for _ in range(rounds):
        batches = await consumer.getmany(timeout_ms=500)
        for records in batches.values():
            values.extend(record.value for record in records if record.value is not None)
        if len(values) >= want:
            break
    return values


async def test_records_round_trip_through_a_consumer_group_and_its_offsets_are_committed(
    kafka_bootstrap: str,
) -> None:
    topic, group = _name("roundtrip"), _name("group")
    await _create_topic(kafka_bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(topic, f"record-{i}".encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        values = await _drain(consumer, want=5)
        await consumer.commit()
    finally:
        await consumer.stop()
    assert values == [f"record-{i}".encode() for i in range(5)]

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    assert offsets[TopicPartition(topic, 0)].offset == 5

    # A new member of the same group resumes after the committed offset and sees only new records.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"record-5")
    finally:
        await producer.stop()
    resumed = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await resumed.start()
    try:
        assert await _drain(resumed, want=1) == [b"record-5"]
    finally:
        await resumed.stop()


async def test_idempotent_producer_writes_each_record_once(kafka_bootstrap: str) -> None:
    topic = _name("idempotent")
    await _create_topic(kafka_bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        metadata = [await producer.send_and_wait(topic, f"v{i}".encode()) for i in range(3)]
    finally:
        await producer.stop()
    assert [m.offset for m in metadata] == [0, 1, 2]

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        assert await _drain(consumer, want=3) == [b"v0", b"v1", b"v2"]
    finally:
        await consumer.stop()


async def test_read_committed_consumer_sees_committed_transactions_and_not_aborted_ones(
    kafka_bootstrap: str,
) -> None:
    topic = _name("transactions")
    await _create_topic(kafka_bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=_name("tx"))
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-1")
            await producer.send_and_wait(topic, b"committed-2")
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b"aborted")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(topic, b"committed-3")
    finally:
        await producer.stop()

    committed_reader = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await committed_reader.start()
    try:
        seen = await _drain(committed_reader, want=3)
    finally:
        await committed_reader.stop()
    assert seen == [b"committed-1", b"committed-2", b"committed-3"]

    # The aborted record is in the log all the same: a read_uncommitted reader gets it.
    uncommitted_reader = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
        isolation_level="read_uncommitted",
    )
    await uncommitted_reader.start()
    try:
        raw = await _drain(uncommitted_reader, want=4)
    finally:
        await uncommitted_reader.stop()
    assert b"aborted" in raw
