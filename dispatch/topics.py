"""Kafka topics: their names under the configured prefix, and creating them.

| topic              | key           | carries                                                   |
|--------------------|---------------|-----------------------------------------------------------|
| ``cases``          | case id       | case reported, sighting added, perimeter set, resolved    |
| ``cases.dead``     | as read       | case events that could not be read, reason in a header    |
| ``subscribers``    | subscriber id | subscriber upserted; tombstone on delete. Compacted.      |
| ``subscribers.dead`` | as read     | subscriber events that could not be read                  |
| ``notices``        | case id       | notice batches (a notice and its recipients)              |
| ``notices.dead``   | subscriber id | notices that could not be delivered (delivery's)          |
| ``dispatch.state`` | case id       | the dispatcher's per-case state. Compacted.               |
| ``dispatches``     | case id       | one record per dispatch, for the log's sequencer          |
| ``ledger``         | —             | log entries and checkpoints, for replicas and witnesses   |

``dispatch.state`` has as many partitions as ``cases``, and a case's state lives in the partition
of the same number as its events: the worker that owns a ``cases`` partition restores exactly
the states of that partition when it is assigned it.

``subscribers`` is keyed by subscriber id here; partitioning it by coarse cell, so that each
worker holds the index of its cells only, is the way past one machine and is not done yet:
today every dispatcher reads the whole topic.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

logger = logging.getLogger(__name__)

DEAD_REASON_HEADER = "wayhome_dead_reason"


@dataclass(frozen=True)
class Topics:
    """The topic names under one prefix."""

    prefix: str = "wayhome."

    @property
    def cases(self) -> str:
        return f"{self.prefix}cases"

    @property
    def cases_dead(self) -> str:
        return f"{self.prefix}cases.dead"

    @property
    def subscribers(self) -> str:
        return f"{self.prefix}subscribers"

    @property
    def subscribers_dead(self) -> str:
        return f"{self.prefix}subscribers.dead"

    @property
    def notices(self) -> str:
        return f"{self.prefix}notices"

    @property
    def notices_dead(self) -> str:
        return f"{self.prefix}notices.dead"

    @property
    def state(self) -> str:
        return f"{self.prefix}dispatch.state"

    @property
    def dispatches(self) -> str:
        return f"{self.prefix}dispatches"

    @property
    def ledger(self) -> str:
        return f"{self.prefix}ledger"

    def dead_letter_of(self, topic: str) -> str:
        """The dead-letter topic of ``topic``."""
        return f"{topic}.dead"

    def all(self) -> dict[str, bool]:
        """Every topic wayhome uses, mapped to whether it is compacted."""
        return {
            self.cases: False,
            self.cases_dead: False,
            self.subscribers: True,
            self.subscribers_dead: False,
            self.notices: False,
            self.notices_dead: False,
            self.state: True,
            self.dispatches: False,
            self.ledger: False,
        }


async def ensure_topics(
    bootstrap_servers: str, topics: Topics, *, partitions: int, replication_factor: int = 1
) -> None:
    """Create every topic that does not exist yet (existing ones are left as they are)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=name,
                num_partitions=partitions,
                replication_factor=replication_factor,
                topic_configs={"cleanup.policy": "compact"} if compacted else {},
            )
            for name, compacted in topics.all().items()
            if name not in existing
        ]
        if not wanted:
            return
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(wanted)
        logger.info("topics created count=%d prefix=%s", len(wanted), topics.prefix)
    finally:
        await admin.close()
