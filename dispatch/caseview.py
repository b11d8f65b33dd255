"""The API's view of the cases: the latest committed state of each, read from ``dispatch.state``.

The dispatcher workers own the cases; the API only reads them, by following the compacted
state topic (every partition, ``read_committed``) into a dict. It sees a case as soon as its
first dispatch is committed. A case filed through this process but not dispatched yet is held
in :attr:`CaseView.filed` meanwhile, so ``GET /v1/cases/{id}`` answers right after filing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from dispatch.cases import CaseState
from dispatch.events import CaseReported

logger = logging.getLogger(__name__)


class CaseView:
    """Latest state of every case, following ``dispatch.state``."""

    def __init__(self, bootstrap_servers: str, topic: str, fetch_max_wait_ms: int = 200) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.states: dict[str, CaseState] = {}
        self.filed: dict[str, CaseReported] = {}
        self.changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def get(self, case_id: str) -> CaseState | None:
        return self.states.get(case_id)

    def knows(self, case_id: str) -> bool:
        return case_id in self.states or case_id in self.filed

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            enable_auto_commit=False,
            isolation_level="read_committed",
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        await consumer.start()
        partitions = consumer.partitions_for_topic(self.topic)
        for _ in range(50):
            if partitions:
                break
            await consumer._client.force_metadata_update()  # noqa: SLF001
            partitions = consumer.partitions_for_topic(self.topic)
            await asyncio.sleep(0.1)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        self._task = asyncio.create_task(self._follow(consumer), name="case-view")

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                if not batch:
                    continue
                for records in batch.values():
                    for record in records:
                        case_id = record.key.decode()
                        if record.value is None:
                            self.states.pop(case_id, None)
                            continue
                        try:
                            self.states[case_id] = CaseState.from_bytes(record.value)
                        except (ValueError, KeyError):
                            logger.warning("unreadable case state skipped offset=%d", record.offset)
                            continue
                        self.filed.pop(case_id, None)
                async with self.changed:
                    self.changed.notify_all()
        finally:
            await consumer.stop()

    async def wait_for(self, predicate: object, timeout_s: float) -> bool:
        """Wait until ``predicate()`` holds (for tests and the demo)."""
        check = predicate  # a callable taking no argument
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(check), timeout_s)  # type: ignore[arg-type]
            except TimeoutError:
                return False
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
