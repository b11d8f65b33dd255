"""Retention and shredding: resolved cases lose their private fields, the log keeps its proofs.

Runs one service on the embedded broker with a manual clock for the whole module; time is
moved by days with ``advance`` and the retention sweep is called directly, never slept for.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from chain.entries import parse_entry
from chain.verify import verify_store
from dispatch.cases import CaseState
from dispatch.clock import ManualClock
from dispatch.errors import Shredded
from dispatch.retention import past_retention
from dispatch.service import Service
from dispatch.settings import Settings
from tests.dispatch.harness import START, ZHENGZHOU, case_body, eventually, prefix
from tests.dispatch.kafka_io import report_event

pytestmark = pytest.mark.tansu


def _state(case_id: str, status: str, resolved_days_ago: float | None) -> CaseState:
    event = report_event(case_id, *ZHENGZHOU, START - timedelta(days=60), START)
    state = CaseState.reported(event, 0, START)
    state.status = status  # type: ignore[assignment]
    if resolved_days_ago is not None:
        state.resolved_at = START - timedelta(days=resolved_days_ago)
    return state


def test_retention_picks_exactly_the_cases_resolved_at_least_that_long_ago() -> None:
    states = [
        _state("old", "resolved", 31),
        _state("exact", "resolved", 30),
        _state("recent", "resolved", 29.9),
        _state("open", "open", None),
        _state("failed", "failed", None),
        _state("resolving", "resolving", 40),
    ]
    assert past_retention(states, START, 30) == ["old", "exact"]
    assert past_retention(states, START, 0) == ["old", "exact", "recent"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def retained(
    tansu_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Any]:
    data_dir: Path = tmp_path_factory.mktemp("retention")
    settings = Settings(
        KAFKA_BOOTSTRAP_SERVERS=tansu_bootstrap,
        data_dir=data_dir,
        topic_prefix=prefix(),
        partitions=1,
        fetch_max_wait_ms=50,
        delivery_guarantee="at_least_once",
        worker_id="retention-tests",
        retention_days=30,
    )
    clock = ManualClock(START)
    service = await Service(settings, clock, run_delivery=False).start()
    assert service.tokens is not None and service.app is not None
    tokens = {role: service.tokens.create(role) for role in ("police", "analyst")}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app), base_url="http://wayhome"
    ) as client:
        yield client, tokens, service, clock
    await service.stop()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _file(client: httpx.AsyncClient, police: str, case_id: str) -> str:
    response = await client.post("/v1/cases", headers=_auth(police), json=case_body(case_id))
    assert response.status_code == 201, response.text
    summary = await client.get(f"/v1/cases/{case_id}", headers=_auth(police))
    commitment: str = summary.json()["private_commitment"]
    return commitment


async def _resolve(client: httpx.AsyncClient, police: str, service: Service, case_id: str) -> None:
    await eventually(lambda: _status(service, case_id) == "open", what=f"{case_id} dispatched")
    response = await client.post(
        f"/v1/cases/{case_id}/resolution", headers=_auth(police), json={"outcome": "found"}
    )
    assert response.status_code == 202, response.text
    await eventually(lambda: _status(service, case_id) == "resolved", what=f"{case_id} resolved")


def _status(service: Service, case_id: str) -> str | None:
    assert service.view is not None
    state = service.view.get(case_id)
    return state.status if state is not None else None


def _opened_subjects(service: Service) -> dict[str, str]:
    """The hex commitment of each case_opened entry of the log, by case."""
    service.ledger.flush()
    records = [parse_entry(e).record for e in service.ledger.entries(0, service.ledger.size)]
    return {
        r["case"]: base64.b64decode(r["subject"]).hex()
        for r in records
        if r["kind"] == "case_opened"
    }


async def test_retention_shreds_the_cases_resolved_longer_ago_and_the_log_still_verifies(
    retained: Any,
) -> None:
    client, tokens, service, clock = retained
    police = tokens["police"]
    committed = {case_id: await _file(client, police, case_id) for case_id in ("r-1", "r-2", "r-3")}
    await _resolve(client, police, service, "r-1")
    clock.advance(timedelta(days=10))
    await _resolve(client, police, service, "r-2")
    await eventually(lambda: len(_opened_subjects(service)) == 3, what="the case_opened entries")

    # r-1 was resolved 30 days ago, r-2 20 days ago; r-3 is still open.
    clock.advance(timedelta(days=20))
    service.shred_expired()
    vault = service.vault
    assert vault is not None
    assert [vault.status(c) for c in ("r-1", "r-2", "r-3")] == ["shredded", "sealed", "sealed"]
    with pytest.raises(Shredded, match="cannot be decrypted"):
        vault.open("r-1")
    assert vault.open("r-2")["fields"]["name"] == "Wang Xiaoming"
    summary = (await client.get("/v1/cases/r-1", headers=_auth(tokens["analyst"]))).json()
    assert summary["private"] == "shredded"
    assert summary["private_commitment"] == committed["r-1"]
    assert summary["private_shredded_at"] is not None

    clock.advance(timedelta(days=10, minutes=1))
    assert service.shred_expired() in (["r-2"], [])  # the hourly task may have been first
    assert [vault.status(c) for c in ("r-1", "r-2", "r-3")] == ["shredded", "shredded", "sealed"]
    assert service.shred_expired() == [], "a second sweep shreds nothing"

    # The log never held the fields: it verifies, and each case_opened keeps its commitment.
    assert verify_store(service.ledger.store).entries == service.ledger.size
    assert _opened_subjects(service) == committed


async def test_police_shred_a_resolved_case_at_once_and_a_repeat_changes_nothing(
    retained: Any,
) -> None:
    client, tokens, service, _ = retained
    police = tokens["police"]
    committed = await _file(client, police, "s-1")
    await _file(client, police, "s-open")
    await _resolve(client, police, service, "s-1")

    response = await client.delete("/v1/cases/s-1/private", headers=_auth(police))
    assert response.status_code == 204, response.text
    assert service.vault is not None
    with pytest.raises(Shredded, match="cannot be decrypted"):
        service.vault.open("s-1")
    first = (await client.get("/v1/cases/s-1", headers=_auth(police))).json()
    assert first["private"] == "shredded" and first["private_commitment"] == committed

    response = await client.delete("/v1/cases/s-1/private", headers=_auth(police))
    assert response.status_code == 204, response.text
    again = (await client.get("/v1/cases/s-1", headers=_auth(police))).json()
    assert again["private_shredded_at"] == first["private_shredded_at"]

    await eventually(lambda: "s-1" in _opened_subjects(service), what="the case_opened entry")
    assert _opened_subjects(service)["s-1"] == committed
    assert verify_store(service.ledger.store).entries == service.ledger.size


@pytest.mark.parametrize(
    ("case_id", "role", "status", "message"),
    [
        ("s-open", "police", 409, "can be shredded only once it is resolved"),
        ("s-nobody", "police", 404, "no case has the id 's-nobody'"),
        ("s-open", "analyst", 403, "needs a police token"),
        ("s-open", None, 401, "Authorization: Bearer"),
    ],
)
async def test_shredding_is_refused_with_a_sentence_and_changes_nothing(
    retained: Any, case_id: str, role: str | None, status: int, message: str
) -> None:
    client, tokens, service, _ = retained
    if not service.view.knows("s-open"):
        await _file(client, tokens["police"], "s-open")
    headers = _auth(tokens[role]) if role else {}
    response = await client.delete(f"/v1/cases/{case_id}/private", headers=headers)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    if case_id == "s-open":
        assert service.vault.status("s-open") == "sealed"
