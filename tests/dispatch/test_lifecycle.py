"""The log records of a case's lifecycle: what they hold, what they never hold, their bytes."""

from __future__ import annotations

import base64
from datetime import timedelta

from chain.entries import canonical
from chain.privacy import commit
from dispatch.cases import CaseState
from dispatch.events import CaseResolved, LastSeen, PerimeterSet, SightingAdded
from dispatch.lifecycle import commitment_salt, event_time, lifecycle_record
from dispatch.reach import area_digest, check_perimeter
from tests.dispatch.harness import START
from tests.dispatch.kafka_io import report_event

SECRET = b"s" * 32
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[113.6, 34.7], [113.7, 34.7], [113.7, 34.8], [113.6, 34.8], [113.6, 34.7]]],
}


def _opened(private_commitment: str | None = None) -> tuple[CaseState, dict]:
    event = report_event("c-1", 34.7466, 113.6254, START - timedelta(minutes=20), START)
    if private_commitment is not None:
        event = event.model_copy(update={"private_commitment": private_commitment})
    state = CaseState.reported(event, 0, START)
    return state, lifecycle_record(event, state, event_id="e-1", at=START, secret=SECRET)


def test_a_filed_case_is_logged_with_the_vaults_commitment_and_its_category() -> None:
    _, record = _opened("ab" * 32)
    assert record["kind"] == "case_opened" and record["case"] == "c-1"
    assert record["category"] == "vehicle_abduction"
    assert base64.b64decode(record["subject"]) == bytes.fromhex("ab" * 32)
    assert record["time"] == "2026-12-03T12:00:00.000Z"


def test_a_case_without_private_fields_commits_to_none_under_a_derived_salt() -> None:
    _, record = _opened()
    salt = commitment_salt(SECRET, "c-1", "e-1")
    assert base64.b64decode(record["subject"]) == commit(b"{}", salt).digest


def test_a_sighting_is_logged_as_a_commitment_and_the_area_it_restarts() -> None:
    state, _ = _opened()
    seen = LastSeen(lat=34.81234, lon=113.95678, time=START + timedelta(minutes=5))
    event = SightingAdded(case_id="c-1", sighting=seen, note="near the station")
    state.add_sighting(seen, START)
    record = lifecycle_record(event, state, event_id="e-2", at=START, secret=SECRET)
    text = canonical(record)
    assert record["kind"] == "sighting"
    for secret_part in (b"34.81", b"113.95", b"station"):
        assert secret_part not in text
    area = state.area_inputs.area(seen.time)
    assert base64.b64decode(record["area"]).hex() == area_digest(area)
    # Computed again for the same event (a redone dispatch): the same bytes.
    again = lifecycle_record(event, state, event_id="e-2", at=START, secret=SECRET)
    assert canonical(again) == text
    # Another event with the same details: another salt, another commitment.
    other = lifecycle_record(event, state, event_id="e-3", at=START, secret=SECRET)
    assert other["details"] != record["details"]


def test_a_perimeter_is_logged_by_its_digest_mode_and_the_events_time() -> None:
    state, _ = _opened()
    event = PerimeterSet(case_id="c-1", perimeter=SQUARE, mode="replace")
    at = START + timedelta(minutes=7)
    record = lifecycle_record(event, state, event_id="e-4", at=at, secret=SECRET)
    assert record["mode"] == "replace" and record["time"] == "2026-12-03T12:07:00.000Z"
    assert base64.b64decode(record["area"]).hex() == area_digest(check_perimeter(SQUARE))


def test_each_outcome_is_logged_as_it_was_given() -> None:
    state, _ = _opened()
    for outcome in ("found", "cancelled", "false_report"):
        event = CaseResolved(case_id="c-1", outcome=outcome, resolved_at=START)
        record = lifecycle_record(event, state, event_id="e-5", at=START, secret=SECRET)
        assert record == {
            "kind": "resolution",
            "case": "c-1",
            "time": "2026-12-03T12:00:00.000Z",
            "outcome": outcome,
        }


def test_an_events_time_is_its_ce_time_else_its_kafka_timestamp() -> None:
    headers = [("ce_time", b"2026-12-03T13:00:00+08:00")]
    assert event_time(headers, 0) == START - timedelta(hours=7)
    assert event_time([("ce_time", b"yesterday")], 1_000).timestamp() == 1.0
    assert event_time(None, int(START.timestamp() * 1000)) == START
