"""What the dispatcher refuses from ``cases``, and how a case whose dispatch fails stops, on Kafka.

A case or a sighting whose time is ahead of the service's clock, a sighting older than the
case's last-seen time, and an event carrying private fields are parked on ``cases.dead`` with
their reason, their bodies redacted; a case whose area cannot be computed fails once, visibly in
its state, and does not fail again at every tick.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from dispatch.cases import CaseState
from dispatch.clock import ManualClock
from dispatch.dispatcher import Dispatcher, DispatcherConfig
from dispatch.events import CaseResolved, LastSeen, SightingAdded, encode
from dispatch.topics import DEAD_REASON_HEADER, Topics, ensure_topics
from tests.dispatch.harness import START, eventually, prefix
from tests.dispatch.kafka_io import produce_case_events, produce_subscribers, report_event

pytestmark = pytest.mark.kafka

ZZ = (34.7466, 113.6254)
NAME = "Wang Xiaoming"
ID_NUMBER = "410102201901010011"


async def _records(bootstrap: str, topic: str) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    found: list[Any] = []
    try:
        for _ in range(5):
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                found += records
    finally:
        await consumer.stop()
    return found


def _reasons(records: list[Any]) -> dict[str, str]:
    """The parked events' reasons by key."""
    return {
        r.key.decode(): dict(r.headers)[DEAD_REASON_HEADER].decode()
        for r in records
        if r.key is not None
    }


async def _start(bootstrap: str, topics: Topics, clock: ManualClock, name: str) -> Dispatcher:
    config = DispatcherConfig(
        bootstrap_servers=bootstrap,
        topics=topics,
        worker_id=f"{name}-{topics.prefix}",
        group_id=f"{topics.prefix}dispatch",
        fetch_max_wait_ms=50,
    )
    dispatcher = Dispatcher(config, clock)
    await dispatcher.start()
    return dispatcher


async def test_times_ahead_of_the_clock_and_older_sightings_are_parked_with_their_reason(
    kafka_bootstrap: str,
) -> None:
    topics = Topics(prefix())
    await ensure_topics(kafka_bootstrap, topics, partitions=1)
    await produce_subscribers(
        kafka_bootstrap,
        topics,
        [{"id": "d1", "kind": "device", "lat": ZZ[0], "lon": ZZ[1], "channel": {"kind": "sse"}}],
    )
    clock = ManualClock(START)
    dispatcher = await _start(kafka_bootstrap, topics, clock, "refusals")
    try:
        # Within the tolerance, a clock difference: the case opens and ticks.
        slightly_ahead = report_event("c-ahead", *ZZ, START + timedelta(minutes=1), START)
        ahead = report_event("c-future", *ZZ, START + timedelta(hours=1), START)
        ok = report_event("c-ok", *ZZ, START - timedelta(minutes=30), START)
        older = SightingAdded(
            case_id="c-ok", sighting=LastSeen(lat=34.8, lon=113.7, time=START - timedelta(hours=2))
        )
        later = SightingAdded(
            case_id="c-ok", sighting=LastSeen(lat=34.8, lon=113.7, time=START + timedelta(hours=1))
        )
        await produce_case_events(kafka_bootstrap, topics, [slightly_ahead, ahead, ok])
        await eventually(
            lambda: all(
                case_id in dispatcher.cases and dispatcher.cases[case_id].tick == 0
                for case_id in ("c-ahead", "c-ok")
            ),
            what="the first ticks",
        )
        await produce_case_events(kafka_bootstrap, topics, [older, later])
        await eventually(
            lambda: dispatcher.metrics.dead_letters.labels(topic=topics.cases)._value.get() == 3,
            what="three parked events",
        )

        assert "c-future" not in dispatcher.cases
        assert dispatcher.cases["c-ok"].area_inputs.last_seen == ok.last_seen
        assert dispatcher.cases["c-ok"].tick == 0
        parked = await _records(kafka_bootstrap, topics.cases_dead)
        reasons = [dict(r.headers)[DEAD_REASON_HEADER].decode() for r in parked]
        assert len(reasons) == 3
        assert "last_seen.time must not be in the future" in reasons[0]
        assert "must not be before the case's last-seen time" in reasons[1]
        assert "sighting.time must not be in the future" in reasons[2]
        assert [r.key for r in parked] == [b"c-future", b"c-ok", b"c-ok"]
        assert "wayhome_open_cases 2.0" in dispatcher.metrics.exposition().decode()
    finally:
        await dispatcher.stop()


