"""A delivery worker killed with SIGKILL mid-batch and restarted delivers every notice once.

The worker runs in a subprocess against the real Kafka broker and a real webhook receiver.
After the restart, every (notice, subscriber) pair has reached the receiver, and the only
deliveries sent twice are those that were on the wire when the worker died (at most the
worker's concurrency): each carries the same ``webhook-id`` both times, so a receiver that
dedupes on it, as Standard Webhooks receivers do, sees every notice exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dispatch.notices.delivery import dead_letter_topic, notices_topic
from dispatch.notices.store import SqliteDeliveryStore
from tests.dispatch.notices.builders import notice_batch, webhook_recipients
from tests.dispatch.notices.kafka_helpers import create_topics, produce, unique_prefix
from tests.dispatch.notices.receiver import Receiver, ReceiverServer

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

WORKER = Path(__file__).with_name("worker_process.py")
CONCURRENCY = 8
BATCHES = 6
PER_BATCH = 100


def start_worker(bootstrap: str, prefix: str, store: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "WAYHOME_TEST_BOOTSTRAP": bootstrap,
        "WAYHOME_TEST_PREFIX": prefix,
        "WAYHOME_TEST_STORE": str(store),
        "WAYHOME_TEST_CONCURRENCY": str(CONCURRENCY),
    }
    return subprocess.Popen([sys.executable, str(WORKER)], env=env)


async def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_worker_killed_mid_batch_and_restarted_delivers_every_notice_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = unique_prefix()
    await create_topics(kafka_bootstrap, {notices_topic(prefix): 3, dead_letter_topic(prefix): 1})
    store_path = tmp_path / "deliveries.sqlite3"

    with ReceiverServer(Receiver(delay_s=0.004)) as receiver:
        batches = [
            notice_batch(
                webhook_recipients(receiver.url, PER_BATCH, prefix=f"b{b}"), tick=b, case_id=f"c{b}"
            )
            for b in range(BATCHES)
        ]
        expected = {b.delivery_id(r) for b in batches for r in b.recipients}
        for batch in batches:
            await produce(
                kafka_bootstrap, notices_topic(prefix), [batch.to_bytes()], batch.case_id.encode()
            )

        # (1) Kill the first worker with SIGKILL once about a third of the notices arrived.
        first = start_worker(kafka_bootstrap, prefix, store_path)
        try:
            await wait_for(lambda: len(receiver.accepted) >= len(expected) // 3, 90, "a third")
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        at_kill = len(receiver.accepted_ids())
        assert at_kill < len(expected), "the worker finished before it could be killed"

        # (2) A new worker takes over the same group and finishes the work.
        second = start_worker(kafka_bootstrap, prefix, store_path)
        try:
            await wait_for(lambda: receiver.accepted_ids() == expected, 120, "every notice")
            await asyncio.sleep(1.0)  # room for any stray resend to show up
        finally:
            second.send_signal(signal.SIGKILL)
            second.wait(10)

    with receiver.lock:
        duplicates = sum(count - 1 for count in receiver.accepted.values())
        ids = set(receiver.accepted)
    assert ids == expected
    assert duplicates <= CONCURRENCY, f"{duplicates} resent, more than were in flight"

    store = SqliteDeliveryStore(store_path)
    try:
        assert store.settled(sorted(expected)) == expected
    finally:
        store.close()
