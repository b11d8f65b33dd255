"""Session fixtures for the real services the tests run against.

Each fixture starts its service the first time a test asks for it, keeps it for the rest of the
session and stops it at the end; a session that asks for none starts none. A service that cannot
start makes every test that needs it fail (an error in setup, with the reason), never skip.

- ``kafka_bootstrap`` -> ``"127.0.0.1:PORT"`` of a real Apache Kafka 4.x broker in KRaft mode
  (``tests/services/kafka.py``). Mark tests ``@pytest.mark.kafka``.
- ``postgis_dsn`` -> ``"postgresql://postgres@127.0.0.1:PORT/wayhome"`` of a PostgreSQL 15 with
  the ``postgis`` extension created (``tests/services/postgis.py``). Mark ``@pytest.mark.postgis``.
- ``tansu_bootstrap`` -> ``"127.0.0.1:PORT"`` of the embedded tansu broker
  (``dispatch.broker.EmbeddedBroker``). Mark ``@pytest.mark.tansu``.
- ``browser`` -> a Playwright **async API** ``Browser`` driving Debian's ``/usr/bin/chromium``
  headless (``tests/services/browser.py``), on the session's event loop; use it from
  ``async def`` tests: ``page = await browser.new_page(); await page.goto(url); ...;
  await page.close()``. Mark ``@pytest.mark.browser``. (A plain test that wants the sync API
  opens its own with ``tests.services.browser.running_chromium()`` and closes it before it ends.)
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from tests.services.process import ServiceError

if TYPE_CHECKING:
    from playwright.async_api import Browser


# Tests passed against each service fixture, for the line that says the service stopped: the
# CI log then shows that the real service was used, not only started. A test counts for a
# service when it names the fixture or carries the service's marker (tests that pick their
# store by parameter ask for the fixture at run time, so only the marker shows it).
_passed_with: Counter[str] = Counter()
_FIXTURE_OF_MARKER = {
    "kafka": "kafka_bootstrap",
    "postgis": "postgis_dsn",
    "tansu": "tansu_bootstrap",
    "browser": "browser",
}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call" and report.passed:
        used = set(getattr(item, "fixturenames", ()))
        used.update(
            fixture
            for marker, fixture in _FIXTURE_OF_MARKER.items()
            if item.get_closest_marker(marker) is not None
        )
        _passed_with.update(used)
    return report


def _used(fixture: str) -> str:
    count = _passed_with[fixture]
    return f"{count} test{'' if count == 1 else 's'} passed against it"


def _announce(config: pytest.Config, line: str) -> None:
    """Write a line to the terminal even when output is captured, so the CI log shows it."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    disabled = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with disabled:
        if reporter is not None:
            reporter.write("\n")
            reporter.write_line(line)
        else:
            print(line, flush=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """Bootstrap servers of a real Apache Kafka 4.x broker (KRaft, one node) on loopback."""
    from tests.services.kafka import start_kafka

    try:
        broker = start_kafka()
    except ServiceError as exc:
        pytest.fail(f"Apache Kafka could not start for the tests: {exc}", pytrace=False)
    _announce(
        request.config,
        f"Apache Kafka {broker.version} started on {broker.bootstrap_servers} "
        f"(KRaft, one node; ready in {broker.startup_s:.1f} s)",
    )
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()
        _announce(
            request.config,
            f"Apache Kafka {broker.version} stopped; {_used('kafka_bootstrap')}",
        )


@pytest.fixture(scope="session")
def postgis_dsn(request: pytest.FixtureRequest) -> Iterator[str]:
    """``postgresql://`` URL of a PostGIS database on a PostgreSQL 15 started for the tests."""
    from tests.services.postgis import PG_MAJOR, start_postgis

    try:
        server = start_postgis()
    except ServiceError as exc:
        pytest.fail(f"PostgreSQL + PostGIS could not start for the tests: {exc}", pytrace=False)
    _announce(
        request.config,
        f"PostgreSQL {PG_MAJOR} + PostGIS {server.postgis_version} started on "
        f"{server.host}:{server.port} (ready in {server.startup_s:.1f} s)",
    )
    try:
        yield server.dsn
    finally:
        server.stop()
        _announce(
            request.config, f"PostgreSQL {PG_MAJOR} + PostGIS stopped; {_used('postgis_dsn')}"
        )


@pytest.fixture(scope="session")
def tansu_bootstrap(request: pytest.FixtureRequest) -> Iterator[str]:
    """Bootstrap servers of the embedded tansu broker, on a free loopback port."""
    from dispatch.broker import BrokerError, EmbeddedBroker

    broker = EmbeddedBroker(port=0)
    try:
        broker.start()
    except BrokerError as exc:
        pytest.fail(
            f"The embedded tansu broker could not start for the tests: {exc}", pytrace=False
        )
    _announce(request.config, f"Embedded tansu broker started on {broker.bootstrap_servers}")
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()
        _announce(request.config, f"Embedded tansu broker stopped; {_used('tansu_bootstrap')}")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(request: pytest.FixtureRequest) -> AsyncIterator[Browser]:
    """Headless Debian Chromium (Playwright async API); tests using it are ``async def``."""
    from tests.services.browser import launched_chromium

    async with contextlib.AsyncExitStack() as stack:
        try:
            chromium = await stack.enter_async_context(launched_chromium())
        except ServiceError as exc:
            pytest.fail(f"Chromium could not start for the tests: {exc}", pytrace=False)
        _announce(request.config, f"Chromium {chromium.version} started (headless, Playwright)")
        try:
            yield chromium
        finally:
            _announce(request.config, f"Chromium stopped; {_used('browser')}")
