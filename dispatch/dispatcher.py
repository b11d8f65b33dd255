"""The dispatcher: a consumer group over ``cases`` that ticks open cases into notices.

Each worker

1. follows the whole compacted ``subscribers`` topic into its :class:`~dispatch.directory.Directory`
   (no consumer group: every worker needs every subscriber; partitioning by cell is the way
   past one machine, see :mod:`dispatch.topics`);
2. joins the ``cases`` consumer group; when it is assigned a partition, it restores the states
   of that partition's cases from ``dispatch.state`` before reading any event of it;
3. applies each case event, and runs every dispatch that is due (:mod:`dispatch.plan`): the
   first tick at once on a report, an Update at once on a sighting or perimeter, the Cancel at
   once on a resolution, ticks on the schedule, and an alert at once for a device that reports
   a position inside an open case's area.

Exactly-once effect
-------------------
On Apache Kafka (``exactly_once``) every unit of work is one transaction of a transactional
producer whose id is the worker's stable name: the notice batches, the case's new state, the
dispatch's log record, and (for work caused by a case event) the consumed offset via
``send_offsets_to_transaction``. Consumers read with ``read_committed``. A worker killed
mid-tick leaves an open transaction that its restarted self aborts on start (same
transactional id, so the zombie is fenced), and the tick is redone from the last committed
state under the same tick number. On a rebalance, the revoking worker finishes its current unit
under a lock before giving the partition up, and the new owner restores the committed state.
Notice ids are deterministic (``case:tick:type``) in any case, so delivery's dedupe store is a
second guard, not the first.

The embedded broker (tansu) has neither idempotent producers nor transactions. There the
dispatcher runs ``at_least_once``: notices first, then the state and record, then the offset.
A crash between them redoes the dispatch under the same tick number: the same notice and
delivery ids, so delivery drops what it has already delivered, and the log's sequencer drops
a record whose dispatch id it has.

What is not done: the ``move`` alert waits for the worker to have caught up with the
subscribers topic after a start; a device that moved in meanwhile is found by the next tick,
which after a restore looks at the whole area instead of the ring. A worker that stalls past
the group's session timeout while its partitions move on is not fenced by Kafka (aiokafka's
offset commit in a transaction carries no group generation, and scheduled ticks commit no
offset): it may commit one more dispatch of a case the new owner dispatches too. Both start
from the same committed state, so they use the same tick number and the same notice and
delivery ids; delivery's dedupe store and the recorder drop the second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from dispatch.cases import CaseState
from dispatch.clock import Clock
from dispatch.directory import Contact, Directory, key_of
from dispatch.errors import DispatchError, InvalidInput, MalformedEvent
from dispatch.events import (
    CaseReported,
    CaseResolved,
    PerimeterSet,
    SightingAdded,
    SubscriberDeleted,
    check_not_future,
    cloudevent_headers,
    decode_case_event,
    decode_subscriber_event,
    event_id_of,
    redacted_body,
)
from dispatch.lifecycle import event_time, lifecycle_record
from dispatch.metrics import Metrics, consumer_lag
from dispatch.plan import Dispatch, Planner
from dispatch.reach import check_category, check_perimeter
from dispatch.schedule import TickSchedule
from dispatch.topics import DEAD_REASON_HEADER, Topics

logger = logging.getLogger(__name__)

_SOURCE = "urn:wayhome:dispatcher"


@dataclass
class DispatcherConfig:
    """How a dispatcher worker connects and behaves."""

    bootstrap_servers: str
    topics: Topics
    worker_id: str = "dispatcher-0"
    group_id: str = "wayhome-dispatch"
    exactly_once: bool = True
    schedule: TickSchedule = TickSchedule.parse("0h=1m,3h=5m,24h=30m,72h=2h")
    batch_size: int = 10000
    fetch_max_wait_ms: int = 200
    transaction_timeout_ms: int = 15000
    secret: bytes = b"wayhome-pseudonyms"
    compression: str | None = "zstd"


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.dispatcher._revoke({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.dispatcher._assign({tp.partition for tp in assigned})


class Dispatcher:
    """One dispatcher worker."""

    def __init__(self, config: DispatcherConfig, clock: Clock, metrics: Metrics | None = None):
        self.config = config
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.topics = config.topics
        self.directory = Directory()
        self.planner = Planner(
            self.directory, config.schedule, batch_size=config.batch_size, secret=config.secret
        )
        self.cases: dict[str, CaseState] = {}
        self.ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._pending_restore: set[int] = set()
        self._owned: set[int] = set()
        self._moved: list[tuple[int, float, float]] = []
        self._parked: list[tuple[ConsumerRecord[Any, Any], str]] = []
        self._departed: list[Contact] = []
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._producer: AIOKafkaProducer | None = None
        self._plain_producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, catch up with the subscribers, join the group and start working."""
        config = self.config
        if config.exactly_once:
            self._producer = AIOKafkaProducer(
                bootstrap_servers=config.bootstrap_servers,
                transactional_id=f"wayhome-dispatch-{config.worker_id}",
                enable_idempotence=True,
                transaction_timeout_ms=config.transaction_timeout_ms,
                max_request_size=8 * 1024 * 1024,
                linger_ms=5,
                compression_type=config.compression,
            )
        else:
            self._producer = AIOKafkaProducer(
                bootstrap_servers=config.bootstrap_servers,
                acks="all",
                max_request_size=8 * 1024 * 1024,
                linger_ms=5,
                compression_type=config.compression,
            )
        await self._producer.start()
        self._plain_producer = AIOKafkaProducer(bootstrap_servers=config.bootstrap_servers)
        await self._plain_producer.start()

        follower = asyncio.create_task(self._follow_subscribers(), name="follow-subscribers")
        self._tasks.append(follower)
        await asyncio.wait(
            [asyncio.ensure_future(self.ready.wait()), follower],
            return_when=asyncio.FIRST_COMPLETED,
        )
        if follower.done():
            follower.result()

        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=config.bootstrap_servers,
            group_id=config.group_id,
            client_id=config.worker_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=config.fetch_max_wait_ms,
            max_poll_interval_ms=300_000,
        )
        await self._consumer.start()
        self._consumer.subscribe([self.topics.cases], listener=_Rebalance(self))
        self._tasks.append(asyncio.create_task(self._loop(), name="dispatch-loop"))
        logger.info(
            "dispatcher started worker=%s exactly_once=%s subscribers=%d",
            config.worker_id,
            config.exactly_once,
            len(self.directory),
        )

    async def stop(self) -> None:
        """Finish the unit of work in hand, leave the group and disconnect."""
        self._stopping.set()
        async with self._lock:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for client in (self._consumer, self._producer, self._plain_producer):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.stop()
        logger.info("dispatcher stopped worker=%s", self.config.worker_id)

    async def wait_failed(self) -> None:
        """Return (raising its error) when a task of the worker ends on its own."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    # -- subscribers ---------------------------------------------------------------------

    async def _follow_subscribers(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap_servers,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=self.config.fetch_max_wait_ms,
            max_partition_fetch_bytes=4 * 1024 * 1024,
        )
        await consumer.start()
        try:
            partitions = await _partitions_of(consumer, self.topics.subscribers)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end = await consumer.end_offsets(partitions)
            remaining = {tp for tp in partitions if end[tp] > 0}
            if not remaining:
                self.ready.set()
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=20_000)
                devices: list[Any] = []
                pending: list[tuple[ConsumerRecord[Any, Any], Any]] = []
                for records in batch.values():
                    for record in records:
                        subscriber = self._apply_subscriber(record, pending)
                        if subscriber is not None:
                            devices.append(subscriber)
                self._flush_devices(pending)
                await self._send_parked()
                if devices and self.ready.is_set():
                    self._moved += [(key_of(s.id), float(s.lon), float(s.lat)) for s in devices]
                if not self.ready.is_set():
                    for tp in list(remaining):
                        if await consumer.position(tp) >= end[tp]:
                            remaining.discard(tp)
                    if not remaining:
                        logger.info("subscribers caught up count=%d", len(self.directory))
                        self.ready.set()
                lag = await consumer_lag(consumer)
                self.metrics.consumer_lag.labels(topic=self.topics.subscribers).set(lag)
        finally:
            await consumer.stop()

    def _apply_subscriber(
        self, record: ConsumerRecord[Any, Any], pending: list[tuple[ConsumerRecord[Any, Any], Any]]
    ) -> Any:
        """Apply one subscriber event; returns the device when it is one that moved.

        Devices are only validated here and queued in ``pending``, to enter the index in one
        array update (:meth:`_flush_devices`); anything else flushes the queue first, so events
        still apply in their order.
        """
        from subscribers import Subscriber

        try:
            event = decode_subscriber_event(record.key, record.value, record.headers)
            if isinstance(event, SubscriberDeleted):
                self._flush_devices(pending)
                contact = self.directory.contacts.get(key_of(event.subscriber_id))
                if self.directory.delete(event.subscriber_id) is not None and contact is not None:
                    self._departed.append(contact)
                return None
            try:
                subscriber = Subscriber.model_validate(event.subscriber)
            except ValueError as error:
                raise MalformedEvent(f"the subscriber is invalid: {_sentence(error)}") from None
            if subscriber.kind == "device":
                pending.append((record, subscriber))
                return subscriber
            self._flush_devices(pending)
            self.directory.upsert(subscriber)
        except (MalformedEvent, ValueError) as error:
            self._park_plain(record, str(error))
        return None

    def _flush_devices(self, pending: list[tuple[ConsumerRecord[Any, Any], Any]]) -> None:
        """Put the queued devices into the directory in one go."""
        if not pending:
            return
        try:
            self.directory.bulk_devices([subscriber for _, subscriber in pending])
        except ValueError:  # a key collision: one by one, parking the offender
            for record, subscriber in pending:
                try:
                    self.directory.upsert(subscriber)
                except ValueError as error:
                    self._park_plain(record, str(error))
        pending.clear()

    def _park_plain(self, record: ConsumerRecord[Any, Any], reason: str) -> None:
        """Queue an unreadable event for its dead-letter topic (sent by :meth:`_send_parked`)."""
        logger.warning(
            "event parked topic=%s offset=%d reason=%s", record.topic, record.offset, reason
        )
        self.metrics.dead_letters.labels(topic=record.topic).inc()
        self._parked.append((record, reason))

    async def _send_parked(self) -> None:
        """Send the queued parked events, outside any transaction, each one acknowledged.

        Their bodies are redacted (:func:`~dispatch.events.redacted_body`): a subscriber's body
        holds its exact position.
        """
        if not self._parked:
            return
        assert self._plain_producer is not None
        parked, self._parked = self._parked, []
        futures = [
            await self._plain_producer.send(
                self.topics.dead_letter_of(record.topic),
                redacted_body(record.value),
                key=record.key,
                headers=_dead_headers(record, reason),
            )
            for record, reason in parked
        ]
        await asyncio.gather(*futures)

    # -- ownership -----------------------------------------------------------------------

    async def _revoke(self, partitions: set[int]) -> None:
        async with self._lock:
            for case_id in [c for c, s in self.cases.items() if s.partition in partitions]:
                del self.cases[case_id]
            self._owned -= partitions
            self._pending_restore -= partitions
            self.metrics.open_cases.set(self._open_count())
            logger.info(
                "partitions revoked worker=%s partitions=%s",
                self.config.worker_id,
                sorted(partitions),
            )

    def _assign(self, partitions: set[int]) -> None:
        self._pending_restore |= partitions - self._owned
        self._owned |= partitions
        logger.info(
            "partitions assigned worker=%s partitions=%s", self.config.worker_id, sorted(partitions)
        )

    async def _restore(self, partitions: set[int]) -> None:
        """Read the committed states of ``partitions`` from ``dispatch.state``."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap_servers,
            enable_auto_commit=False,
            isolation_level="read_committed",
            fetch_max_wait_ms=self.config.fetch_max_wait_ms,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await consumer.start()
        try:
            tps = [TopicPartition(self.topics.state, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            latest: dict[str, bytes | None] = {}
            remaining = {tp for tp in tps if end[tp] > 0}
            while remaining:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        latest[record.key.decode()] = record.value
                for tp in list(remaining):
                    if await consumer.position(tp) >= end[tp]:
                        remaining.discard(tp)
        finally:
            await consumer.stop()
        restored = 0
        for case_id, value in latest.items():
            if value is None:
                self.cases.pop(case_id, None)
                continue
            state = CaseState.from_bytes(value)
            state.reconcile = True  # the next tick looks at the whole area
            self.cases[case_id] = state
            restored += 1
        self.metrics.open_cases.set(self._open_count())
        logger.info(
            "case states restored worker=%s partitions=%s cases=%d",
            self.config.worker_id,
            sorted(partitions),
            restored,
        )

    def _open_count(self) -> int:
        return sum(1 for state in self.cases.values() if state.status in ("open", "resolving"))

    # -- the loop ------------------------------------------------------------------------

    async def _loop(self) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        while not self._stopping.is_set():
            batch = await consumer.getmany(timeout_ms=100, max_records=200)
            async with self._lock:
                if self._pending_restore:
                    pending, self._pending_restore = self._pending_restore, set()
                    await self._restore(pending)
                for tp, records in batch.items():
                    for record in records:
                        if tp.partition not in self._owned:
                            break
                        await self._on_case_record(tp, record)
                await self._record_departures()
                await self._dispatch_moves()
                await self._dispatch_due()
                await self._update_lag(consumer)

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        lag = await consumer_lag(consumer, committed_only=self.config.exactly_once)
        self.metrics.consumer_lag.labels(topic=self.topics.cases).set(lag)

    async def _on_case_record(self, tp: TopicPartition, record: ConsumerRecord[Any, Any]) -> None:
        offsets = {tp: record.offset + 1}
        event_id = event_id_of(record.key, record.value, record.headers)
        try:
            event = decode_case_event(record.key, record.value, record.headers)
            state = self._apply_case_event(event, event_id, tp.partition)
        except DispatchError as error:
            logger.warning(
                "case event parked partition=%d offset=%d reason=%s",
                tp.partition,
                record.offset,
                error,
            )
            self.metrics.dead_letters.labels(topic=record.topic).inc()
            # Never the body as read: an event refused for a private field would carry it on.
            dead = (
                self.topics.cases_dead,
                record.key,
                redacted_body(record.value),
                _dead_headers(record, str(error)),
            )
            await self._commit(None, None, offsets, extra=[dead])
            return
        if state is None:  # a redelivered event: only the offset moves
            await self._commit(None, None, offsets)
            return
        lifecycle = self._lifecycle(event, state, event_id, record)
        dispatch = self._run_due(state)
        await self._commit(state, dispatch, offsets, lifecycle=lifecycle)

    def _lifecycle(
        self, event: Any, state: CaseState, event_id: str, record: ConsumerRecord[Any, Any]
    ) -> dict[str, Any] | None:
        """The log record of an applied case event (:mod:`dispatch.lifecycle`)."""
        try:
            return lifecycle_record(
                event,
                state,
                event_id=event_id,
                at=event_time(record.headers, record.timestamp),
                secret=self.config.secret,
            )
        except ValueError:  # a bug, not bad input (the event was checked): the case goes on
            logger.exception("no log record for an event of case=%s", state.case_id)
            return None

    def _apply_case_event(self, event: Any, event_id: str, partition: int) -> CaseState | None:
        now = self.clock.now()
        if isinstance(event, CaseReported):
            known = self.cases.get(event.case_id)
            if known is not None:
                if event_id in known.applied:
                    return None
                raise MalformedEvent(
                    f"case {event.case_id} was reported already; file a new case id"
                )
            check_category(event.case.category)
            check_not_future(event.last_seen.time, now, "last_seen.time")
            if event.perimeter is not None:
                check_perimeter(event.perimeter)
            state = CaseState.reported(event, partition, now)
            state.remember_event(event_id)
            self.cases[event.case_id] = state
            self.metrics.open_cases.set(self._open_count())
            logger.info("case opened case=%s", event.case_id)
            return state

        known_state = self.cases.get(event.case_id)
        if known_state is None:
            raise MalformedEvent(f"case {event.case_id} is unknown; report it before changing it")
        state = known_state
        if event_id in state.applied:
            return None
        if state.status not in ("open", "failed"):
            raise MalformedEvent(f"case {event.case_id} is closed; it cannot change any more")
        if isinstance(event, PerimeterSet):
            check_perimeter(event.perimeter)
        if isinstance(event, SightingAdded):
            check_not_future(event.sighting.time, now, "sighting.time")
            last_seen = state.area_inputs.last_seen.time
            if event.sighting.time < last_seen:
                # It would restart the area from an older point, and so enlarge it.
                raise InvalidInput(
                    f"sighting.time must not be before the case's last-seen time "
                    f"{last_seen.isoformat()}, got {event.sighting.time.isoformat()}"
                )
        state.remember_event(event_id)
        if isinstance(event, SightingAdded):
            state.add_sighting(event.sighting, now)
            state.recover()
        elif isinstance(event, PerimeterSet):
            state.set_perimeter(event.perimeter, event.mode, now)
            state.recover()
        elif isinstance(event, CaseResolved):
            state.resolve(event.outcome, now)
            logger.info("case resolving case=%s outcome=%s", event.case_id, event.outcome)
        return state

    def _run_due(self, state: CaseState) -> Dispatch | None:
        started = time.perf_counter()
        now = self.clock.now()
        try:
            dispatch = self.planner.due(state, now)
        except ValueError as error:
            # A case whose area cannot be computed must not stop every other case, nor fail
            # again at every tick: its inputs do not change by themselves, so it stops ticking,
            # "failed" with the reason in its state, until a sighting or a perimeter changes
            # them, or a resolution cancels what it had sent.
            logger.error(
                "dispatch failed case=%s tick=%d reason=%s; the case stops ticking",
                state.case_id,
                state.tick + 1,
                error,
                exc_info=True,
            )
            state.fail(str(error))
            self.metrics.open_cases.set(self._open_count())
            return None
        if dispatch is not None:
            dispatch.started_s = started
        return dispatch

    async def _dispatch_due(self) -> None:
        now = self.clock.now()
        for state in list(self.cases.values()):
            if state.next_tick_at is not None and state.next_tick_at <= now:
                dispatch = self._run_due(state)
                await self._commit(state, dispatch, None)

    async def _record_departures(self) -> None:
        """Keep, in each case that alerted them, how to reach the subscribers deleted since."""
        if not self._departed:
            return
        departed, self._departed = self._departed, []
        for state in list(self.cases.values()):
            if state.status != "resolved" and state.remember_departed(departed):
                await self._commit(state, None, None)

    async def _dispatch_moves(self) -> None:
        if not self._moved:
            return
        moved, self._moved = self._moved, []
        keys = np.array([m[0] for m in moved], dtype=np.int64)
        lon = np.array([m[1] for m in moved])
        lat = np.array([m[2] for m in moved])
        now = self.clock.now()
        for state in list(self.cases.values()):
            dispatch = self.planner.move(state, keys, lon, lat, now)
            if dispatch is not None:
                await self._commit(state, dispatch, None)

    # -- writing -------------------------------------------------------------------------

    async def _commit(
        self,
        state: CaseState | None,
        dispatch: Dispatch | None,
        offsets: dict[TopicPartition, int] | None,
        extra: list[tuple[str, Any, Any, Any]] | None = None,
        lifecycle: dict[str, Any] | None = None,
    ) -> None:
        """Write a unit of work: lifecycle record, notices, state, record, extra, offsets."""
        assert self._producer is not None and self._consumer is not None
        messages: list[tuple[str, Any, Any, Any, int | None]] = []
        if state is not None and lifecycle is not None:
            # Before the dispatch's record, on the same partition: the log has the sighting
            # before the Update it caused.
            headers = cloudevent_headers(
                "case.recorded",
                event_id=f"{state.case_id}:{lifecycle['kind']}:{lifecycle['time']}",
                source=_SOURCE,
            )
            value = json.dumps({"lifecycle": lifecycle}, separators=(",", ":")).encode()
            messages.append((self.topics.dispatches, state.case_id.encode(), value, headers, None))
        if dispatch is not None:
            for part, value in enumerate(dispatch.batches):
                headers = cloudevent_headers(
                    "notice.batch",
                    event_id=f"{dispatch.case_id}:{dispatch.tick}:{part}",
                    source=_SOURCE,
                    time=dispatch.sent,
                )
                messages.append(
                    (self.topics.notices, dispatch.case_id.encode(), value, headers, None)
                )
            record_headers = cloudevent_headers(
                "dispatch.recorded",
                event_id=dispatch.dispatch_id,
                source=_SOURCE,
                time=dispatch.sent,
            )
            record_value = json.dumps(dispatch.record, separators=(",", ":")).encode()
            messages.append(
                (
                    self.topics.dispatches,
                    dispatch.case_id.encode(),
                    record_value,
                    record_headers,
                    None,
                )
            )
        if state is not None:
            messages.append(
                (self.topics.state, state.case_id.encode(), state.to_bytes(), None, state.partition)
            )
        for topic, key, value, headers in extra or []:
            messages.append((topic, key, value, headers, None))

        if self.config.exactly_once:
            async with self._producer.transaction():
                await self._send_all(messages)
                if offsets:
                    await self._producer.send_offsets_to_transaction(offsets, self.config.group_id)
        else:
            # In this order, each step acknowledged before the next: the notices and the log
            # record, then the state that says they went out, then the offset.
            state_topic = self.topics.state
            await self._send_all([m for m in messages if m[0] != state_topic])
            await self._send_all([m for m in messages if m[0] == state_topic])
            if offsets:
                await self._consumer.commit(offsets)

        if dispatch is not None:
            self._count(dispatch)
        if state is not None and state.status == "resolved" and dispatch is not None:
            self.metrics.open_cases.set(self._open_count())
            logger.info("case closed case=%s", state.case_id)

    async def _send_all(self, messages: list[tuple[str, Any, Any, Any, int | None]]) -> None:
        assert self._producer is not None
        futures: list[Awaitable[Any]] = []
        for topic, key, value, headers, partition in messages:
            futures.append(
                await self._producer.send(
                    topic, value, key=key, headers=headers, partition=partition
                )
            )
        await asyncio.gather(*futures)

    def _count(self, dispatch: Dispatch) -> None:
        for msg_type, count in dispatch.counts.items():
            self.metrics.notices.labels(msg_type=msg_type).inc(count)
        self.metrics.notice_batches.inc(len(dispatch.batches))
        self.metrics.dispatches.labels(kind=dispatch.kind).inc()
        if dispatch.started_s is not None:
            self.metrics.dispatch_seconds.observe(time.perf_counter() - dispatch.started_s)
        logger.info(
            "dispatched case=%s tick=%d kind=%s recipients=%d batches=%d",
            dispatch.case_id,
            dispatch.tick,
            dispatch.kind,
            dispatch.recipient_count,
            len(dispatch.batches),
        )


async def _partitions_of(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    for _ in range(100):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return [TopicPartition(topic, p) for p in sorted(partitions)]
        await consumer._client.force_metadata_update()  # noqa: SLF001
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic} does not exist; create the topics first")


def _dead_headers(record: ConsumerRecord[Any, Any], reason: str) -> list[tuple[str, bytes]]:
    headers = [(k, v) for k, v in (record.headers or ()) if k != DEAD_REASON_HEADER]
    headers.append((DEAD_REASON_HEADER, reason.encode()))
    headers.append(
        ("wayhome_dead_origin", f"{record.topic}/{record.partition}/{record.offset}".encode())
    )
    return headers


def _sentence(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        return str(first.get("msg", error))
    return str(error)
