"""Consumer lag as the service reports it, measured on a real Apache Kafka broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from dispatch.metrics import consumer_lag

pytestmark = pytest.mark.kafka


async def test_lag_counts_the_messages_not_yet_read_and_is_zero_once_all_are_read(
    kafka_bootstrap: str,
) -> None:
    topic = f"lag-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(7):
            await producer.send_and_wait(topic, f"record-{i}".encode(), partition=0)
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_beginning()
        # The end of a partition is known from the first fetch on.
        read = 0
        while read == 0:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2)
            read = sum(len(records) for records in batch.values())
        assert await consumer_lag(consumer) == 7 - read

        while read < 7:
            batch = await consumer.getmany(timeout_ms=1000)
            read += sum(len(records) for records in batch.values())
        assert await consumer_lag(consumer) == 0
    finally:
        await consumer.stop()


async def test_a_read_committed_lag_ends_at_an_open_transaction(kafka_bootstrap: str) -> None:
    topic = f"lag-tx-{uuid.uuid4().hex[:8]}"
    plain = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    transactional = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"lag-{uuid.uuid4().hex[:8]}"
    )
    await plain.start()
    await transactional.start()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        for i in range(3):
            await plain.send_and_wait(topic, f"before-{i}".encode(), partition=0)
        await transactional.begin_transaction()
        for i in range(4):
            await transactional.send_and_wait(topic, f"open-{i}".encode(), partition=0)

        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_beginning()
        batch = await consumer.getmany(timeout_ms=2000, max_records=1)
        read = sum(len(records) for records in batch.values())
        assert read == 1

        # Four records stand beyond the last stable offset: a read_committed consumer cannot
        # read them yet, so they are not its lag.
        assert await consumer_lag(consumer, committed_only=True) == 3 - read
        assert await consumer_lag(consumer) == 7 - read
        await transactional.abort_transaction()
    finally:
        await consumer.stop()
        await transactional.stop()
        await plain.stop()
