"""A dispatcher worker in a process of its own, for the crash test (kill -9, then restart).

Usage: ``python -m tests.dispatch.dispatcher_process BOOTSTRAP PREFIX WORKER_ID BATCH_SIZE``.
Prints ``ready`` once it has caught up with the subscribers and joined the group, then runs
until killed. It uses the wall clock.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from dispatch.clock import SystemClock
from dispatch.dispatcher import Dispatcher, DispatcherConfig
from dispatch.topics import Topics


async def main(bootstrap: str, prefix: str, worker_id: str, batch_size: int) -> None:
    config = DispatcherConfig(
        bootstrap_servers=bootstrap,
        topics=Topics(prefix),
        worker_id=worker_id,
        group_id=f"{prefix}dispatch",
        exactly_once=True,
        batch_size=batch_size,
        fetch_max_wait_ms=50,
        transaction_timeout_ms=10_000,
    )
    dispatcher = Dispatcher(config, SystemClock())
    await dispatcher.start()
    print("ready", flush=True)
    await dispatcher.wait_failed()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
