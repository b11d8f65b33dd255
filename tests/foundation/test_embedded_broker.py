"""The embedded broker: tansu started, used through Kafka clients, and stopped cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from dispatch.broker import BrokerError, EmbeddedBroker
from tests.services.process import free_loopback_port, port_is_open, stop_process

pytestmark = pytest.mark.tansu

_REPO_ROOT = Path(__file__).resolve().parents[2]
_WAYHOME_MAIN = "from dispatch.cli import main; main()"


async def _round_trip(bootstrap: str, payloads: list[bytes]) -> list[bytes]:
    """Produce ``payloads`` to a new topic and read them back through a consumer group."""
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for payload in payloads:
            await producer.send_and_wait(topic, payload, key=b"one-partition")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"group-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    seen: list[bytes] = []
    try:
        for _ in range(60):
            batches = await consumer.getmany(timeout_ms=500)
            seen.extend(r.value for rs in batches.values() for r in rs if r.value is not None)
            if len(seen) >= len(payloads):
                break
    finally:
        await consumer.stop()
    return seen


def _wait_for_port(port: int, is_open: bool, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_is_open("127.0.0.1", port) is is_open:
            return True
        time.sleep(0.1)
    return False


async def test_async_context_manager_serves_kafka_clients_and_frees_the_port() -> None:
    async with EmbeddedBroker(port=0) as broker:
        assert broker.running
        port = broker.port
        assert await _round_trip(broker.bootstrap_servers, [b"one", b"two"]) == [b"one", b"two"]
    assert not broker.running
    assert not port_is_open("127.0.0.1", port)


def test_context_manager_starts_on_the_given_port_and_stops_the_process() -> None:
    port = free_loopback_port()
    with EmbeddedBroker(port=port) as broker:
        pid = broker.pid
        assert pid is not None
        assert broker.bootstrap_servers == f"127.0.0.1:{port}"
        assert port_is_open("127.0.0.1", port)
    assert broker.pid is None
    assert not port_is_open("127.0.0.1", port)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_a_port_in_use_is_refused_with_a_sentence_naming_it() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BrokerError, match=f"port {port} on 127.0.0.1 is in use already"):
            EmbeddedBroker(port=port).start()


def test_a_port_out_of_range_is_refused() -> None:
    with pytest.raises(BrokerError, match="within 0..65535, got 70000"):
        EmbeddedBroker(port=70000)


async def test_session_fixture_broker_serves_a_consumer_group(tansu_bootstrap: str) -> None:
    assert await _round_trip(tansu_bootstrap, [b"a", b"b", b"c"]) == [b"a", b"b", b"c"]


def test_wayhome_console_script_lists_the_broker_command() -> None:
    wayhome = shutil.which("wayhome")
    assert wayhome is not None, "the wayhome console script must be installed (pip install -e .)"
    result = subprocess.run([wayhome, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "broker" in result.stdout


async def test_wayhome_broker_command_serves_clients_and_exits_zero_on_ctrl_c() -> None:
    # The command tree of this checkout, run as the console script runs it.
    port = free_loopback_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _WAYHOME_MAIN, "broker", "--port", str(port)],
        cwd=_REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert _wait_for_port(port, is_open=True), "wayhome broker did not open its port"
        assert await _round_trip(f"127.0.0.1:{port}", [b"via-cli"]) == [b"via-cli"]

        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        output = process.stdout.read().decode() if process.stdout else ""
    finally:
        stop_process(process)
    assert code == 0, output
    assert f"listening on 127.0.0.1:{port}" in output
    assert "stopped" in output
    assert _wait_for_port(port, is_open=False), "the broker's port stayed open after Ctrl-C"


def test_wayhome_broker_command_on_a_taken_port_exits_one_with_a_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-c", _WAYHOME_MAIN, "broker", "--port", str(port)],
            cwd=_REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use already" in result.stdout
