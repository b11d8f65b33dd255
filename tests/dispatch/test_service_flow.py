"""A case end to end through the running service: Apache Kafka, Kafka with PostGIS, tansu.

File → Alert by webhook and SSE; a device moving into the area alerted on its update; the next
tick reaching further; a sighting → Update to everyone alerted; the resolution → Cancel to
exactly the alerted set, once each; the log verifies and holds one entry per dispatch and one
per change of the case, signed, with commitments only; the case's private fields appear on no
topic and in no notice. Every outcome of a resolution reaches the log through its Cancel.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from chain.entries import open_entry, parse_entry
from chain.verify import verify_store
from dispatch.clock import ManualClock
from dispatch.service import Service, service_key
from dispatch.settings import Settings
from dispatch.topics import Topics
from tests.dispatch.harness import (
    START,
    ApiServer,
    SseClient,
    WebhookReceiver,
    case_body,
    device,
    eventually,
    prefix,
    received,
)

BROKERS = [
    pytest.param("kafka_bootstrap", False, marks=pytest.mark.kafka, id="kafka"),
    pytest.param("tansu_bootstrap", False, marks=pytest.mark.tansu, id="tansu"),
    pytest.param(
        "kafka_bootstrap", True, marks=[pytest.mark.kafka, pytest.mark.postgis], id="kafka-postgis"
    ),
]


async def _topic_values(bootstrap: str, topic: str, everything: bool = False) -> list[bytes]:
    """The values on ``topic``; with ``everything``, its keys and headers too."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        batch = await consumer.getmany(timeout_ms=3000)
        for records in batch.values():
            values += [r.value or b"" for r in records]
            if everything:
                values += [(r.key or b"") + repr(r.headers).encode() for r in records]
    finally:
        await consumer.stop()
    return values


def _exactly_once_settings(bootstrap: str, data_dir: Path, worker: str) -> Settings:
    """Settings of a service on Apache Kafka, with topics and a worker id of its own."""
    return Settings(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        data_dir=data_dir,
        topic_prefix=prefix(),
        partitions=2,
        fetch_max_wait_ms=50,
        worker_id=f"{worker}-{data_dir.name[-12:]}",
        delivery_guarantee="exactly_once",
    )


def _lag(service: Service, topic: str) -> float | None:
    """The service's ``wayhome_consumer_lag`` of ``topic``, or None when it has none yet."""
    for line in service.metrics.exposition().decode().splitlines():
        if line.startswith(f'wayhome_consumer_lag{{topic="{topic}"}}'):
            return float(line.split()[-1])
    return None


def _latency_count(service: Service) -> float:
    """How many deliveries the service's delivery-latency histogram has observed."""
    for line in service.metrics.exposition().decode().splitlines():
        if line.startswith("wayhome_delivery_latency_seconds_count"):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.parametrize(("broker", "postgis"), BROKERS)
