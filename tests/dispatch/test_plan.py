"""What a dispatch sends, computed without Kafka: rings, moves, updates, cancels, batches."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.cases import CaseState, keys_to_text, text_to_keys
from dispatch.directory import Contact, Directory, key_of
from dispatch.events import LastSeen, SightingAdded
from dispatch.notices.model import NoticeBatch
from dispatch.plan import Planner, text_to_recipients
from dispatch.schedule import TickSchedule
from subscribers import Subscriber
from tests.dispatch.harness import START, ZHENGZHOU, device
from tests.dispatch.kafka_io import report_event

HOOK = {"kind": "webhook", "url": "https://app.example.org/hook"}


def _planner(subscribers: list[dict], batch_size: int = 2) -> Planner:
    directory = Directory()
    for body in subscribers:
        directory.upsert(Subscriber.model_validate(body))
    return Planner(
        directory,
        TickSchedule.parse("0h=1m,3h=5m"),
        batch_size=batch_size,
        secret=b"test-secret-0123456789",
    )


def _case(minutes_ago: int = 30) -> CaseState:
    event = report_event("c-plan", *ZHENGZHOU, START - timedelta(minutes=minutes_ago), START)
    return CaseState.reported(event, 0, START)


def _recipients(batches: list[bytes], msg_type: str) -> list[str]:
    parsed = [NoticeBatch.from_bytes(value) for value in batches]
    return [r.subscriber_id for b in parsed if b.msg_type == msg_type for r in b.recipients]


def test_the_first_tick_alerts_everyone_inside_in_batches_and_then_only_the_ring() -> None:
    planner = _planner(
        [device(f"n{i}", 10 + i, HOOK) for i in range(5)]
        + [device("mid", 150, HOOK), device("far", 900, HOOK)]
    )
    state = _case()

    first = planner.tick(state, START)
    assert sorted(_recipients(first.batches, "Alert")) == [f"n{i}" for i in range(5)]
    assert [NoticeBatch.from_bytes(v).part for v in first.batches] == [0, 1, 2]
    assert first.tick == 0 and state.next_tick_at == START + timedelta(minutes=1)

    # The same tier a minute later: an empty ring, nobody new.
    again = planner.tick(state, START + timedelta(minutes=1))
    assert again.batches == [] and again.recipient_count == 0

    # Past one hour since last seen: the 200 km tier, only "mid" is new.
    later = planner.tick(state, START + timedelta(minutes=31))
    assert _recipients(later.batches, "Alert") == ["mid"]
    assert state.alerted_count() == 6
    assert text_to_recipients(later.record["recipients"]) == ["mid"]


def test_a_device_moving_into_the_area_is_alerted_once() -> None:
    planner = _planner([device("walker", 900, HOOK)])
    state = _case()
    planner.tick(state, START)
    lat, lon = ZHENGZHOU
    keys = np.array([key_of("walker")], dtype=np.int64)
    moved = planner.move(state, keys, np.array([lon + 0.1]), np.array([lat]), START)
    assert moved is not None and _recipients(moved.batches, "Alert") == ["walker"]
    assert planner.move(state, keys, np.array([lon + 0.1]), np.array([lat]), START) is None


def test_a_sighting_sends_an_update_to_the_alerted_referring_to_their_alert() -> None:
    planner = _planner([device("a", 10, HOOK), device("b", 20, {"kind": "sse"})])
    state = _case()
    alert = planner.tick(state, START)
    sighting = SightingAdded(
        case_id="c-plan",
        sighting=LastSeen(
            lat=ZHENGZHOU[0], lon=ZHENGZHOU[1] + 0.2, time=START + timedelta(minutes=5)
        ),
    )
    state.add_sighting(sighting.sighting, START + timedelta(minutes=5))
    update = planner.tick(state, START + timedelta(minutes=5))
    assert sorted(_recipients(update.batches, "Update")) == ["a", "b"]
    batch = NoticeBatch.from_bytes(update.batches[0])
    alert_id = NoticeBatch.from_bytes(alert.batches[0]).notice_id
    assert [ref.identifier for ref in batch.references] == [alert_id]


def test_the_cancel_goes_to_exactly_the_alerted_on_the_channel_they_were_alerted_on() -> None:
    planner = _planner(
        [device("a", 10, HOOK), device("b", 20, {"kind": "sse"}), device("outside", 900, HOOK)]
    )
    state = _case()
    planner.tick(state, START)

    # "a" switches to SSE after its alert: its Cancel still goes by the webhook.
    planner.directory.upsert(Subscriber.model_validate(device("a", 10, {"kind": "sse"})))
    state.resolve("found", START + timedelta(minutes=2))
    cancel = planner.due(state, START + timedelta(minutes=2))
    assert cancel is not None and cancel.kind == "cancel"
    recipients = {
        r.subscriber_id: r for v in cancel.batches for r in NoticeBatch.from_bytes(v).recipients
    }
    assert set(recipients) == {"a", "b"}
    assert recipients["a"].channel == "webhook" and recipients["b"].channel == "sse"
    assert state.status == "resolved" and planner.due(state, START + timedelta(hours=1)) is None


def test_a_subscriber_deleted_after_its_alert_still_gets_the_cancel_on_its_channel() -> None:
    planner = _planner([device("a", 10, HOOK, language="zh"), device("b", 20, {"kind": "sse"})])
    state = _case()
    planner.tick(state, START)

    # "a" is deleted; the dispatcher keeps its contact in the state, which survives a restart.
    gone = planner.directory.contacts[key_of("a")]
    planner.directory.delete("a")
    outsider = planner.directory.contacts[key_of("b")]
    assert state.remember_departed([gone])
    assert not CaseState.from_bytes(state.to_bytes()).remember_departed(
        [Contact("never", "device", "sse", None, "en", key_of("never"))]
    )
    state = CaseState.from_bytes(state.to_bytes())
    assert outsider.key not in state.departed

    state.resolve("found", START + timedelta(minutes=2))
    cancel = planner.due(state, START + timedelta(minutes=2))
    assert cancel is not None
    recipients = {
        r.subscriber_id: r for v in cancel.batches for r in NoticeBatch.from_bytes(v).recipients
    }
    assert set(recipients) == {"a", "b"}
    assert (recipients["a"].channel, recipients["a"].target) == ("webhook", HOOK["url"])
    assert recipients["a"].language == "zh"
    assert cancel.counts["Cancel"] == 2
    assert sorted(text_to_recipients(cancel.record["recipients"])) == ["a", "b"]


def test_case_state_survives_a_round_trip_through_bytes() -> None:
    planner = _planner([device(f"n{i}", 10 + i, HOOK) for i in range(3)])
    state = _case()
    planner.tick(state, START)
    state.remember_event("e-1")
    restored = CaseState.from_bytes(state.to_bytes())
    assert np.array_equal(restored.alerted_keys(), state.alerted_keys())
    assert restored.previous_area is not None and restored.previous_area.equals(state.previous_area)
    assert restored.tick == 0 and restored.applied == ["e-1"] and restored.notices == state.notices
    assert restored.case == state.case and restored.area_inputs == state.area_inputs


@settings(max_examples=50)
@given(st.lists(st.integers(min_value=0, max_value=2**63 - 1), max_size=300, unique=True))
def test_alerted_keys_encode_and_decode_exactly(keys: list[int]) -> None:
    array = np.array(keys, dtype=np.int64)
    assert np.array_equal(text_to_keys(keys_to_text(array)), np.sort(array))


def test_watched_areas_and_platforms_touching_the_area_are_alerted_once() -> None:
    lat, lon = ZHENGZHOU
    near_area = {
        "type": "Polygon",
        "coordinates": [
            [
                [lon + 0.5, lat],
                [lon + 0.6, lat],
                [lon + 0.6, lat + 0.1],
                [lon + 0.5, lat],
            ]
        ],
    }
    far_area = {
        "type": "Polygon",
        "coordinates": [
            [[lon + 20, lat], [lon + 20.1, lat], [lon + 20.1, lat + 0.1], [lon + 20, lat]]
        ],
    }
    planner = _planner(
        [
            {"id": "watch-near", "kind": "area", "area": near_area, "channel": HOOK},
            {"id": "watch-far", "kind": "area", "area": far_area, "channel": HOOK},
            {
                "id": "platform-all",
                "kind": "platform",
                "channel": {"kind": "kafka", "topic": "p.n"},
            },
        ]
    )
    state = _case()
    first = planner.tick(state, START)
    assert sorted(_recipients(first.batches, "Alert")) == ["platform-all", "watch-near"]
    later = planner.tick(state, START + timedelta(minutes=31))
    assert _recipients(later.batches, "Alert") == []


def test_a_replacing_perimeter_changes_the_area_and_updates_the_alerted() -> None:
    lat, lon = ZHENGZHOU
    planner = _planner([device("a", 10, HOOK), device("far", 900, HOOK)])
    state = _case()
    planner.tick(state, START)
    box = {
        "type": "Polygon",
        "coordinates": [
            [
                [lon + 9.0, lat - 0.5],
                [lon + 11.0, lat - 0.5],
                [lon + 11.0, lat + 0.5],
                [lon + 9.0, lat + 0.5],
                [lon + 9.0, lat - 0.5],
            ]
        ],
    }
    state.set_perimeter(box, "replace", START + timedelta(minutes=2))
    changed = planner.due(state, START + timedelta(minutes=2))
    assert changed is not None
    assert _recipients(changed.batches, "Update") == ["a"]
    assert _recipients(changed.batches, "Alert") == ["far"]
    assert state.previous_area is not None and state.previous_area.bounds[0] >= lon + 8.9
