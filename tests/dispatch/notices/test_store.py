"""The delivery store, SQLite and PostgreSQL, through the same tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatch.notices import DedupeStoreError
from dispatch.notices.store import (
    DeliveryStore,
    PostgresDeliveryStore,
    SqliteDeliveryStore,
    open_delivery_store,
)


@pytest.fixture(
    params=[
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgis),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeliveryStore]:
    if request.param == "sqlite":
        opened: DeliveryStore = SqliteDeliveryStore(tmp_path / "deliveries.sqlite3")
    else:
        dsn = request.getfixturevalue("postgis_dsn")
        opened = PostgresDeliveryStore(dsn, table=f"deliveries_{uuid.uuid4().hex[:8]}")
    yield opened
    opened.close()


def test_only_recorded_deliveries_are_settled(store: DeliveryStore) -> None:
    store.record([("a", "delivered"), ("b", "dead")])
    assert store.settled(["a", "b", "c"]) == {"a", "b"}
    assert store.settled([]) == set()


def test_a_delivery_recorded_twice_keeps_its_first_outcome(store: DeliveryStore) -> None:
    store.record([("a", "dead")])
    store.record([("a", "delivered"), ("a", "delivered")])
    assert store.outcome("a") == "dead"


def test_more_ids_than_one_query_holds_are_looked_up(store: DeliveryStore) -> None:
    ids = [f"ntc_{i:05d}" for i in range(1_200)]
    store.record((i, "delivered") for i in ids[::2])
    assert store.settled(ids) == set(ids[::2])


def test_the_sqlite_store_survives_reopening(tmp_path: Path) -> None:
    first = SqliteDeliveryStore(tmp_path / "d.sqlite3")
    first.record([("a", "delivered")])
    first.close()
    again = SqliteDeliveryStore(tmp_path / "d.sqlite3")
    assert again.settled(["a"]) == {"a"}
    again.close()


def test_a_store_that_cannot_be_created_says_where(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DedupeStoreError, match="cannot open the delivery store at"):
        SqliteDeliveryStore(blocker / "sub" / "d.sqlite3")


def test_a_database_url_that_is_not_postgresql_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DedupeStoreError, match="must be a postgresql:// URL, got a mysql: one"):
        open_delivery_store("mysql://x", tmp_path)


def test_without_a_database_url_the_store_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    store = open_delivery_store(None, tmp_path)
    assert isinstance(store, SqliteDeliveryStore)
    assert store.path == tmp_path / "deliveries.sqlite3"
    store.close()
