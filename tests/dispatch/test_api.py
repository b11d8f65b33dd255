"""The HTTP API's refusals: a 4xx with a sentence, and nothing changed; roles; docs; health.

Runs one service on the embedded broker for the whole module.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from standardwebhooks import Webhook

from dispatch.cases import CaseState
from dispatch.clock import ManualClock
from dispatch.notices.signing import derived_secrets
from dispatch.notices.webhook import WebhookSender
from dispatch.service import Service, service_key
from dispatch.settings import Settings
from dispatch.topics import DEAD_REASON_HEADER
from tests.dispatch.harness import START, ZHENGZHOU, case_body, device, eventually, prefix
from tests.dispatch.kafka_io import report_event

pytestmark = pytest.mark.tansu


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(tansu_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    data_dir: Path = tmp_path_factory.mktemp("api")
    settings = Settings(
        KAFKA_BOOTSTRAP_SERVERS=tansu_bootstrap,
        data_dir=data_dir,
        topic_prefix=prefix(),
        partitions=1,
        fetch_max_wait_ms=50,
        delivery_guarantee="at_least_once",
        worker_id="api-tests",
    )
    service = await Service(settings, ManualClock(START), run_delivery=False).start()
    assert service.app is not None and service.tokens is not None
    tokens = {role: service.tokens.create(role) for role in ("police", "platform", "analyst")}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app), base_url="http://wayhome"
    ) as client:
        response = await client.post(
            "/v1/cases", headers=_auth(tokens["police"]), json=case_body("c-known")
        )
        assert response.status_code == 201, response.text
        yield client, tokens, service
    await service.stop()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _cases_published(service: Service) -> int:
    """How many events the ``cases`` topic holds, from its end offsets."""
    consumer = AIOKafkaConsumer(bootstrap_servers=service.bootstrap_servers)
    await consumer.start()
    try:
        await consumer.topics()  # loads the metadata partitions_for_topic reads
        partitions = consumer.partitions_for_topic(service.topics.cases) or set()
        offsets = await consumer.end_offsets(
            [TopicPartition(service.topics.cases, p) for p in partitions]
        )
        return sum(offsets.values())
    finally:
        await consumer.stop()


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        (
            {"last_seen": {"lat": 91.2, "lon": 113.6, "time": START.isoformat()}},
            422,
            "less than or equal to 90",
        ),
        (
            {
                "last_seen": {
                    "lat": 34.7,
                    "lon": 113.6,
                    "time": (START + timedelta(hours=2)).isoformat(),
                }
            },
            422,
            "must not be in the future",
        ),
        (
            {"last_seen": {"lat": 34.7, "lon": 113.6, "time": "2026-12-03T10:00:00"}},
            422,
            "timezone",
        ),
        ({"category": "kidnapped_by_aliens"}, 422, "category must be one of"),
        (
            {
                "perimeter": {
                    "type": "Polygon",
                    "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
                }
            },
            422,
            "perimeter",
        ),
        ({"texts": []}, 422, "texts"),
        ({"case_id": "c-known"}, 409, "exists already"),
        ({"case_id": "has space"}, 422, "case_id"),
    ],
)
async def test_a_bad_case_gets_a_4xx_with_a_sentence_and_changes_nothing(
    api: Any, change: dict[str, Any], status: int, message: str
) -> None:
    client, tokens, service = api
    before = await _cases_published(service)
    body = {**case_body("c-refused"), **change}
    response = await client.post("/v1/cases", headers=_auth(tokens["police"]), json=body)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert response.json()["error"].strip()
    assert await _cases_published(service) == before


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "Authorization: Bearer"),
        ({"Authorization": "Bearer wh_police_not-a-real-token"}, 401, "not one wayhome knows"),
        ({"Authorization": "Basic abc"}, 401, "must read 'Bearer"),
    ],
)
async def test_a_missing_or_wrong_token_is_refused(
    api: Any, headers: dict[str, str], status: int, message: str
) -> None:
    client, _, _ = api
    response = await client.post("/v1/cases", headers=headers, json=case_body("c-x"))
    assert response.status_code == status and message in response.json()["error"]


async def test_only_police_file_change_or_close_a_case(api: Any) -> None:
    client, tokens, _ = api
    for role in ("platform", "analyst"):
        headers = _auth(tokens[role])
        response = await client.post("/v1/cases", headers=headers, json=case_body("c-y"))
        assert response.status_code == 403 and "needs a police token" in response.json()["error"]
        response = await client.post(
            "/v1/cases/c-known/resolution", headers=headers, json={"outcome": "found"}
        )
        assert response.status_code == 403
    response = await client.get("/v1/cases/c-known", headers=_auth(tokens["analyst"]))
    assert response.status_code == 200 and response.json()["case_id"] == "c-known"


async def test_an_unknown_case_is_404_and_a_bad_sighting_or_perimeter_is_422(api: Any) -> None:
    client, tokens, _ = api
    police = _auth(tokens["police"])
    sighting = {"lat": 30.5, "lon": 114.3, "time": START.isoformat()}
    response = await client.post("/v1/cases/c-nobody/sightings", headers=police, json=sighting)
    assert response.status_code == 404 and "no case has the id" in response.json()["error"]
    response = await client.get("/v1/cases/c-nobody/area", headers=police)
    assert response.status_code == 404
    response = await client.post(
        "/v1/cases/c-known/sightings", headers=police, json={**sighting, "lon": 200}
    )
    assert response.status_code == 422 and "lon" in response.json()["error"]
    response = await client.put(
        "/v1/cases/c-known/perimeter",
        headers=police,
        json={"geometry": {"type": "Polygon", "coordinates": [[[0, 0]]]}},
    )
    assert response.status_code == 422 and "perimeter" in response.json()["error"]


async def test_a_bad_subscriber_is_422_and_an_unknown_one_cannot_be_deleted(api: Any) -> None:
    client, tokens, _ = api
    platform = _auth(tokens["platform"])
    bad = device("dev-bad", 10, {"kind": "webhook", "url": "ftp://nowhere"})
    response = await client.post("/v1/subscribers", headers=platform, json=bad)
    assert response.status_code == 422 and "webhook url" in response.json()["error"]
    response = await client.post(
        "/v1/subscribers",
        headers=platform,
        json={**device("dev-lat", 10, {"kind": "sse"}), "lat": 123},
    )
    assert (
        response.status_code == 422
        and "latitude must be within -90..90" in response.json()["error"]
    )
    response = await client.delete("/v1/subscribers/dev-nobody", headers=platform)
    assert response.status_code == 404
    response = await client.post(
        "/v1/subscribers",
        headers=_auth(tokens["police"]),
        json=device("dev-ok", 10, {"kind": "sse"}),
    )
    assert response.status_code == 403


async def test_the_area_and_the_cap_document_of_a_dispatched_case(api: Any) -> None:
    client, tokens, service = api
    await eventually(lambda: service.view.get("c-known") is not None, what="the first dispatch")
    headers = _auth(tokens["analyst"])
    area = (await client.get("/v1/cases/c-known/area", headers=headers)).json()
    assert area["type"] == "Feature" and area["geometry"]["type"] in ("Polygon", "MultiPolygon")
    cap = await client.get("/v1/cases/c-known/alert.cap", headers=headers)
    assert cap.status_code == 200 and b"<msgType>Alert</msgType>" in cap.content
    assert b"Wang Xiaoming" not in cap.content


async def test_openapi_health_and_metrics_are_served(api: Any) -> None:
    client, _, _ = api
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path in (
        "/v1/cases",
        "/v1/cases/{case_id}/sightings",
        "/v1/cases/{case_id}/perimeter",
        "/v1/cases/{case_id}/resolution",
        "/v1/cases/{case_id}/area",
        "/v1/cases/{case_id}/alert.cap",
        "/v1/subscribers",
        "/v1/subscribers/{subscriber_id}",
        "/v1/subscribers/{subscriber_id}/notices",
        "/healthz",
        "/metrics",
        "/v1/ledger/checkpoint",
    ):
        assert path in paths, path
    assert (await client.get("/healthz")).json()["status"] == "ok"
    metrics = (await client.get("/metrics")).text
    for name in (
        "wayhome_open_cases",
        "wayhome_notices_total",
        "wayhome_consumer_lag",
        "wayhome_delivery_latency_seconds",
    ):
        assert name in metrics


async def test_a_malformed_event_on_cases_is_parked_with_its_reason_and_work_goes_on(
    api: Any,
) -> None:
    client, tokens, service = api
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=service.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(service.topics.cases, b"{not json", key=b"c-garbage")
        await producer.send_and_wait(
            service.topics.cases,
            json.dumps(
                {
                    "type": "case.sighting",
                    "case_id": "c-ghost",
                    "sighting": {"lat": 1, "lon": 1, "time": START.isoformat()},
                }
            ).encode(),
            key=b"c-ghost",
        )
    finally:
        await producer.stop()
    response = await client.post(
        "/v1/cases", headers=_auth(tokens["police"]), json=case_body("c-after-garbage")
    )
    assert response.status_code == 201
    await eventually(
        lambda: service.view.get("c-after-garbage") is not None, what="the case after the garbage"
    )

    consumer = AIOKafkaConsumer(
        service.topics.cases_dead,
        bootstrap_servers=service.bootstrap_servers,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    reasons: list[str] = []
    try:
        for _ in range(20):
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                for record in records:
                    reasons += [v.decode() for k, v in record.headers if k == DEAD_REASON_HEADER]
            if len(reasons) >= 2:
                break
            await asyncio.sleep(0.1)
    finally:
        await consumer.stop()
    assert any("not JSON" in reason for reason in reasons), reasons
    assert any("c-ghost is unknown" in reason for reason in reasons), reasons


async def test_a_webhook_subscriber_gets_the_secret_that_verifies_what_the_service_signs(
    api: Any,
) -> None:
    client, tokens, service = api
    platform = _auth(tokens["platform"])
    verified: list[bool] = []
    secrets: dict[str, str] = {}

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            Webhook(secrets[request.query["as"]]).verify(body, dict(request.headers))
        except Exception:
            verified.append(False)
            return web.Response(status=400)
        verified.append(True)
        return web.Response(status=204)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    url = f"http://127.0.0.1:{port}/hook"
    try:
        for name in ("hook-1", "hook-2"):
            body = device(name, 10, {"kind": "webhook", "url": url})
            response = await client.post("/v1/subscribers", headers=platform, json=body)
            assert response.status_code == 201, response.text
            secrets[name] = response.json()["webhook_secret"]
        assert secrets["hook-1"].startswith("whsec_") and secrets["hook-1"] != secrets["hook-2"]

        # The delivery worker's sender, with the secrets it derives from the service's key.
        notice = json.dumps({"subscriber_id": "hook-1", "type": "Alert"}).encode()
        async with WebhookSender(derived_secrets(service_key(service.settings.data_dir))) as sender:
            good = await sender.send(f"{url}?as=hook-1", "d-1", "hook-1", notice)
            forged = await sender.send(f"{url}?as=hook-2", "d-2", "hook-1", notice)
    finally:
        await runner.cleanup()
    assert good.delivered and not forged.delivered
    assert verified == [True, False]

    sse = await client.post(
        "/v1/subscribers", headers=platform, json=device("sse-1", 10, {"kind": "sse"})
    )
    assert sse.status_code == 201 and "webhook_secret" not in sse.json()


async def test_a_sighting_earlier_than_the_last_seen_time_is_refused_and_changes_nothing(
    api: Any,
) -> None:
    client, tokens, service = api
    police = _auth(tokens["police"])
    await eventually(lambda: service.view.get("c-known") is not None, what="the first dispatch")
    before = (await client.get("/v1/cases/c-known", headers=police)).json()
    topic_before = await _cases_published(service)

    last_seen = START - timedelta(minutes=30)
    earlier = {"lat": 30.5, "lon": 114.3, "time": (last_seen - timedelta(hours=3)).isoformat()}
    response = await client.post("/v1/cases/c-known/sightings", headers=police, json=earlier)

    assert response.status_code == 422, response.text
    assert response.json()["error"] == (
        "a sighting must not be earlier than the last-seen time "
        f"{last_seen.isoformat()}, got {(last_seen - timedelta(hours=3)).isoformat()}"
    )
    assert await _cases_published(service) == topic_before
    assert (await client.get("/v1/cases/c-known", headers=police)).json() == before


async def test_only_the_platform_token_that_created_a_subscriber_changes_streams_or_deletes_it(
    api: Any,
) -> None:
    client, tokens, service = api
    owner = _auth(tokens["platform"])
    other = _auth(service.tokens.create("platform", "another app"))
    body = device("dev-owned", 10, {"kind": "sse"})
    assert (await client.post("/v1/subscribers", headers=owner, json=body)).status_code == 201

    moved = {**body, "lon": body["lon"] + 0.1}
    for response in (
        await client.post("/v1/subscribers", headers=other, json=moved),
        await client.put("/v1/subscribers/dev-owned", headers=other, json=moved),
        await client.delete("/v1/subscribers/dev-owned", headers=other),
        await client.get("/v1/subscribers/dev-owned/notices", headers=other),
    ):
        assert response.status_code == 403, response.text
        assert "belongs to another platform token" in response.json()["error"]
    assert service.tokens.owner_of("dev-owned") is not None
    assert service.app.state.context.registry.get("dev-owned").lon == body["lon"]

    for role in ("analyst", "police"):
        response = await client.get(
            "/v1/subscribers/dev-owned/notices", headers=_auth(tokens[role])
        )
        assert response.status_code == 403 and "needs a platform token" in response.json()["error"]

    response = await client.put("/v1/subscribers/dev-owned", headers=owner, json=moved)
    assert response.status_code == 200, response.text
    assert (await client.delete("/v1/subscribers/dev-owned", headers=owner)).status_code == 204
    assert service.tokens.owner_of("dev-owned") is None

    # Deleted, its id is free for any platform token again.
    assert (await client.post("/v1/subscribers", headers=other, json=body)).status_code == 201


async def test_the_notices_stream_of_an_unknown_subscriber_is_404(api: Any) -> None:
    client, tokens, _ = api
    response = await client.get(
        "/v1/subscribers/dev-nobody/notices", headers=_auth(tokens["platform"])
    )
    assert response.status_code == 404
    assert response.json()["error"] == "no subscriber has the id 'dev-nobody'"


async def test_a_subscriber_imported_by_the_operator_cannot_be_changed_through_the_api(
    api: Any,
) -> None:
    from subscribers import Subscriber

    client, tokens, service = api
    body = device("dev-imported", 10, {"kind": "sse"})
    service.app.state.context.registry.upsert(Subscriber.model_validate(body))
    response = await client.put(
        "/v1/subscribers/dev-imported", headers=_auth(tokens["platform"]), json=body
    )
    assert response.status_code == 403 and "imported by the operator" in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/v1/nowhere", 404, "no endpoint is at /v1/nowhere"),
        ("PATCH", "/v1/cases", 405, "PATCH is not allowed on /v1/cases; it allows POST"),
        ("GET", "/v1/ledger/tile/0/x999", 400, "tile"),
        ("GET", "/v1/ledger/proof/99999", 400, "smaller than the tree size"),
    ],
)
async def test_routing_and_ledger_refusals_answer_an_error_sentence(
    api: Any, method: str, path: str, status: int, message: str
) -> None:
    client, _, _ = api
    response = await client.request(method, path)
    assert response.status_code == status, response.text
    assert list(response.json()) == ["error"]
    assert message in response.json()["error"] and response.json()["error"].strip()


@pytest.mark.parametrize("path", ["/v1/cases", "/v1/subscribers"])
async def test_a_body_that_is_not_json_is_422_with_a_sentence(api: Any, path: str) -> None:
    client, tokens, _ = api
    role = "police" if path == "/v1/cases" else "platform"
    response = await client.post(
        path,
        headers={**_auth(tokens[role]), "content-type": "application/json"},
        content=b'{"case_id": ',
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith("the request body is not valid JSON: ")
    assert "at character" in response.json()["error"]


async def test_openapi_documents_refusals_as_an_error_sentence(api: Any) -> None:
    client, _, _ = api
    document = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["schemas"]["Refusal"]["required"] == ["error"]
    responses = document["paths"]["/v1/cases/{case_id}/sightings"]["post"]["responses"]
    for status in ("401", "403", "404", "409", "422"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Refusal"}, status


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        ("/v1/cases/c-known/sightings", "POST", {"lat": 30.5, "lon": 200, "time": "x"}),
        (
            "/v1/cases/c-known/sightings",
            "POST",
            {"lat": 30.5, "lon": 114.3, "time": (START + timedelta(hours=1)).isoformat()},
        ),
        (
            "/v1/cases/c-known/perimeter",
            "PUT",
            {"geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1]]]}},
        ),
        ("/v1/cases/c-known/perimeter", "PUT", {"geometry": {"type": "Point"}, "mode": "wipe"}),
    ],
)
async def test_a_refused_sighting_or_perimeter_leaves_the_case_as_it_was(
    api: Any, path: str, method: str, body: dict[str, Any]
) -> None:
    client, tokens, service = api
    police = _auth(tokens["police"])
    await eventually(lambda: service.view.get("c-known") is not None, what="the first dispatch")
    kept = ("status", "last_seen", "category", "outcome")
    before = (await client.get("/v1/cases/c-known", headers=police)).json()
    topic_before = await _cases_published(service)

    response = await client.request(method, path, headers=police, json=body)

    assert response.status_code == 422 and response.json()["error"].strip()
    assert await _cases_published(service) == topic_before
    after = (await client.get("/v1/cases/c-known", headers=police)).json()
    assert {k: after.get(k) for k in kept} == {k: before.get(k) for k in kept}


async def test_a_refused_subscriber_upsert_leaves_the_subscriber_as_it_was(api: Any) -> None:
    client, tokens, service = api
    platform = _auth(tokens["platform"])
    body = device("dev-kept", 10, {"kind": "sse"})
    assert (await client.post("/v1/subscribers", headers=platform, json=body)).status_code == 201
    registry = service.app.state.context.registry
    before = registry.get("dev-kept")

    for change in (
        {"lat": 123},
        {"channel": {"kind": "webhook", "url": "ftp://nowhere"}},
        {"id": "dev-other"},
    ):
        response = await client.put(
            "/v1/subscribers/dev-kept", headers=platform, json={**body, **change}
        )
        assert response.status_code == 422, response.text
        assert registry.get("dev-kept") == before
    assert registry.get("dev-other") is None and service.tokens.owner_of("dev-other") is None


async def test_a_failed_case_shows_why_and_can_still_be_resolved(api: Any) -> None:
    client, tokens, service = api
    event = report_event("c-failed", *ZHENGZHOU, START - timedelta(minutes=30), START)
    state = CaseState.reported(event, 0, START)
    state.fail("the perimeter is not a valid polygon")
    producer = AIOKafkaProducer(bootstrap_servers=service.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(service.topics.state, state.to_bytes(), key=b"c-failed")
    finally:
        await producer.stop()
    await eventually(
        lambda: service.view.get("c-failed") is not None, what="the failed case in the view"
    )

    summary = (await client.get("/v1/cases/c-failed", headers=_auth(tokens["analyst"]))).json()
    assert summary["status"] == "failed"
    assert summary["failure"] == "the perimeter is not a valid polygon"

    response = await client.post(
        "/v1/cases/c-failed/resolution", headers=_auth(tokens["police"]), json={"outcome": "found"}
    )
    assert response.status_code == 202, response.text