async def test_case_reaches_the_area_updates_and_cancels_exactly_the_alerted(
    broker: str,
    postgis: bool,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Every log line of the whole flow, down to DEBUG, is searched for private fields below.
    caplog.set_level(logging.DEBUG)
    bootstrap = request.getfixturevalue(broker)
    # With a database URL, subscribers live in PostGIS and deliveries in PostgreSQL.
    database_url = request.getfixturevalue("postgis_dsn") if postgis else None
    case_id = f"c-flow-{broker[:5]}{'-pg' if postgis else ''}"
    settings = Settings(
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        database_url=database_url,
        data_dir=tmp_path,
        topic_prefix=prefix(),
        partitions=2,
        fetch_max_wait_ms=50,
        worker_id=f"flow-{broker[:5]}-{tmp_path.name[-12:]}",
        delivery_guarantee="exactly_once" if broker == "kafka_bootstrap" else "at_least_once",
    )
    clock = ManualClock(START)
    service = await Service(settings, clock).start()
    receiver = await WebhookReceiver(service_key(tmp_path)).start()
    assert service.app is not None and service.tokens is not None
    api = await ApiServer(service.app).start()
    police = {"Authorization": f"Bearer {service.tokens.create('police')}"}
    platform_token = service.tokens.create("platform")
    platform = {"Authorization": f"Bearer {platform_token}"}
    hook = {"kind": "webhook", "url": receiver.url}
    sse = None
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
            # Subscribers: four near the last-seen point, one 150 km out, one far away.
            near = {"w1": 10, "w2": 30, "w3": 60, "zh1": 40}
            for name, km in near.items():
                language = "zh" if name == "zh1" else "en"
                response = await client.post(
                    "/v1/subscribers",
                    headers=platform,
                    json=device(name, km, hook, language=language),
                )
                assert response.status_code == 201, response.text
            for name, km, channel in (
                ("s1", 20, {"kind": "sse"}),
                ("mid", 150, hook),
                ("far", 900, hook),
            ):
                response = await client.post(
                    "/v1/subscribers", headers=platform, json=device(name, km, channel)
                )
                assert response.status_code == 201, response.text
            assert service.dispatcher is not None
            await eventually(lambda: len(service.dispatcher.directory) == 7, what="subscribers")
            sse = await SseClient(f"{api.url}/v1/subscribers/s1/notices", platform_token).start()

            # (1) file: the first tick runs at once; 100 km tier.
            response = await client.post("/v1/cases", headers=police, json=case_body(case_id))
            assert response.status_code == 201, response.text
            await eventually(
                lambda: (
                    set(received(receiver.notices, "Alert")) == set(near) and len(sse.notices) == 1
                ),
                what="the first alerts",
            )
            assert sse.notices[0]["type"] == "Alert"
            zh = next(n for n in receiver.notices if n["subscriber_id"] == "zh1")
            assert zh["language"] == "zh"

            # (2) a device moving into the area is alerted on its update, before any tick.
            response = await client.put(
                "/v1/subscribers/far", headers=platform, json=device("far", 5, hook)
            )
            assert response.status_code == 200, response.text
            await eventually(
                lambda: received(receiver.notices, "Alert")["far"] == 1,
                what="the moved device's alert",
            )

            # (3) the next tick, past one hour since last seen: the 200 km tier reaches "mid".
            clock.advance(timedelta(minutes=31))
            await eventually(
                lambda: received(receiver.notices, "Alert")["mid"] == 1,
                what="the second tier's alert",
            )

            # (4) a sighting: an Update to everyone alerted.
            sighting = {"lat": 34.7466, "lon": 113.70, "time": clock.now().isoformat()}
            response = await client.post(
                f"/v1/cases/{case_id}/sightings", headers=police, json=sighting
            )
            assert response.status_code == 202, response.text
            alerted = set(near) | {"far", "mid"}
            await eventually(
                lambda: (
                    set(received(receiver.notices, "Update")) == alerted
                    and any(n["type"] == "Update" for n in sse.notices)
                ),
                what="the updates",
            )

            # (5) the resolution: a Cancel to exactly the alerted, on each one's channel.
            response = await client.post(
                f"/v1/cases/{case_id}/resolution", headers=police, json={"outcome": "found"}
            )
            assert response.status_code == 202, response.text
            await eventually(
                lambda: (
                    set(received(receiver.notices, "Cancel")) == alerted
                    and any(n["type"] == "Cancel" for n in sse.notices)
                ),
                what="the cancels",
            )
            await eventually(
                lambda: (
                    service.view is not None
                    and service.view.get(case_id) is not None
                    and service.view.get(case_id).status == "resolved"
                ),  # type: ignore[union-attr]
                what="the resolved state",
            )
            summary = (await client.get(f"/v1/cases/{case_id}", headers=police)).json()
            assert summary["status"] == "resolved" and summary["alerted"] == 7

        # Once each: no subscriber got any notice twice, nobody outside was told anything.
        for msg_type in ("Alert", "Update", "Cancel"):
            counts = received(receiver.notices, msg_type)
            assert set(counts.values()) == {1}, (msg_type, counts)
            assert set(counts) == alerted - {"s1"}
        assert [n["type"] for n in sse.notices] == ["Alert", "Update", "Cancel"]
        assert receiver.bad_signatures == 0

        # Every delivery was observed by the delivery-latency histogram.
        delivered = len(receiver.notices) + len(sse.notices)
        await eventually(
            lambda: _latency_count(service) >= delivered, what="the delivery latencies"
        )
        cancel = next(n for n in receiver.notices if n["type"] == "Cancel")
        assert cancel["references"], "a Cancel refers to the notices it cancels"

        # One log entry per dispatch (first tick, move, second tick, sighting, cancel), and one
        # per change of the case, each before the dispatch it caused.
        assert service.recorder is not None
        await eventually(
            lambda: service.recorder.appended == 5 and service.recorder.lifecycle_appended == 3,
            what="the log entries",
        )
        service.ledger.flush()

        # Every consumer of the service reports its lag, and all of them have caught up.
        for topic in ("cases", "subscribers", "notices", "dispatches"):
            name = f"{settings.topic_prefix}{topic}"
            await eventually(lambda name=name: _lag(service, name) == 0, what=f"{name}'s lag")

        report = verify_store(service.ledger.store)
        entries = service.ledger.entries(0, service.ledger.size)
        records = [parse_entry(e).record for e in entries]
        dispatches = [r for r in records if r["kind"] == "dispatch"]
        assert [r["tick"] for r in dispatches] == [0, 1, 2, 3, 4] and report.entries == 8
        assert sum(r["recipients"]["count"] for r in dispatches) == 7 + 7 + 7
        assert [r["kind"] for r in records] == [
            "case_opened",
            "dispatch",
            "dispatch",
            "dispatch",
            "sighting",
            "dispatch",
            "resolution",
            "dispatch",
        ]
        # Signed by the service's submitter key; the filing's commitment, not its fields.
        submitter = service.ledger.submitter.verifier()
        assert [open_entry(e, [submitter]) for e in entries] == records
        opened = records[0]
        assert opened["case"] == case_id and opened["category"] == "vehicle_abduction"
        assert base64.b64decode(opened["subject"]).hex() == summary["private_commitment"]
        assert records[6]["outcome"] == "found"
        sighting_entry = entries[4]
        assert b"34.7466" not in sighting_entry and b"113.7" not in sighting_entry

        # The log's entries and checkpoints are on the ledger topic for replicas.
        logged = set(service.ledger.entries(0, service.ledger.size))
        for _ in range(10):
            ledger_values = await _topic_values(bootstrap, f"{settings.topic_prefix}ledger")
            if {v for v in ledger_values if v.startswith(b"{")} == logged:
                break
        assert {v for v in ledger_values if v.startswith(b"{")} == logged
        assert any(v.startswith(b"localhost/wayhome\n") for v in ledger_values)

        # Private fields travel nowhere: on no topic, in no notice, in no log line.
        private = ("Wang Xiaoming", "410102201901010011")
        for topic in Topics(settings.topic_prefix).all():
            for value in await _topic_values(bootstrap, topic, everything=True):
                assert all(field.encode() not in value for field in private), topic
        delivered_json = json.dumps(receiver.notices + sse.notices, ensure_ascii=False)
        logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
        assert caplog.records and any(r.levelno == logging.DEBUG for r in caplog.records)
        for field in private:
            assert field not in delivered_json
            assert field not in logged
    finally:
        if sse is not None:
            await sse.stop()
        await api.stop()
        await receiver.stop()
        await service.stop()


@pytest.mark.kafka
async def test_every_outcome_cancels_the_alerted_and_is_logged_with_the_perimeter(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = _exactly_once_settings(kafka_bootstrap, tmp_path, "outcomes")
    clock = ManualClock(START)
    service = await Service(settings, clock).start()
    receiver = await WebhookReceiver(service_key(tmp_path)).start()
    assert service.app is not None and service.tokens is not None
    api = await ApiServer(service.app).start()
    police = {"Authorization": f"Bearer {service.tokens.create('police')}"}
    platform = {"Authorization": f"Bearer {service.tokens.create('platform')}"}
    hook = {"kind": "webhook", "url": receiver.url}
    outcomes = {"c-found": "found", "c-cancelled": "cancelled", "c-false": "false_report"}
    lat, lon = 34.7466, 113.6254
    square = {
        "type": "Polygon",
        "coordinates": [
            [[lon, lat], [lon + 0.1, lat], [lon + 0.1, lat + 0.1], [lon, lat + 0.1], [lon, lat]]
        ],
    }

    def cancelled(case_id: str) -> set[str]:
        return {
            n["subscriber_id"]
            for n in receiver.notices
            if n["type"] == "Cancel" and n["case_id"] == case_id
        }

    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
            for name, km in (("a", 10), ("b", 40), ("out", 900)):
                response = await client.post(
                    "/v1/subscribers", headers=platform, json=device(name, km, hook)
                )
                assert response.status_code == 201, response.text
            assert service.dispatcher is not None
            await eventually(lambda: len(service.dispatcher.directory) == 3, what="subscribers")
            for case_id in outcomes:
                response = await client.post("/v1/cases", headers=police, json=case_body(case_id))
                assert response.status_code == 201, response.text
            await eventually(
                lambda: (
                    len(received(receiver.notices, "Alert")) == 2
                    and sum(received(receiver.notices, "Alert").values()) == 6
                ),
                what="the alerts of the three cases",
            )
            response = await client.put(
                "/v1/cases/c-false/perimeter",
                headers=police,
                json={"geometry": square, "mode": "add"},
            )
            assert response.status_code == 202, response.text
            await eventually(
                lambda: any(
                    n["type"] == "Update" and n["case_id"] == "c-false" for n in receiver.notices
                ),
                what="the perimeter's update",
            )
            for case_id, outcome in outcomes.items():
                response = await client.post(
                    f"/v1/cases/{case_id}/resolution", headers=police, json={"outcome": outcome}
                )
                assert response.status_code == 202, response.text
            await eventually(
                lambda: all(cancelled(case_id) == {"a", "b"} for case_id in outcomes),
                what="the cancels of the three cases",
            )
            for case_id, outcome in outcomes.items():
                await eventually(
                    lambda case_id=case_id: (  # type: ignore[misc]
                        service.view is not None
                        and service.view.get(case_id) is not None
                        and service.view.get(case_id).status == "resolved"  # type: ignore[union-attr]
                    ),
                    what=f"case {case_id} resolved",
                )
                summary = (await client.get(f"/v1/cases/{case_id}", headers=police)).json()
                assert summary["outcome"] == outcome

        assert service.recorder is not None
        # 3 opened, 1 perimeter, 3 resolutions; 3 first ticks, 1 update tick, 3 cancels.
        await eventually(
            lambda: service.recorder.lifecycle_appended == 7 and service.recorder.appended == 7,
            what="the log entries",
        )
        service.ledger.flush()
        assert verify_store(service.ledger.store).entries == 14
        records = [parse_entry(e).record for e in service.ledger.entries(0, service.ledger.size)]
        resolutions = {r["case"]: r["outcome"] for r in records if r["kind"] == "resolution"}
        assert resolutions == outcomes
        perimeters = [r for r in records if r["kind"] == "perimeter"]
        assert [(r["case"], r["mode"]) for r in perimeters] == [("c-false", "add")]
        for case_id in outcomes:
            kinds = [r["kind"] for r in records if r["case"] == case_id]
            assert kinds[0] == "case_opened" and kinds[-2:] == ["resolution", "dispatch"]
        assert "out" not in {n["subscriber_id"] for n in receiver.notices}
    finally:
        await api.stop()
        await receiver.stop()
        await service.stop()


@pytest.mark.kafka
async def test_a_case_filed_by_a_plain_producer_reaches_platforms_on_their_kafka_topics(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # A platform's own client writes JSON with no CloudEvents headers, as kcat would; the
    # notices of a device and a whole-country platform, both on Kafka channels, land on the
    # topics they named, and so does the Cancel.
    settings = _exactly_once_settings(kafka_bootstrap, tmp_path, "plain")
    partner_topic = f"{settings.topic_prefix}partner.alerts"
    service = await Service(settings, ManualClock(START)).start()
    assert service.app is not None and service.tokens is not None
    api = await ApiServer(service.app).start()
    platform = {"Authorization": f"Bearer {service.tokens.create('platform')}"}
    channel = {"kind": "kafka", "topic": partner_topic}
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
            for body in (
                device("phone-k", 20, channel),
                {"id": "partner", "kind": "platform", "channel": channel},
            ):
                response = await client.post("/v1/subscribers", headers=platform, json=body)
                assert response.status_code == 201, response.text
        assert service.dispatcher is not None
        await eventually(lambda: len(service.dispatcher.directory) == 2, what="subscribers")

        reported = case_body("c-plain")
        reported |= {
            "type": "case.reported",
            "case": {
                "case_id": "c-plain",
                "category": "vehicle_abduction",
                "texts": reported["texts"],
            },
            "reported_at": START.isoformat(),
        }
        for field in ("category", "texts", "private"):
            reported.pop(field, None)
        resolved = {
            "type": "case.resolved",
            "case_id": "c-plain",
            "outcome": "found",
            "resolved_at": (START + timedelta(minutes=5)).isoformat(),
        }
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            await producer.send_and_wait(
                Topics(settings.topic_prefix).cases, json.dumps(reported).encode(), key=b"c-plain"
            )

            async def on_partner_topic(msg_type: str) -> set[str]:
                notices = [
                    json.loads(v) for v in await _topic_values(kafka_bootstrap, partner_topic)
                ]
                return {n["subscriber_id"] for n in notices if n["type"] == msg_type}

            alerted: set[str] = set()
            for _ in range(20):
                alerted = await on_partner_topic("Alert")
                if alerted == {"phone-k", "partner"}:
                    break
            assert alerted == {"phone-k", "partner"}

            await producer.send_and_wait(
                Topics(settings.topic_prefix).cases, json.dumps(resolved).encode(), key=b"c-plain"
            )
            cancelled: set[str] = set()
            for _ in range(20):
                cancelled = await on_partner_topic("Cancel")
                if cancelled == alerted:
                    break
            assert cancelled == alerted
        finally:
            await producer.stop()
    finally:
        await api.stop()
        await service.stop()
