"""A service that cannot start says why, in a sentence that names what would fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.broker import BrokerError, EmbeddedBroker, tansu_binary
from tests.services.browser import chromium_path
from tests.services.kafka import kafka_version
from tests.services.postgis import pg_bindir
from tests.services.process import ServiceError


def test_a_missing_postgresql_install_names_the_debian_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WAYHOME_TEST_PG_BINDIR", str(tmp_path))
    with pytest.raises(ServiceError, match="install the Debian package postgresql-15"):
        pg_bindir()


def test_a_missing_chromium_names_the_debian_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WAYHOME_TEST_CHROMIUM", str(tmp_path / "chromium"))
    with pytest.raises(ServiceError, match="install the Debian package chromium"):
        chromium_path()


def test_the_kafka_version_comes_from_the_pom() -> None:
    assert kafka_version().startswith("4.")


def test_a_tansu_override_that_is_not_executable_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    not_a_binary = tmp_path / "tansu"
    not_a_binary.write_text("")
    monkeypatch.setenv("WAYHOME_TANSU_BIN", str(not_a_binary))
    with pytest.raises(BrokerError, match="must name an executable tansu binary"):
        tansu_binary()


def test_a_broker_that_exits_at_once_is_reported_with_its_output(tmp_path: Path) -> None:
    broker_that_fails = tmp_path / "tansu"
    broker_that_fails.write_text("#!/bin/sh\necho 'no storage engine here' >&2\nexit 3\n")
    broker_that_fails.chmod(0o755)
    broker = EmbeddedBroker(port=0, binary=broker_that_fails)
    with pytest.raises(BrokerError, match="exited with code 3.*no storage engine here"):
        broker.start()
    assert not broker.running
