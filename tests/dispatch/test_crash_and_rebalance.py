"""Exactly-once effect on Apache Kafka: a dispatcher killed mid-tick, and two rebalancing.

The crash test kills a dispatcher process with SIGKILL while its first tick's transaction is
open (its first batches are already on the topic, uncommitted), restarts it under the same
worker id, and checks that the committed notices reach every subscriber inside exactly once.
The rebalance test runs two workers in one process over several cases, the second joining
while cases tick, and checks the same for every case, then that each Cancel goes to exactly
the alerted set. Both then feed the committed dispatch records to a log and verify it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import shapely

from chain import Ledger
from chain.entries import parse_entry
from chain.verify import verify_store
from dispatch.clock import ManualClock
from dispatch.dispatcher import Dispatcher, DispatcherConfig
from dispatch.events import CaseResolved
from dispatch.recorder import Recorder
from dispatch.topics import Topics, ensure_topics
from tests.dispatch.harness import START, eventually, prefix
from tests.dispatch.kafka_io import (
    NoticeReader,
    devices_around,
    produce_case_events,
    produce_subscribers,
    report_event,
)

pytestmark = pytest.mark.kafka

ZZ = (34.7466, 113.6254)


async def _record_and_verify(
    bootstrap: str, topics: Topics, tmp_path: Path, expected: int, expected_lifecycle: int
) -> list[dict]:
    """Run a recorder over the committed records of ``dispatches``; verify the log; its records.

    ``expected`` dispatch entries and ``expected_lifecycle`` entries of cases' changes.
    """
    ledger = Ledger.init(tmp_path / "ledger", origin="test.local/wayhome", batch_size=64)
    recorder = Recorder(
        bootstrap, topics.dispatches, ledger, group_id=f"{topics.prefix}rec", fetch_max_wait_ms=50
    )
    await recorder.start()
    try:
        await eventually(
            lambda: (
                recorder.appended >= expected and recorder.lifecycle_appended >= expected_lifecycle
            ),
            what="the dispatch and lifecycle records",
        )
        await asyncio.sleep(0.5)  # nothing more arrives
    finally:
        await recorder.stop()
    report = verify_store(ledger.store)
    records = [parse_entry(e).record for e in ledger.entries(0, ledger.size)]
    assert report.entries == len(records)
    ledger.close()
    return records


async def test_a_dispatcher_killed_mid_tick_and_restarted_alerts_everyone_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = Topics(prefix())
    await ensure_topics(kafka_bootstrap, topics, partitions=2)
    subscribers = devices_around(*ZZ, n=20_000, spread_deg=0.4)
    await produce_subscribers(kafka_bootstrap, topics, subscribers)

    command = [
        sys.executable,
        "-m",
        "tests.dispatch.dispatcher_process",
        kafka_bootstrap,
        topics.prefix,
        "crash-worker",
        "10",
    ]

    def start_worker() -> subprocess.Popen[str]:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=Path(__file__).parents[2],
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        return process

    first = await asyncio.to_thread(start_worker)
    everything = await NoticeReader(kafka_bootstrap, topics.notices, committed=False).start()
    committed = await NoticeReader(kafka_bootstrap, topics.notices, committed=True).start()
    second = None
    try:
        now = datetime.now(UTC)
        event = report_event("c-crash", *ZZ, now - timedelta(minutes=20), now)
        await produce_case_events(kafka_bootstrap, topics, [event])

        # Kill -9 as soon as the first batch of the tick is on the topic, uncommitted.
        for _ in range(600):
            if await everything.poll(50):
                break
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        seen_at_kill = len(everything.batches)
        await committed.poll(500)
        assert len(committed.batches) == 0, "the kill came after the tick had committed"

        second = await asyncio.to_thread(start_worker)
        everyone = {s["id"] for s in subscribers}
        for _ in range(300):
            await committed.poll(200)
            if sum(committed.recipients("c-crash", "Alert").values()) >= len(everyone):
                break
        alerts = committed.recipients("c-crash", "Alert")
        assert set(alerts) == everyone, f"missing {len(everyone - set(alerts))} subscribers"
        assert set(alerts.values()) == {1}, "a subscriber was alerted twice"
        assert seen_at_kill >= 1, "the killed tick had put batches on the topic (uncommitted)"
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
        await everything.stop()
        await committed.stop()

    # The case opened once and dispatched once, though its first transaction was aborted.
    records = await _record_and_verify(
        kafka_bootstrap, topics, tmp_path, expected=1, expected_lifecycle=1
    )
    assert [r["kind"] for r in records] == ["case_opened", "dispatch"]
    assert records[0]["case"] == "c-crash"
    assert (records[1]["case"], records[1]["tick"], records[1]["recipients"]["count"]) == (
        "c-crash",
        0,
        20_000,
    )


async def test_two_dispatchers_rebalancing_mid_case_alert_and_cancel_exactly_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = Topics(prefix())
    await ensure_topics(kafka_bootstrap, topics, partitions=4)
    cities = {
        "zz": ZZ,
        "wh": (30.5928, 114.3055),
        "xa": (34.3416, 108.9398),
        "cs": (28.2282, 112.9388),
        "hf": (31.8206, 117.2272),
        "jn": (36.6512, 117.1201),
    }
    subscribers = []
    for seed, (lat, lon) in enumerate(cities.values()):
        subscribers += devices_around(lat, lon, n=400, spread_deg=2.0, seed=seed)
    await produce_subscribers(kafka_bootstrap, topics, subscribers)

    clock = ManualClock(START)

    def worker(name: str) -> Dispatcher:
        return Dispatcher(
            DispatcherConfig(
                bootstrap_servers=kafka_bootstrap,
                topics=topics,
                worker_id=name,
                group_id=f"{topics.prefix}dispatch",
                exactly_once=True,
                batch_size=50,
                fetch_max_wait_ms=50,
                transaction_timeout_ms=10_000,
            ),
            clock,
        )

    first, second = worker("rebalance-a"), worker("rebalance-b")
    reader = await NoticeReader(kafka_bootstrap, topics.notices).start()
    try:
        await first.start()
        events = [
            report_event(f"c-{name}", lat, lon, START - timedelta(minutes=30), START)
            for name, (lat, lon) in cities.items()
        ]
        await produce_case_events(kafka_bootstrap, topics, events)
        await eventually(
            lambda: (
                len(first.cases) == len(cities) and all(s.tick == 0 for s in first.cases.values())
            ),
            what="the first ticks",
        )

        # The second worker joins while the cases tick on.
        clock.advance(timedelta(minutes=31))
        await second.start()
        await eventually(
            lambda: (
                first._owned
                and second._owned  # noqa: SLF001
                and len(first.cases) + len(second.cases) == len(cities)
                and not first._pending_restore
                and not second._pending_restore
            ),  # noqa: SLF001
            what="the rebalance",
        )
        clock.advance(timedelta(minutes=60))
        await eventually(
            lambda: all(
                s.tick >= 2 and s.last_tick_at == clock.now()
                for w in (first, second)
                for s in w.cases.values()
            ),
            what="the ticks after the rebalance",
        )

        await produce_case_events(
            kafka_bootstrap,
            topics,
            [
                CaseResolved(case_id=f"c-{name}", outcome="found", resolved_at=clock.now())
                for name in cities
            ],
        )
        await eventually(
            lambda: (
                all(s.status == "resolved" for w in (first, second) for s in w.cases.values())
                and len(first.cases) + len(second.cases) == len(cities)
            ),
            what="the cancels",
        )
        last_areas = {cid: s.previous_area for w in (first, second) for cid, s in w.cases.items()}
    finally:
        await second.stop()
        await first.stop()

    for _ in range(20):
        await reader.poll(200)
    await reader.stop()

    lats = np.array([s["lat"] for s in subscribers])
    lons = np.array([s["lon"] for s in subscribers])
    ids = np.array([s["id"] for s in subscribers])
    for name in cities:
        case_id = f"c-{name}"
        alerts = reader.recipients(case_id, "Alert")
        cancels = reader.recipients(case_id, "Cancel")
        assert set(alerts.values()) <= {1}, f"{case_id}: a subscriber was alerted twice"
        inside = set(ids[shapely.contains_xy(last_areas[case_id], lons, lats)].tolist())
        assert inside <= set(alerts), f"{case_id}: {len(inside - set(alerts))} inside not alerted"
        assert cancels == alerts, f"{case_id}: the Cancel did not go to exactly the alerted"

    # Four dispatches a case: the first tick, one at +31 min, one at +91 min, the Cancel.
    # and each case opened and resolved once in the log.
    records = await _record_and_verify(
        kafka_bootstrap, topics, tmp_path, expected=4 * len(cities), expected_lifecycle=12
    )
    keys = sorted((r["case"], r["tick"]) for r in records if r["kind"] == "dispatch")
    assert keys == sorted((f"c-{name}", tick) for name in cities for tick in range(4))
    changes = sorted((r["case"], r["kind"]) for r in records if r["kind"] != "dispatch")
    assert changes == sorted(
        (f"c-{name}", kind) for name in cities for kind in ("case_opened", "resolution")
    )
