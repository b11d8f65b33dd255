"""The recorder: the ``dispatches`` topic into the ledger, one signed entry per record.

Two kinds of record travel on ``dispatches``: one per dispatch (below), and one per change of
a case (opened, sighting, perimeter, resolution: :mod:`dispatch.lifecycle`), which the
dispatcher writes in the same transaction as the change, before the dispatch it caused. Both
are signed with the ledger's submitter key (Ed25519) when appended.

The dispatcher cannot append to the log inside its Kafka transaction (the log is a SQLite or
PostgreSQL store, not a topic), so it puts each dispatch's record (case, tick, time, area
digest, and the recipients' ids, deflated) on ``dispatches`` in the same transaction as the
notices. The recorder, one per log (the log has one sequencer), reads those records with
``read_committed`` and appends them:

1. on start, read the (case, tick) of every dispatch entry already in the log;
2. for each record read, skip it when its (case, tick) is known (a record redelivered after a
   crash, or written twice by an at-least-once dispatcher); else turn the recipients into their
   pseudonyms (``chain.recipients``, keyed per case from the service secret) and append the
   signed dispatch entry, which holds only their count and Merkle root;
3. integrate the batch (the sequencer signs a checkpoint), then commit the Kafka offsets.

Why the pseudonyms are computed here and not in the dispatcher: one HMAC and one Merkle leaf
per recipient cost more than building and producing the notices themselves (about 1.5 s for a
hundred thousand recipients), and the dispatcher's tick is the path from a report to the
notices. The ids ride along on ``dispatches`` exactly as they ride on ``notices``.

A crash between 2 and 3 re-reads records already in the log, which step 2 drops. So the log
holds exactly one entry per committed dispatch. A lifecycle record is known by its canonical
bytes (the dispatcher computes the same bytes again for an event it redoes), so it too is
appended once.

4. publish what the log gained on the ``ledger`` topic, for replicas and witnesses that follow
   Kafka rather than the tiles: each new entry (key: its index, ``ce_type``
   ``org.wayhome.ledger.entry``), then the signed checkpoint that covers it
   (``org.wayhome.ledger.checkpoint``). Entries are published from the size the log had when
   the recorder started; a replica that needs older ones reads them from the tiles.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from chain.entries import canonical, parse_entry
from chain.errors import ChainError
from chain.recipients import pseudonym
from dispatch.events import cloudevent_headers
from dispatch.lifecycle import LIFECYCLE_KINDS
from dispatch.metrics import consumer_lag
from dispatch.plan import case_secret, text_to_recipients

logger = logging.getLogger(__name__)

_SOURCE = "urn:wayhome:recorder"


class Recorder:
    """Appends the committed dispatch records of ``dispatches`` to a ``chain.Ledger``."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        ledger: Any,
        *,
        secret: bytes = b"wayhome-pseudonyms",
        group_id: str = "wayhome-recorder",
        fetch_max_wait_ms: int = 200,
        ledger_topic: str | None = None,
        on_lag: Callable[[int], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.on_lag = on_lag
        self.ledger_topic = ledger_topic
        self._producer = (
            AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
            if ledger_topic
            else None
        )
        self._published = 0
        self.secret = secret
        self.topic = topic
        self.recorded: set[tuple[str, int]] = set()
        self.recorded_lifecycle: set[bytes] = set()
        self.appended = 0  # dispatch entries
        self.lifecycle_appended = 0  # case opened, sighting, perimeter and resolution entries
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            fetch_max_wait_ms=fetch_max_wait_ms,
        )
        self._task: asyncio.Task[None] | None = None

    def _known_dispatches(self) -> None:
        size = self.ledger.size
        for start in range(0, size, 1024):
            for entry in self.ledger.entries(start, min(size, start + 1024)):
                record = parse_entry(entry).record
                if record.get("kind") == "dispatch":
                    self.recorded.add((record["case"], int(record["tick"])))
                elif record.get("kind") in LIFECYCLE_KINDS:
                    self.recorded_lifecycle.add(canonical(record))

    async def start(self) -> None:
        self._known_dispatches()
        self._published = self.ledger.size
        if self._producer is not None:
            await self._producer.start()
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="recorder")
        logger.info("recorder started known_dispatches=%d", len(self.recorded))

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200, max_records=500)
            if not batch:
                self.ledger.tick()
                await self._publish()
                if self.on_lag is not None:
                    self.on_lag(await consumer_lag(self._consumer, committed_only=True))
                continue
            for records in batch.values():
                for message in records:
                    self._record(message.value, message.offset)
            self.ledger.flush()
            await self._consumer.commit()
            await self._publish()
            if self.on_lag is not None:
                self.on_lag(await consumer_lag(self._consumer, committed_only=True))

    async def _publish(self) -> None:
        """Put the entries the log gained, and its checkpoint, on the ``ledger`` topic."""
        size = self.ledger.size
        if self._producer is None or self.ledger_topic is None or size <= self._published:
            return
        origin = self.ledger.checkpoint().origin
        for index, entry in enumerate(self.ledger.entries(self._published, size), self._published):
            headers = cloudevent_headers(
                "ledger.entry", event_id=f"{origin}/entry/{index}", source=_SOURCE
            )
            await self._producer.send(
                self.ledger_topic, entry, key=str(index).encode(), headers=headers
            )
        note = self.ledger.checkpoint_note(size).encode()
        headers = cloudevent_headers(
            "ledger.checkpoint", event_id=f"{origin}/checkpoint/{size}", source=_SOURCE
        )
        headers = [(k, b"text/plain" if k == "content-type" else v) for k, v in headers]
        await self._producer.send_and_wait(
            self.ledger_topic, note, key=b"checkpoint", headers=headers
        )
        self._published = size

    def _record(self, value: bytes | None, offset: int) -> None:
        try:
            record = json.loads(value or b"")
            if isinstance(record, dict) and "lifecycle" in record:
                self._record_lifecycle(record["lifecycle"], offset)
                return
            key = (record["case"], int(record["tick"]))
            time = datetime.fromisoformat(record["time"])
            area = bytes.fromhex(record["area_sha256"])
            recipients = text_to_recipients(record["recipients"])
        except (ValueError, KeyError, TypeError):
            logger.warning("unreadable dispatch record skipped offset=%d", offset)
            return
        if key in self.recorded:
            logger.debug("dispatch already in the log case=%s tick=%d", *key)
            return
        secret = case_secret(self.secret, key[0])
        pseudonyms = [pseudonym(secret, subscriber_id) for subscriber_id in recipients]
        self.ledger.append(self.ledger.dispatch_entry(key[0], key[1], time, area, pseudonyms))
        self.recorded.add(key)
        self.appended += 1

    def _record_lifecycle(self, record: object, offset: int) -> None:
        """Append a case's lifecycle record, signed, unless the log has it already."""
        if not isinstance(record, dict) or record.get("kind") not in LIFECYCLE_KINDS:
            logger.warning("unreadable lifecycle record skipped offset=%d", offset)
            return
        try:
            known = canonical(record)
            if known in self.recorded_lifecycle:
                logger.debug("lifecycle record already in the log offset=%d", offset)
                return
            self.ledger.append_record(record)
        except ChainError as error:
            logger.warning("lifecycle record refused offset=%d reason=%s", offset, error)
            return
        self.recorded_lifecycle.add(known)
        self.lifecycle_appended += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(Exception):
            await self._consumer.stop()
        with contextlib.suppress(Exception):
            self.ledger.flush()
        if self._producer is not None:
            with contextlib.suppress(Exception):
                await self._publish()
            with contextlib.suppress(Exception):
                await self._producer.stop()
