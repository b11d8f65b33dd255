"""``wayhome serve``: the API, a dispatcher, the recorder and a delivery worker in one process.

On a fresh machine nothing needs setting up: when ``KAFKA_BOOTSTRAP_SERVERS`` is unset the
embedded broker (tansu) is started, state lives in SQLite files in the data dir, and the
subscriber index is in memory. The embedded broker has no transactions, so the dispatcher then
runs at-least-once with stable notice ids (see :mod:`dispatch.dispatcher`); on a configured
Apache Kafka it runs exactly-once.

:class:`Service` is also what the tests and the demo start, with a clock of their choosing. It
starts its parts in dependency order (broker, topics, recorder, dispatcher, delivery, API view)
and stops them in reverse.

Files in the data dir: ``service.key`` (32 random bytes: the root of the recipients'
pseudonym keys and of the webhook secrets), ``tokens.sqlite3``, ``vault.sqlite3`` and its
``vault-keys.sqlite3`` (the cases' data keys), ``subscribers.sqlite3``, ``deliveries.sqlite3``
and ``ledger/`` (the log and its keys). With
``WAYHOME_DATABASE_URL`` set, subscribers and deliveries live in PostgreSQL instead (PostGIS for
the subscribers); tokens, the vault and the log stay in the data dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

from dispatch.api.app import ApiContext, create_app
from dispatch.auth import TokenStore
from dispatch.caseview import CaseView
from dispatch.clock import AcceleratedClock, Clock, SystemClock
from dispatch.dispatcher import Dispatcher, DispatcherConfig
from dispatch.metrics import Metrics
from dispatch.recorder import Recorder
from dispatch.retention import run_sweeps, shred_expired
from dispatch.schedule import TickSchedule
from dispatch.settings import Settings
from dispatch.topics import Topics, ensure_topics
from dispatch.vault import Vault

logger = logging.getLogger(__name__)

LEDGER_ORIGIN = "localhost/wayhome"


def service_key(data_dir: Path) -> bytes:
    """The service's root secret, created on first use (mode 0600)."""
    path = data_dir / "service.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(32))
    return path.read_bytes()


def open_ledger(data_dir: Path) -> Any:
    """The dispatch log in ``data_dir/ledger``, created on first use."""
    from chain import Ledger

    directory = data_dir / "ledger"
    if (directory / "log.db").exists():
        return Ledger.open(directory, batch_size=256, batch_age_ms=200)
    return Ledger.init(directory, origin=LEDGER_ORIGIN, batch_size=256, batch_age_ms=200)


