"""A delivery worker in a process of its own, for the crash test: killed and restarted there.

Arguments come from the environment: WAYHOME_TEST_BOOTSTRAP, WAYHOME_TEST_PREFIX,
WAYHOME_TEST_STORE (SQLite path), WAYHOME_TEST_CONCURRENCY.
"""

from __future__ import annotations

import asyncio
import os

from dispatch.notices.delivery import run_delivery_worker
from dispatch.notices.signing import derived_secrets
from dispatch.notices.store import SqliteDeliveryStore

MASTER_KEY = b"crash-test-master-key-0123456789"


async def main() -> None:
    store = SqliteDeliveryStore(os.environ["WAYHOME_TEST_STORE"])
    prefix = os.environ["WAYHOME_TEST_PREFIX"]
    await run_delivery_worker(
        bootstrap_servers=os.environ["WAYHOME_TEST_BOOTSTRAP"],
        store=store,
        secrets=derived_secrets(MASTER_KEY),
        topic_prefix=prefix,
        group_id=f"{prefix}delivery",
        concurrency=int(os.environ["WAYHOME_TEST_CONCURRENCY"]),
        flush_interval_ms=0,
    )


if __name__ == "__main__":
    asyncio.run(main())
