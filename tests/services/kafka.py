"""A real Apache Kafka broker for the tests: one KRaft node, broker and controller in one JVM.

The broker is ``org.apache.kafka:kafka_2.13`` (the version pinned in ``kafka-pom.xml`` beside
this file) with its runtime dependencies, fetched by Maven into a cache outside the repository
(``~/.cache/wayhome/kafka-<version>/``, or ``$WAYHOME_TEST_CACHE/kafka-<version>/``) and run with
the machine's Java 17: ``java -cp '<cache>/*' kafka.Kafka server.properties``. Its storage is
formatted (``kafka.tools.StorageTool format --standalone``) in a temporary directory, it listens
on two loopback ports chosen at run time (clients, controller), and it counts as ready once a
Kafka client has created a topic on it. Stopping it kills the JVM and removes the directory.

Run ``python -m tests.services.kafka`` to fetch the jars ahead of time (``scripts/install`` does).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.services.process import (
    ServiceError,
    free_loopback_port,
    port_is_open,
    stop_process,
    tail,
    tied_to_this_thread,
)

log = logging.getLogger(__name__)

POM_PATH = Path(__file__).with_name("kafka-pom.xml")
START_TIMEOUT_S = 60.0
# Small heap; C1 only and the serial collector: on two shared cores this halves the start-up
# (about 8 s instead of 15 s here), and the tests' traffic never needs C2's peak speed.
JVM_OPTIONS = [
    "-Xms256m",
    "-Xmx768m",
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseSerialGC",
    "-Djava.awt.headless=true",
]

_LOG4J2_YAML = """\
Configuration:
  Appenders:
    File:
      name: file
      fileName: "{log_path}"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: file
"""


def kafka_version() -> str:
    """The Kafka version pinned in ``kafka-pom.xml``."""
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ElementTree.parse(POM_PATH).getroot().find("m:properties/m:kafka.version", namespace)
    if node is None or not node.text:
        raise ServiceError(f"{POM_PATH} must set the property kafka.version, and it does not.")
    return node.text.strip()


def cache_root() -> Path:
    """Where fetched service files are kept, outside the repository."""
    override = os.environ.get("WAYHOME_TEST_CACHE")
    return Path(override) if override else Path.home() / ".cache" / "wayhome"


def fetch_kafka_jars(version: str | None = None) -> Path:
    """The directory holding Kafka's jars, fetching them with Maven first if they are missing.

    Safe to call from several processes at once: a lock file serialises the fetch, and the
    jars land in a temporary directory renamed into place only when Maven has finished.
    """
    version = version or kafka_version()
    root = cache_root()
    target = root / f"kafka-{version}"
    if (target / ".complete").exists():
        return target
    root.mkdir(parents=True, exist_ok=True)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError(
            "Maven (mvn) is needed to fetch Apache Kafka's jars and is not on PATH; "
            "run scripts/install or install the Debian package maven."
        )
    with open(root / f".kafka-{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".kafka-{version}-", dir=root))
        command = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM_PATH),
            f"-Dkafka.version={version}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        log.info("fetching Apache Kafka %s jars into %s", version, target)
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not any(staging.glob(f"kafka_2.13-{version}.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            raise ServiceError(
                f"Maven could not fetch Apache Kafka {version} (exit {result.returncode}): "
                f"{(result.stdout + result.stderr).strip()[-2000:]}"
            )
        (staging / ".complete").write_text(version + "\n")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise ServiceError("Java 17 or newer is needed to run Apache Kafka and is not on PATH.")
    return java


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in unpadded URL-safe base64, like Kafka's own."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")


@dataclass
class KafkaBroker:
    """A running single-node Apache Kafka broker."""

    version: str
    host: str
    port: int
    controller_port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    startup_s: float = 0.0

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The broker's own log file."""
        return self.workdir / "server.log"

    def stop(self) -> None:
        """Kill the JVM and remove the broker's directory."""
        stop_process(self.process, grace_s=20.0)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _server_properties(host: str, port: int, controller_port: int, data_dir: Path) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "3",
        "default.replication.factor": "1",
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "5",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