class Service:
    """Every part of wayhome in one process."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        *,
        run_delivery: bool = True,
        run_recorder: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock or (
            AcceleratedClock(settings.clock_speed) if settings.clock_speed != 1 else SystemClock()
        )
        self.run_delivery = run_delivery
        self.run_recorder = run_recorder
        self.topics = Topics(settings.topic_prefix)
        self.metrics = Metrics()
        self.broker: Any = None
        self.bootstrap_servers = settings.kafka_bootstrap_servers or ""
        self.embedded = settings.kafka_bootstrap_servers is None
        self.dispatcher: Dispatcher | None = None
        self.recorder: Recorder | None = None
        self.view: CaseView | None = None
        self.ledger: Any = None
        self.tokens: TokenStore | None = None
        self.vault: Vault | None = None
        self.hub: Any = None
        self.app: FastAPI | None = None
        self._producer: AIOKafkaProducer | None = None
        self._delivery_stop = asyncio.Event()
        self._delivery_task: asyncio.Task[Any] | None = None
        self._retention_task: asyncio.Task[None] | None = None
        self._closers: list[Any] = []

    async def start(self) -> Service:
        """Start every part; on a failure, stop what had started (the broker above all)."""
        try:
            return await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> Service:
        settings = self.settings
        data_dir = settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        key = service_key(data_dir)

        # (1) the broker and the topics
        if self.embedded:
            from dispatch.broker import EmbeddedBroker

            self.broker = await EmbeddedBroker.from_settings(settings).astart()
            self.bootstrap_servers = self.broker.bootstrap_servers
        await ensure_topics(
            self.bootstrap_servers,
            self.topics,
            partitions=settings.partitions,
            replication_factor=settings.replication_factor,
        )
        fetch_wait_ms = settings.fetch_wait_ms(self.embedded)

        # (2) the log and its recorder
        self.ledger = open_ledger(data_dir)
        if self.run_recorder:
            self.recorder = Recorder(
                self.bootstrap_servers,
                self.topics.dispatches,
                self.ledger,
                secret=key,
                group_id=f"{settings.topic_prefix}recorder",
                ledger_topic=self.topics.ledger,
                fetch_max_wait_ms=fetch_wait_ms,
                on_lag=self.metrics.consumer_lag.labels(topic=self.topics.dispatches).set,
            )
            await self.recorder.start()

        # (3) the dispatcher
        self.dispatcher = Dispatcher(
            DispatcherConfig(
                bootstrap_servers=self.bootstrap_servers,
                topics=self.topics,
                worker_id=settings.worker_id,
                group_id=f"{settings.topic_prefix}dispatch",
                exactly_once=settings.exactly_once(self.embedded),
                schedule=TickSchedule.parse(settings.tick_schedule),
                batch_size=(
                    settings.notice_batch_size
                    if settings.kafka_compression != "none"
                    else min(settings.notice_batch_size, 5000)
                ),
                fetch_max_wait_ms=fetch_wait_ms,
                transaction_timeout_ms=settings.transaction_timeout_ms,
                secret=key,
                compression=None
                if settings.kafka_compression == "none"
                else settings.kafka_compression,
            ),
            self.clock,
            self.metrics,
        )
        await self.dispatcher.start()

        # (4) delivery, with the SSE hub the API serves
        from dispatch.notices.signing import derived_secrets
        from dispatch.notices.sse import SseHub, notices_router
        from dispatch.notices.store import open_delivery_store

        self.hub = SseHub()
        if self.run_delivery:
            store = open_delivery_store(settings.database_url, data_dir)
            self._delivery_task = asyncio.create_task(
                self._deliver(store, derived_secrets(key), fetch_wait_ms), name="delivery"
            )

        # (5) the API
        self.view = CaseView(self.bootstrap_servers, self.topics.state, fetch_wait_ms)
        await self.view.start()
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all")
        await self._producer.start()
        self.tokens = TokenStore(data_dir / "tokens.sqlite3")
        self.vault = vault = Vault(data_dir / "vault.sqlite3")
        from subscribers import PostgisRegistry, SqliteRegistry

        registry: Any = (
            PostgisRegistry(settings.database_url)
            if settings.database_url
            else SqliteRegistry(data_dir / "subscribers.sqlite3")
        )
        self._closers += [self.tokens.close, vault.close]
        from dispatch.ledger_http import ledger_router

        extra = [("/v1/ledger", ledger_router(self.ledger))]
        self.app = create_app(
            ApiContext(
                producer=self._producer,
                topics=self.topics,
                view=self.view,
                tokens=self.tokens,
                vault=vault,
                registry=registry,
                clock=self.clock,
                metrics=self.metrics,
                base_url=settings.base_url(),
                sse_router=notices_router(self.hub),
                extra_routers=extra,
                health=self._health,
                webhook_secrets=derived_secrets(key),
            )
        )

        # (6) retention: resolved cases' private fields are shredded once their time is up
        self._retention_task = asyncio.create_task(
            run_sweeps(self.clock, self.shred_expired), name="retention"
        )
        logger.info(
            "service started kafka=%s embedded=%s exactly_once=%s",
            self.bootstrap_servers,
            self.embedded,
            settings.exactly_once(self.embedded),
        )
        return self

    async def _deliver(self, store: Any, secrets: Any, fetch_wait_ms: int) -> None:
        """One delivery worker (``dispatch.notices``) until the service stops.

        Its producer is idempotent only on a broker that has idempotent producers (not the
        embedded one); each delivery's latency, from its notice's ``sent`` on the service's
        clock, goes to the ``delivery_latency`` histogram.
        """
        from dispatch.notices.delivery import run_delivery_worker

        latency, dead_letters = self.metrics.delivery_latency, self.metrics.dead_letters
        await run_delivery_worker(
            bootstrap_servers=self.bootstrap_servers,
            store=store,
            secrets=secrets,
            topic_prefix=self.settings.topic_prefix,
            group_id=f"{self.settings.topic_prefix}delivery",
            hub=self.hub,
            poll_timeout_ms=max(fetch_wait_ms, 50),
            enable_idempotence=not self.embedded and self.settings.exactly_once(False),
            on_delivered=lambda _channel, latency_s: latency.observe(max(0.0, latency_s)),
            on_parked=lambda topic: dead_letters.labels(topic=topic).inc(),
            on_lag=self.metrics.consumer_lag.labels(topic=self.topics.notices).set,
            clock=self.clock.now,
            stop=self._delivery_stop,
        )

    def shred_expired(self) -> list[str]:
        """Shred the private fields of every case resolved ``retention_days`` ago or more.

        What the hourly retention task runs; the ids of the cases it shredded now.
        """
        if self.vault is None or self.view is None:
            return []
        states = list(self.view.states.values())
        return shred_expired(self.vault, states, self.clock.now(), self.settings.retention_days)

    async def _health(self) -> dict[str, Any]:
        dispatcher = self.dispatcher
        return {
            "kafka": self.bootstrap_servers,
            "embedded_broker": self.embedded,
            "exactly_once": self.settings.exactly_once(self.embedded),
            "subscribers": len(dispatcher.directory) if dispatcher else 0,
            "open_cases": dispatcher._open_count() if dispatcher else 0,  # noqa: SLF001
            "log_size": self.ledger.size if self.ledger is not None else 0,
        }

    async def stop(self) -> None:
        if self._retention_task is not None:
            self._retention_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._retention_task
            self._retention_task = None
        if self._delivery_task is not None:
            self._delivery_stop.set()
            self._delivery_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._delivery_task
        for part in (self.view, self.dispatcher, self.recorder):
            if part is not None:
                with contextlib.suppress(Exception):
                    await part.stop()
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._producer.stop()
        for close in self._closers:
            with contextlib.suppress(Exception):
                close()
        self._closers = []
        if self.ledger is not None:
            with contextlib.suppress(Exception):
                self.ledger.close()
            self.ledger = None
        if self.broker is not None:
            broker, self.broker = self.broker, None
            await broker.astop()
        logger.info("service stopped")

    async def __aenter__(self) -> Service:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve(settings: Settings) -> None:
    """Run the service and its HTTP API until interrupted."""
    import uvicorn

    service = Service(settings)
    await service.start()
    try:
        assert service.app is not None
        config = uvicorn.Config(
            service.app,
            host=settings.http_host,
            port=settings.http_port,
            log_level=settings.log_level.lower(),
            lifespan="off",
        )
        server = uvicorn.Server(config)
        assert service.dispatcher is not None
        api = asyncio.create_task(server.serve(), name="http")
        failed = asyncio.create_task(service.dispatcher.wait_failed(), name="watch-dispatcher")
        done, _ = await asyncio.wait([api, failed], return_when=asyncio.FIRST_COMPLETED)
        for task in (api, failed):
            if task not in done:
                task.cancel()
        for task in done:
            task.result()
    finally:
        await service.stop()
