"""Events on the topics: CloudEvents headers, bodies, and what is refused (to dead letters)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.errors import MalformedEvent
from dispatch.events import (
    CaseResolved,
    SightingAdded,
    SubscriberDeleted,
    SubscriberUpserted,
    decode_case_event,
    decode_subscriber_event,
    encode,
    event_id_of,
    header,
)
from tests.dispatch.harness import START
from tests.dispatch.kafka_io import report_event


def test_an_event_carries_cloudevents_binary_mode_headers_and_decodes_back() -> None:
    event = report_event("c-1", 34.7, 113.6, START, START)
    value, headers = encode(event, event_id="e-1", time=START)
    names = {name for name, _ in headers}
    assert {"ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "content-type"} <= names
    assert header(headers, "ce_type") == "org.wayhome.case.reported"
    assert header(headers, "ce_specversion") == "1.0"
    assert decode_case_event(b"c-1", value, headers) == event
    assert event_id_of(b"c-1", value, headers) == "e-1"


def test_a_plain_producer_without_headers_is_read_by_the_body_type() -> None:
    body = {
        "type": "case.resolved",
        "case_id": "c-2",
        "outcome": "found",
        "resolved_at": START.isoformat(),
    }
    value = json.dumps(body).encode()
    event = decode_case_event(b"c-2", value, None)
    assert isinstance(event, CaseResolved)
    # Without ce_id, the id is derived from the message and stable across redeliveries.
    assert event_id_of(b"c-2", value, None) == event_id_of(b"c-2", value, [])


def test_headers_name_the_type_when_the_body_does_not() -> None:
    value, headers = encode(
        SightingAdded(
            case_id="c-3", sighting={"lat": 30.0, "lon": 114.0, "time": START.isoformat()}
        )
    )
    body = json.loads(value)
    del body["type"]
    assert isinstance(decode_case_event(b"c-3", json.dumps(body).encode(), headers), SightingAdded)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (b"c", b"not json", "not JSON"),
        (b"c", b"[1, 2]", "must be a JSON object"),
        (b"c", None, "has no value"),
        (b"c", b'{"type": "case.unknown", "case_id": "c"}', "invalid"),
        (b"c", b'{"type": "case.resolved", "case_id": "c", "outcome": "found"}', "resolved_at"),
        (
            b"other",
            json.dumps(
                {
                    "type": "case.resolved",
                    "case_id": "c",
                    "outcome": "found",
                    "resolved_at": START.isoformat(),
                }
            ).encode(),
            "message key",
        ),
    ],
)
def test_a_malformed_case_event_is_refused_with_a_reason(
    key: bytes, value: bytes | None, message: str
) -> None:
    with pytest.raises(MalformedEvent, match=message):
        decode_case_event(key, value, None)


def test_a_private_field_on_a_case_event_is_refused() -> None:
    value, headers = encode(report_event("c-4", 34.7, 113.6, START, START))
    body = json.loads(value)
    body["case"]["name"] = "Wang Xiaoming"
    with pytest.raises(MalformedEvent, match="case.name"):
        decode_case_event(b"c-4", json.dumps(body).encode(), headers)
    body = json.loads(value)
    body["id_number"] = "410102201901010011"
    with pytest.raises(MalformedEvent, match="id_number"):
        decode_case_event(b"c-4", json.dumps(body).encode(), headers)


def test_a_subscriber_tombstone_is_a_deletion() -> None:
    assert decode_subscriber_event(b"dev-1", None, None) == SubscriberDeleted(subscriber_id="dev-1")
    value, headers = encode(SubscriberUpserted(subscriber={"id": "dev-2"}))
    assert isinstance(decode_subscriber_event(b"dev-2", value, headers), SubscriberUpserted)
    with pytest.raises(MalformedEvent, match="tombstone"):
        decode_subscriber_event(None, None, None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200)
@given(
    key=st.one_of(st.none(), st.binary(max_size=20)),
    value=st.one_of(
        st.none(),
        st.binary(max_size=60),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(
                    [
                        "case.reported",
                        "case.sighting",
                        "case.perimeter",
                        "case.resolved",
                        "subscriber.deleted",
                    ]
                )
            },
            optional={"case_id": st.text(max_size=10), "outcome": st.text(max_size=8)},
        ).map(lambda v: json.dumps(v).encode()),
    ),
    ce_type=st.one_of(st.none(), st.text(max_size=30)),
)
def test_anything_on_a_topic_decodes_or_is_refused_as_malformed(
    key: bytes | None, value: bytes | None, ce_type: str | None
) -> None:
    headers = [("ce_type", ce_type.encode())] if ce_type is not None else None
    for decode in (decode_case_event, decode_subscriber_event):
        try:
            decode(key, value, headers)
        except MalformedEvent as error:
            assert str(error)


def test_every_outcome_the_api_takes_is_one_the_log_records() -> None:
    from typing import get_args

    from chain.entries import OUTCOMES, resolution_record
    from dispatch.api.models import Resolution

    outcomes = get_args(Resolution.model_fields["outcome"].annotation)
    assert set(outcomes) == {"found", "cancelled", "false_report"}
    assert set(outcomes) <= set(OUTCOMES)
    assert set(get_args(CaseResolved.model_fields["outcome"].annotation)) == set(outcomes)
    for outcome in outcomes:
        assert resolution_record("c-1", START, outcome)["outcome"] == outcome