async def _create_probe_topic(bootstrap_servers: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
    await admin.start()
    try:
        name = f"wayhome-ready-{uuid.uuid4().hex[:8]}"
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
        await admin.delete_topics([name])
    finally:
        await admin.close()


def _probe(bootstrap_servers: str) -> bool:
    """Whether a client can create (and delete) a topic; run in a thread of its own."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(asyncio.run, _create_probe_topic(bootstrap_servers))
        try:
            future.result(timeout=15)
        except Exception as exc:  # any client error just means "not ready yet"
            log.debug("Kafka not ready yet: %s", exc)
            return False
    return True


def start_kafka(version: str | None = None, host: str = "127.0.0.1") -> KafkaBroker:
    """Fetch (if needed), format and start a broker; return once a client can create a topic."""
    version = version or kafka_version()
    jars = fetch_kafka_jars(version)
    java = _java()
    workdir = Path(tempfile.mkdtemp(prefix="wayhome-kafka-"))
    data_dir = workdir / "data"
    port, controller_port = free_loopback_port(), free_loopback_port()
    while controller_port == port:
        controller_port = free_loopback_port()
    properties = workdir / "server.properties"
    properties.write_text(_server_properties(host, port, controller_port, data_dir))
    log4j = workdir / "log4j2.yaml"
    log4j.write_text(_LOG4J2_YAML.format(log_path=workdir / "server.log"))
    base = [java, *JVM_OPTIONS, f"-Dlog4j2.configurationFile={log4j}", "-cp", f"{jars}/*"]

    formatted = subprocess.run(
        [*base, "kafka.tools.StorageTool", "format", "--standalone"]
        + [f"--cluster-id={_cluster_id()}", f"--config={properties}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if formatted.returncode != 0:
        shutil.rmtree(workdir, ignore_errors=True)
        raise ServiceError(
            f"Kafka's storage tool could not format {data_dir} (exit {formatted.returncode}): "
            f"{(formatted.stdout + formatted.stderr).strip()[-2000:]}"
        )

    with open(workdir / "stdout.log", "wb") as stdout:
        process = subprocess.Popen(
            tied_to_this_thread([*base, "kafka.Kafka", str(properties)]),
            stdout=stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    broker = KafkaBroker(version, host, port, controller_port, workdir, process)
    started = time.monotonic()
    try:
        while True:
            if process.poll() is not None:
                raise ServiceError(
                    f"Apache Kafka {version} exited with code {process.returncode} while "
                    f"starting; its log ends with:\n{tail(broker.log_path)}\n"
                    f"{tail(workdir / 'stdout.log', 10)}"
                )
            # Knock first: a client trying a closed port only logs errors.
            if port_is_open(host, port) and _probe(broker.bootstrap_servers):
                break
            if time.monotonic() - started > START_TIMEOUT_S:
                raise ServiceError(
                    f"Apache Kafka {version} did not accept a topic within "
                    f"{START_TIMEOUT_S:.0f} s on {broker.bootstrap_servers}; its log ends "
                    f"with:\n{tail(broker.log_path)}"
                )
            time.sleep(0.5)
    except BaseException:
        broker.stop()
        raise
    broker.startup_s = time.monotonic() - started
    log.info("Apache Kafka %s started on %s in %.1f s", version, port, broker.startup_s)
    return broker


@contextlib.contextmanager
def running_kafka(version: str | None = None) -> Iterator[KafkaBroker]:
    """A broker for the length of a ``with`` block."""
    broker = start_kafka(version)
    try:
        yield broker
    finally:
        broker.stop()


if __name__ == "__main__":
    print(f"Apache Kafka {kafka_version()} jars in {fetch_kafka_jars()}")
