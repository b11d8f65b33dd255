"""The tick schedule: every minute in the golden hours, slower later; refusals with sentences."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.errors import InvalidInput
from dispatch.schedule import TickSchedule, parse_duration
from tests.dispatch.harness import START


def test_default_schedule_ticks_every_minute_first_then_slower() -> None:
    schedule = TickSchedule.parse("0h=1m,3h=5m,24h=30m,72h=2h")
    assert schedule.interval_at(timedelta(minutes=10)) == timedelta(minutes=1)
    assert schedule.interval_at(timedelta(hours=3)) == timedelta(minutes=5)
    assert schedule.interval_at(timedelta(hours=30)) == timedelta(minutes=30)
    assert schedule.interval_at(timedelta(days=10)) == timedelta(hours=2)


def test_next_tick_is_spaced_from_the_previous_tick() -> None:
    schedule = TickSchedule.parse("0h=1m,3h=5m")
    last_seen = START
    assert schedule.next_tick(last_seen, START + timedelta(hours=1)) == START + timedelta(
        hours=1, minutes=1
    )
    assert schedule.next_tick(last_seen, START + timedelta(hours=4)) == START + timedelta(
        hours=4, minutes=5
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3h=5m", "a step starting at 0h"),
        ("0h=1m,5x=2m", "a number with s, m or h"),
        ("0h", "elapsed=interval"),
        ("0h=0m", "must be positive"),
    ],
)
def test_a_malformed_schedule_is_refused_with_a_sentence(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        TickSchedule.parse(text)


def test_durations_read_seconds_minutes_and_hours() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("1.5h") == timedelta(minutes=90)


@settings(max_examples=60)
@given(
    elapsed_min=st.integers(min_value=0, max_value=60 * 24 * 30),
    steps=st.lists(st.integers(min_value=1, max_value=600), min_size=1, max_size=4),
)
def test_the_next_tick_always_lies_in_the_future(elapsed_min: int, steps: list[int]) -> None:
    text = ",".join(f"{index * 5}h={minutes}m" for index, minutes in enumerate(steps))
    schedule = TickSchedule.parse(text)
    previous = START + timedelta(minutes=elapsed_min)
    assert schedule.next_tick(START, previous) > previous
