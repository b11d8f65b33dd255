"""The notice model: ids, batching, languages, and no place for a case's private fields."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dispatch.notices import (
    NoticeBatch,
    PublicCase,
    Recipient,
    delivery_identifier,
    notice_for,
    notice_identifier,
)
from dispatch.notices.rendering import NoticeRenderer
from tests.dispatch.notices.builders import SENT, notice_batch, public_case

PRIVATE_FIELDS = {
    "name": "Li Hua",
    "id_number": "410102201901011234",
    "guardian_phone": "+86 138 0000 0000",
    "dna_profile": "D8S1179:13,14",
}


@pytest.mark.parametrize(("field", "value"), PRIVATE_FIELDS.items())
def test_a_public_case_refuses_a_private_field(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        public_case(**{field: value})


@pytest.mark.parametrize(("field", "value"), PRIVATE_FIELDS.items())
def test_a_batch_read_from_kafka_refuses_a_private_field(
    batch: NoticeBatch, field: str, value: str
) -> None:
    raw = json.loads(batch.to_bytes())
    raw["case"][field] = value
    with pytest.raises(ValidationError):
        NoticeBatch.from_bytes(json.dumps(raw).encode())


def test_the_json_notice_holds_only_public_fields_of_the_case(batch: NoticeBatch) -> None:
    for recipient in batch.recipients:
        notice = notice_for(batch, recipient)
        text = json.dumps(notice, ensure_ascii=False)
        for value in PRIVATE_FIELDS.values():
            assert value not in text
        assert set(notice) <= {
            *("schema", "id", "notice_id", "type", "case_id", "tick", "sender", "sent"),
            *("subscriber_id", "language", "category", "event", "urgency", "severity"),
            *("certainty", "headline", "description", "instruction", "contact", "web"),
            *("last_seen_at", "expires", "circles", "references", "area"),
        }


def test_the_json_notice_speaks_the_recipients_language(batch: NoticeBatch) -> None:
    app = batch.recipients[0]
    assert notice_for(batch, app)["headline"].startswith("儿童走失")
    assert notice_for(batch, app)["language"] == "zh-CN"
    assert notice_for(batch, batch.recipients[1])["language"] == "en"


@pytest.mark.parametrize(
    ("asked", "given"), [("zh", "zh-CN"), ("ZH-cn", "zh-CN"), ("fr", "en"), ("en-GB", "en")]
)
def test_a_case_falls_back_to_the_primary_language_then_its_first_text(
    asked: str, given: str
) -> None:
    assert public_case().text_for(asked).language == given


def test_times_in_the_json_notice_keep_their_offset_and_whole_seconds(batch: NoticeBatch) -> None:
    notice = notice_for(batch, batch.recipients[0])
    assert notice["sent"] == "2026-12-03T18:30:05+08:00"


def test_a_batch_survives_the_trip_through_kafka_bytes(batch: NoticeBatch) -> None:
    assert NoticeBatch.from_bytes(batch.to_bytes()) == batch


def test_the_renderer_gives_the_same_document_as_notice_for(batch: NoticeBatch) -> None:
    update = notice_batch(batch.recipients, msg_type="Update", tick=3)
    for source in (batch, update):
        renderer = NoticeRenderer(source)
        for recipient in source.recipients:
            assert json.loads(renderer.body(recipient)) == notice_for(source, recipient)


def test_delivery_ids_are_stable_and_distinct_per_notice_and_subscriber() -> None:
    alert = notice_identifier("case-1", 0, "Alert")
    update = notice_identifier("case-1", 0, "Update")
    assert delivery_identifier(alert, "s1") == delivery_identifier(alert, "s1")
    ids = {delivery_identifier(n, s) for n in (alert, update) for s in ("s1", "s2")}
    assert len(ids) == 4
    assert all(i.startswith("ntc_") and len(i) == 36 and "s1" not in i for i in ids)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=0, max_value=40), size=st.integers(min_value=1, max_value=9))
def test_splitting_a_batch_keeps_every_recipient_once_and_the_notice_id(n: int, size: int) -> None:
    recipients = [Recipient(subscriber_id=f"s{i}", channel="sse") for i in range(n)]
    whole = notice_batch(recipients)
    parts = list(whole.split(size))
    assert [r for part in parts for r in part.recipients] == recipients
    assert {part.notice_id for part in parts} == {whole.notice_id}
    assert [part.part for part in parts] == list(range(len(parts)))
    assert all(len(part.recipients) <= size for part in parts)


def test_an_alert_refers_to_no_earlier_notice() -> None:
    reference = notice_batch(msg_type="Update").references
    with pytest.raises(ValidationError, match="an Alert refers to no earlier notice"):
        notice_batch(msg_type="Alert", references=reference)


def test_a_recipient_may_carry_its_own_references() -> None:
    own = notice_batch(tick=2).as_reference()
    recipient = Recipient(subscriber_id="s1", channel="sse", references=(own,))
    update = notice_batch([recipient], msg_type="Update", tick=5)
    assert update.references_for(recipient) == (own,)
    assert notice_for(update, recipient)["references"][0]["identifier"].endswith(":2:alert")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"channel": "webhook", "target": None}, "needs an http"),
        ({"channel": "webhook", "target": "ftp://x"}, "needs an http"),
        ({"channel": "kafka", "target": None}, "needs a topic"),
        ({"channel": "pigeon"}, "Input should be"),
    ],
)
def test_a_recipient_without_a_usable_target_is_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Recipient(subscriber_id="s1", **fields)


def test_a_naive_sent_time_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        notice_batch(sent=SENT.replace(tzinfo=None))


def test_an_area_that_is_not_polygonal_is_refused() -> None:
    with pytest.raises(ValidationError, match="Polygon or MultiPolygon, got Point"):
        notice_batch(area={"type": "Point", "coordinates": [113.0, 34.0]})


def test_a_case_id_with_a_comma_is_refused_because_cap_references_split_on_it() -> None:
    with pytest.raises(ValidationError, match="no space, comma"):
        public_case(case_id="case,1")


@pytest.mark.parametrize(
    ("channel", "target"),
    [
        ({"kind": "webhook", "url": "https://example.org/h"}, "https://example.org/h"),
        ({"kind": "kafka", "topic": "partner.notices"}, "partner.notices"),
        ({"kind": "sse"}, None),
    ],
)
def test_a_recipient_is_made_from_a_subscriber(channel: dict, target: str | None) -> None:
    from subscribers import Channel, Subscriber

    subscriber = Subscriber(
        id="sub-9",
        kind="device",
        lon=113.7,
        lat=34.7,
        fix_time=SENT,
        channel=Channel(**channel),
        language="zh",
    )
    recipient = Recipient.from_subscriber(subscriber)
    assert (recipient.subscriber_id, recipient.channel, recipient.target, recipient.language) == (
        "sub-9",
        channel["kind"],
        target,
        "zh",
    )


def test_public_case_fields_are_only_public_ones() -> None:
    assert set(PublicCase.model_fields) == {
        *("case_id", "category", "event", "texts", "urgency", "severity", "certainty"),
        *("last_seen_at", "expires", "contact", "web"),
    }


def test_a_filed_cases_private_fields_cannot_reach_a_notice() -> None:
    from dispatch.api.models import CaseFiling
    from dispatch.notices.cap import notice_to_cap_bytes

    filing = CaseFiling.model_validate(
        {
            "case_id": "case-1",
            "category": "lost_child",
            "last_seen": {"lat": 34.76, "lon": 113.78, "time": SENT.isoformat()},
            "texts": [{"language": "en", "headline": "Missing girl", "description": "Red coat."}],
            "private": PRIVATE_FIELDS,
        }
    )
    # Everything the filing holds, private part included, has no place in a public case...
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        PublicCase.model_validate(filing.model_dump(exclude={"last_seen", "policy", "perimeter"}))

    # ...and a public case made from its public fields renders no private value anywhere.
    public = PublicCase(
        case_id="case-1", category=filing.category, texts=tuple(filing.texts), contact="110"
    )
    recipient = Recipient(subscriber_id="s1", channel="sse")
    batch = notice_batch([recipient]).model_copy(update={"case": public})
    rendered = [
        json.dumps(notice_for(batch, recipient), ensure_ascii=False),
        NoticeRenderer(batch).body(recipient).decode(),
        batch.to_bytes().decode(),
        notice_to_cap_bytes(batch).decode(),
    ]
    for text in rendered:
        assert "Missing girl" in text
        for value in PRIVATE_FIELDS.values():
            assert value not in text


@pytest.mark.parametrize(
    ("area", "message"),
    [
        ({"type": "Polygon", "coordinates": "x"}, "not a valid Polygon"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "not a valid Polygon"),
        ({"type": "Polygon", "coordinates": []}, "must not be empty"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [200, 0], [200, 1], [0, 0]]]},
            "lon within -180..180",
        ),
    ],
)
def test_an_area_with_unusable_coordinates_is_refused(area: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        notice_batch(area=area)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_on_the_topic_give_a_renderable_batch_or_a_validation_error(raw: bytes) -> None:
    try:
        batch = NoticeBatch.from_bytes(raw)
    except ValidationError:
        return
    for recipient in batch.recipients:
        notice_for(batch, recipient)


@settings(max_examples=60, deadline=None)
@given(
    field=st.sampled_from(["tick", "msg_type", "sent", "area", "recipients", "case", "circles"]),
    value=json_values,
)
def test_a_batch_with_a_spoiled_field_renders_or_fails_with_a_validation_error(
    field: str, value: object
) -> None:
    raw = json.loads(notice_batch([Recipient(subscriber_id="s", channel="sse")]).to_bytes())
    raw[field] = value
    try:
        batch = NoticeBatch.from_bytes(json.dumps(raw).encode())
    except ValidationError:
        return
    for recipient in batch.recipients:
        assert json.loads(NoticeRenderer(batch).body(recipient)) == notice_for(batch, recipient)
