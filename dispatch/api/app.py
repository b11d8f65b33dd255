"""The HTTP API (FastAPI; OpenAPI at ``/openapi.json``).

The API validates, authorizes and turns requests into events on Kafka; it does not dispatch.
A case filed here is on ``cases`` when ``POST /v1/cases`` answers 201, and the dispatcher's
first tick follows within the time it takes to read it. Reads (``GET /v1/cases/{id}``, its area
and CAP document) come from the committed dispatcher state (:mod:`dispatch.caseview`).

| endpoint                               | role                      |
|----------------------------------------|---------------------------|
| POST /v1/cases, sightings, perimeter, resolution | police          |
| DELETE /v1/cases/{id}/private          | police                    |
| GET /v1/cases/{id}, /area, /alert.cap  | police, platform, analyst |
| POST /v1/subscribers                   | platform                  |
| PUT/DELETE /v1/subscribers/{id}        | the platform token owning it |
| GET /v1/subscribers/{id}/notices (SSE) | the platform token owning it |
| GET /v1/ledger/... (tlog-tiles, proofs)| none: the log is public   |
| GET /healthz, /metrics                 | none                      |

Private case fields go to the vault (:mod:`dispatch.vault`) and only their commitment goes on;
they are shredded when the retention ends (:mod:`dispatch.retention`), or at once on police
request once the case is resolved.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from dispatch.api import errors
from dispatch.api.models import (
    Accepted,
    CaseFiling,
    CaseSummary,
    Perimeter,
    Resolution,
    Sighting,
)
from dispatch.auth import Principal, TokenStore, require_owner, require_role
from dispatch.cases import CaseState
from dispatch.caseview import CaseView
from dispatch.clock import Clock
from dispatch.errors import (
    CaseConflict,
    CaseNotFound,
    InvalidInput,
    MalformedEvent,
    SubscriberNotFound,
)
from dispatch.events import (
    CaseReported,
    CaseResolved,
    LastSeen,
    PerimeterSet,
    SightingAdded,
    SubscriberUpserted,
    check_not_future,
    cloudevent_headers,
    encode,
)
from dispatch.metrics import Metrics
from dispatch.notices.model import MsgType, NoticeBatch, PublicCase
from dispatch.notices.signing import SecretSource
from dispatch.reach import CaseArea, check_category, check_perimeter, geojson_feature
from dispatch.topics import Topics
from dispatch.vault import Vault

logger = logging.getLogger(__name__)

_SOURCE = "urn:wayhome:api"


@dataclass
class ApiContext:
    """What the API needs: Kafka, the case view, the stores, the clock."""

    producer: AIOKafkaProducer
    topics: Topics
    view: CaseView
    tokens: TokenStore
    vault: Vault
    registry: Any
    clock: Clock
    metrics: Metrics
    base_url: str = ""
    sse_router: APIRouter | None = None
    extra_routers: list[tuple[str, APIRouter]] = field(default_factory=list)
    health: Callable[[], Awaitable[dict[str, Any]]] | None = None
    webhook_secrets: SecretSource | None = None


def create_app(context: ApiContext) -> FastAPI:
    """The FastAPI application over ``context``."""
    app = FastAPI(
        title="wayhome",
        version="0.1.0",
        description="Alert dispatch for missing children: report once, reach everyone inside.",
    )
    errors.install(app)
    app.state.context = context

    def principal(authorization: str | None = Header(default=None)) -> Principal:
        return context.tokens.authenticate(authorization)

    def police(who: Principal = Depends(principal)) -> Principal:
        require_role(who, "police")
        return who

    def reader(who: Principal = Depends(principal)) -> Principal:
        require_role(who, "police", "platform", "analyst")
        return who

    def platform(who: Principal = Depends(principal)) -> Principal:
        require_role(who, "platform")
        return who

    def links(case_id: str) -> dict[str, str]:
        base = f"{context.base_url}/v1/cases/{case_id}"
        return {"self": base, "area": f"{base}/area", "cap": f"{base}/alert.cap"}

    async def publish(topic: str, key: str, event: Any) -> str:
        event_id = str(uuid.uuid4())
        value, headers = encode(event, event_id=event_id, source=_SOURCE, time=context.clock.now())
        await context.producer.send_and_wait(topic, value, key=key.encode(), headers=headers)
        return event_id

    def not_in_future(instant: Any, what: str) -> None:
        # The dispatcher holds events from Kafka to the same rule, with the same tolerance.
        try:
            check_not_future(instant, context.clock.now(), what)
        except MalformedEvent as exc:
            raise InvalidInput(str(exc)) from None

    def open_case(case_id: str) -> CaseState | CaseReported:
        state = context.view.get(case_id)
        if state is not None:
            return state
        filed = context.view.filed.get(case_id)
        if filed is not None:
            return filed
        raise CaseNotFound(f"no case has the id {case_id!r}")

    def changeable(case_id: str) -> CaseState | CaseReported:
        """The case, unless it is closed."""
        # A failed case can still change: a sighting or a perimeter gives its area new inputs,
        # and a resolution sends the Cancel to whoever it had alerted.
        found = open_case(case_id)
        if isinstance(found, CaseState) and found.status not in ("open", "failed"):
            raise CaseConflict(f"case {case_id} is {found.status}; a closed case cannot change")
        return found

    # -- cases -----------------------------------------------------------------------------

    @app.post(
        "/v1/cases",
        responses=errors.REFUSALS,
        status_code=201,
        response_model=Accepted,
        tags=["cases"],
    )
    async def file_case(body: CaseFiling, who: Principal = Depends(police)) -> Accepted:
        """File a case (police). The first dispatch runs as soon as the dispatcher reads it."""
        case_id = body.case_id or f"case-{uuid.uuid4().hex[:12]}"
        if context.view.knows(case_id):
            raise CaseConflict(f"a case with the id {case_id!r} exists already")
        not_in_future(body.last_seen.time, "last_seen.time")
        check_category(body.category)
        if body.perimeter is not None:
            check_perimeter(body.perimeter)
        try:
            public = PublicCase(
                case_id=case_id,
                category=body.category,
                texts=tuple(body.texts),
                last_seen_at=body.last_seen.time,
                contact=body.contact,
                web=body.web,
            )
        except ValidationError as error:
            raise InvalidInput(
                f"the case cannot be published: {error.errors()[0]['msg']}"
            ) from None

        commitment = context.vault.seal(case_id, body.private) if body.private else None
        event = CaseReported(
            case_id=case_id,
            case=public,
            last_seen=body.last_seen,
            policy=body.policy,
            perimeter=body.perimeter,
            private_commitment=commitment,
            reported_at=context.clock.now(),
        )
        event_id = await publish(context.topics.cases, case_id, event)
        context.view.filed[case_id] = event
        logger.info("case filed case=%s by=%s", case_id, who.label or who.role)
        return Accepted(case_id=case_id, event_id=event_id, status="reported", links=links(case_id))

    @app.post(
        "/v1/cases/{case_id}/sightings",
        responses=errors.REFUSALS,
        status_code=202,
        response_model=Accepted,
        tags=["cases"],
    )
    async def add_sighting(
        case_id: str, body: Sighting, who: Principal = Depends(police)
    ) -> Accepted:
        """Add a sighting (police): the area restarts there and the alerted get an Update."""
        found = changeable(case_id)
        not_in_future(body.time, "time")

        # The area grows from the latest time the child was seen; an older sighting would
        # restart it from further back and widen it, so it is refused.
        last_seen = (
            found.last_seen if isinstance(found, CaseReported) else found.area_inputs.last_seen
        )
        if body.time < last_seen.time:
            raise InvalidInput(
                "a sighting must not be earlier than the last-seen time "
                f"{last_seen.time.isoformat()}, got {body.time.isoformat()}"
            )
        event = SightingAdded(
            case_id=case_id,
            sighting=LastSeen(lat=body.lat, lon=body.lon, time=body.time),
            note=body.note,
        )
        event_id = await publish(context.topics.cases, case_id, event)
        return Accepted(
            case_id=case_id, event_id=event_id, status="sighting added", links=links(case_id)
        )

    @app.put(
        "/v1/cases/{case_id}/perimeter",
        responses=errors.REFUSALS,
        status_code=202,
        response_model=Accepted,
        tags=["cases"],
    )
    async def set_perimeter(
        case_id: str, body: Perimeter, who: Principal = Depends(police)
    ) -> Accepted:
        """Draw a perimeter (police), added to the area or in its place; alerted get an Update."""
        changeable(case_id)
        check_perimeter(body.geometry)
        event = PerimeterSet(case_id=case_id, perimeter=body.geometry, mode=body.mode)
        event_id = await publish(context.topics.cases, case_id, event)
        return Accepted(
            case_id=case_id, event_id=event_id, status="perimeter set", links=links(case_id)
        )

    @app.post(
        "/v1/cases/{case_id}/resolution",
        responses=errors.REFUSALS,
        status_code=202,
        response_model=Accepted,
        tags=["cases"],
    )
    async def resolve(case_id: str, body: Resolution, who: Principal = Depends(police)) -> Accepted:
        """Close a case (police): a Cancel reaches exactly those alerted; ticking stops."""
        changeable(case_id)
        event = CaseResolved(case_id=case_id, outcome=body.outcome, resolved_at=context.clock.now())
        event_id = await publish(context.topics.cases, case_id, event)
        return Accepted(
            case_id=case_id, event_id=event_id, status="resolving", links=links(case_id)
        )

    @app.delete(
        "/v1/cases/{case_id}/private",
        responses=errors.REFUSALS,
        status_code=204,
        tags=["cases"],
    )
    async def shred_private(case_id: str, who: Principal = Depends(police)) -> Response:
        """Shred a resolved case's private fields now (police); the log keeps its commitment.

        Their key is destroyed, so nothing can decrypt them again; a repeat changes nothing.
        """
        found = open_case(case_id)
        status = found.status if isinstance(found, CaseState) else "reported"
        if status != "resolved":
            raise CaseConflict(
                f"case {case_id} is {status}; its private fields can be shredded only once it "
                "is resolved and its Cancel has gone out"
            )
        if context.vault.shred(case_id, context.clock.now()):
            logger.info("case shredded on request case=%s by=%s", case_id, who.label or who.role)
        return Response(status_code=204)

    @app.get(
        "/v1/cases/{case_id}", responses=errors.REFUSALS, response_model=CaseSummary, tags=["cases"]
    )
    async def get_case(case_id: str, who: Principal = Depends(reader)) -> CaseSummary:
        """The public state of a case."""
        found = open_case(case_id)
        if isinstance(found, CaseReported):
            return CaseSummary(
                case_id=case_id,
                status="reported",
                category=found.case.category,
                last_seen=found.last_seen,
                reported_at=found.reported_at,
                tick=-1,
                alerted=0,
                private_commitment=found.private_commitment,
                private=context.vault.status(case_id),
                links=links(case_id),
            )
        return CaseSummary(
            case_id=case_id,
            status=found.status,
            outcome=found.outcome,
            category=found.case.category,
            last_seen=found.area_inputs.last_seen,
            reported_at=found.reported_at,
            tick=found.tick,
            last_tick_at=found.last_tick_at,
            next_tick_at=found.next_tick_at,
            alerted=found.alerted_count(),
            failure=found.failure,
            private_commitment=found.private_commitment,
            private=context.vault.status(case_id),
            private_shredded_at=context.vault.shredded_at(case_id),
            links=links(case_id),
        )

    @app.get("/v1/cases/{case_id}/area", responses=errors.REFUSALS, tags=["cases"])
    async def get_area(case_id: str, who: Principal = Depends(reader)) -> JSONResponse:
        """The search area as a GeoJSON Feature: the area of the last dispatch."""
        found = open_case(case_id)
        if isinstance(found, CaseReported):
            area = CaseArea(found.last_seen, found.case.category, found.policy).area(
                context.clock.now()
            )
            properties: dict[str, Any] = {
                "case_id": case_id,
                "tick": None,
                "at": context.clock.now().isoformat(),
            }
        else:
            area = found.previous_area or found.area_inputs.area(context.clock.now())
            at = found.last_tick_at or context.clock.now()
            properties = {
                "case_id": case_id,
                "tick": found.tick,
                "at": at.isoformat(),
                "status": found.status,
            }
        return JSONResponse(geojson_feature(area, properties), media_type="application/geo+json")

    @app.get("/v1/cases/{case_id}/alert.cap", responses=errors.REFUSALS, tags=["cases"])
    async def get_cap(case_id: str, who: Principal = Depends(reader)) -> Response:
        """The case's latest notice as a CAP 1.2 document, in every language the case gives."""
        from dispatch.notices.cap import notice_to_cap_bytes
        from dispatch.plan import rounded_geojson

        found = open_case(case_id)
        if not isinstance(found, CaseState) or found.tick < 0:
            raise CaseConflict(f"case {case_id} has not been dispatched yet; try again shortly")
        area = found.previous_area or found.area_inputs.area(context.clock.now())
        msg_type: MsgType = (
            "Cancel"
            if found.status == "resolved"
            else ("Update" if any(kind == "Update" for _, kind, _ in found.notices) else "Alert")
        )
        references = tuple(ref for _, kind, ref in found.notices) if msg_type != "Alert" else ()
        if msg_type == "Update":
            references = tuple(ref for _, kind, ref in found.notices[:-1])
        batch = NoticeBatch(
            case_id=case_id,
            tick=found.tick,
            msg_type=msg_type,
            sent=found.last_tick_at or context.clock.now(),
            references=references,
            case=found.case,
            area=rounded_geojson(area),
        )
        return Response(notice_to_cap_bytes(batch), media_type="application/cap+xml")

    # -- subscribers -----------------------------------------------------------------------

    def known_subscriber(subscriber_id: str) -> bool:
        if context.registry is not None:
            return context.registry.get(subscriber_id) is not None
        return context.tokens.owner_of(subscriber_id) is not None

    def owned(subscriber_id: str, who: Principal) -> None:
        """Refuse unless ``subscriber_id`` exists and ``who`` is the token that created it."""
        if not known_subscriber(subscriber_id):
            raise SubscriberNotFound(f"no subscriber has the id {subscriber_id!r}")
        require_owner(who, subscriber_id, context.tokens.owner_of(subscriber_id))

    async def upsert_subscriber(data: dict[str, Any], who: Principal) -> dict[str, Any]:
        from subscribers import Subscriber

        try:
            subscriber = Subscriber.model_validate(data)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            raise InvalidInput(f"{where}: {message}" if where else message) from None

        # A new id becomes the caller's; an existing one may be changed only by its owner.
        if known_subscriber(subscriber.id):
            owned(subscriber.id, who)
            claimed = False
        else:
            claimed = context.tokens.claim(subscriber.id, who)
            if not claimed:
                require_owner(who, subscriber.id, context.tokens.owner_of(subscriber.id))
        try:
            stored = (
                context.registry.upsert(subscriber) if context.registry is not None else subscriber
            )
            public = stored.model_dump(mode="json", exclude_none=True)
            await publish(
                context.topics.subscribers, stored.id, SubscriberUpserted(subscriber=public)
            )
        except BaseException:
            if claimed:
                context.tokens.release(subscriber.id)
            raise
        answer: dict[str, Any] = {"id": stored.id, "kind": stored.kind, "status": "subscribed"}

        # A webhook receiver needs its Standard Webhooks secret to verify what it is sent.
        if stored.channel.kind == "webhook" and context.webhook_secrets is not None:
            answer["webhook_secret"] = context.webhook_secrets(stored.id)
        return answer

    @app.post("/v1/subscribers", responses=errors.REFUSALS, status_code=201, tags=["subscribers"])
    async def create_subscriber(
        request: Request, who: Principal = Depends(platform)
    ) -> dict[str, Any]:
        """Subscribe a device, a watched area or a platform (platform).

        A webhook subscriber's answer carries ``webhook_secret`` (``whsec_...``), the Standard
        Webhooks secret its receiver verifies each notice's signature with.
        """
        return await upsert_subscriber(await _json_object(request), who)

    @app.put("/v1/subscribers/{subscriber_id}", responses=errors.REFUSALS, tags=["subscribers"])
    async def put_subscriber(
        subscriber_id: str, request: Request, who: Principal = Depends(platform)
    ) -> dict[str, Any]:
        """Create or change a subscriber (a device's new position, a new channel...)."""
        data = await _json_object(request)
        if data.setdefault("id", subscriber_id) != subscriber_id:
            raise InvalidInput(
                f"the body's id must be the path's {subscriber_id!r}, got {data['id']!r}"
            )
        return await upsert_subscriber(data, who)

    @app.delete(
        "/v1/subscribers/{subscriber_id}",
        responses=errors.REFUSALS,
        status_code=204,
        tags=["subscribers"],
    )
    async def delete_subscriber(subscriber_id: str, who: Principal = Depends(platform)) -> Response:
        """Unsubscribe (the platform token that created it): a tombstone on the compacted topic."""
        owned(subscriber_id, who)
        if context.registry is not None and not context.registry.delete(subscriber_id):
            raise SubscriberNotFound(f"no subscriber has the id {subscriber_id!r}")
        context.tokens.release(subscriber_id)
        headers = cloudevent_headers("subscriber.deleted", source=_SOURCE, time=context.clock.now())
        await context.producer.send_and_wait(
            context.topics.subscribers, None, key=subscriber_id.encode(), headers=headers
        )
        return Response(status_code=204)

    def stream_owner(subscriber_id: str, who: Principal = Depends(platform)) -> None:
        owned(subscriber_id, who)

    if context.sse_router is not None:
        app.include_router(
            context.sse_router,
            dependencies=[Depends(stream_owner)],
            responses=errors.REFUSALS,
        )
    for prefix, router in context.extra_routers:
        app.include_router(router, prefix=prefix, responses={422: errors.REFUSALS[422]})

    # -- operations ------------------------------------------------------------------------

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, Any]:
        """Whether the service is up, and what it runs on."""
        details = await context.health() if context.health is not None else {}
        return {"status": "ok", **details}

    @app.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(context.metrics.exposition(), media_type="text/plain; version=0.0.4")

    return app


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except json.JSONDecodeError as error:
        raise InvalidInput(errors.not_json_sentence(error.msg, error.pos)) from None
    except ValueError:
        raise InvalidInput("the request body is not valid JSON: it is not UTF-8 text") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"the body must be a JSON object, got {type(data).__name__}")
    return data