async def test_a_case_event_with_private_fields_is_parked_without_them(
    kafka_bootstrap: str,
) -> None:
    topics = Topics(prefix())
    await ensure_topics(kafka_bootstrap, topics, partitions=1)
    clock = ManualClock(START)
    dispatcher = await _start(kafka_bootstrap, topics, clock, "private")

    body = json.loads(encode(report_event("c-priv", *ZZ, START, START))[0])
    with_private = {**body, "private": {"name": NAME, "id_number": ID_NUMBER}}
    with_name = {**body, "case": {**body["case"], "name": NAME}}
    with_id = {**body, "id_number": ID_NUMBER}
    # A plain producer, no CloudEvents headers: the body's type names the event.
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for value in (with_private, with_name, with_id):
            await producer.send_and_wait(topics.cases, json.dumps(value).encode(), key=b"c-priv")
        await eventually(
            lambda: dispatcher.metrics.dead_letters.labels(topic=topics.cases)._value.get() == 3,
            what="three parked events",
        )
        parked = await _records(kafka_bootstrap, topics.cases_dead)
        assert len(parked) == 3
        for record in parked:
            everything = repr((record.key, record.value, record.headers)).encode()
            assert NAME.encode() not in everything and ID_NUMBER.encode() not in everything
            assert json.loads(record.value) == {
                "type": "case.reported",
                "case_id": "c-priv",
                "redacted": True,
            }
            assert (
                "Extra inputs are not permitted"
                in dict(record.headers)[DEAD_REASON_HEADER].decode()
            )
        assert "c-priv" not in dispatcher.cases
    finally:
        await producer.stop()
        await dispatcher.stop()


async def test_a_case_whose_area_fails_is_failed_once_and_can_still_be_resolved(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    topics = Topics(prefix())
    await ensure_topics(kafka_bootstrap, topics, partitions=1)

    # A state committed before perimeters were checked: an area that cannot be computed.
    event = report_event("c-broken", *ZZ, START - timedelta(minutes=30), START)
    state = CaseState.reported(event, 0, START)
    line = {"type": "Polygon", "coordinates": [[[113.6, 34.7], [113.7, 34.8], [113.6, 34.7]]]}
    state.area_inputs = state.area_inputs.with_perimeter(line, "add")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topics.state, state.to_bytes(), key=b"c-broken", partition=0)
    finally:
        await producer.stop()

    clock = ManualClock(START)
    caplog.set_level(logging.ERROR, logger="dispatch.dispatcher")
    dispatcher = await _start(kafka_bootstrap, topics, clock, "broken")
    try:
        await eventually(
            lambda: (
                "c-broken" in dispatcher.cases and dispatcher.cases["c-broken"].status == "failed"
            ),
            what="the failed case",
        )
        for _ in range(5):  # ticks fall due, and the case is not tried again
            clock.advance(timedelta(minutes=10))
            await asyncio.sleep(0.3)
        failures = [r for r in caplog.records if "dispatch failed case=c-broken" in r.getMessage()]
        assert len(failures) == 1
        assert "reason=" in failures[0].getMessage()
        assert "wayhome_open_cases 0.0" in dispatcher.metrics.exposition().decode()

        states = await _records(kafka_bootstrap, topics.state)
        failed = CaseState.from_bytes(states[-1].value)
        assert failed.status == "failed" and failed.failure and failed.next_tick_at is None

        # A resolution still closes it (nobody was alerted, so the Cancel goes to nobody).
        resolved = CaseResolved(case_id="c-broken", outcome="found", resolved_at=clock.now())
        await produce_case_events(kafka_bootstrap, topics, [resolved])
        await eventually(
            lambda: dispatcher.cases["c-broken"].status == "resolved", what="the resolution"
        )
    finally:
        await dispatcher.stop()
