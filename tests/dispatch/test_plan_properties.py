"""Properties of dispatch planning over random subscribers, moves, sightings and ticks.

Whatever happens to a case, nobody is alerted twice, everyone inside the announced area has
been alerted, and the Cancel goes to exactly the alerted set.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.cases import CaseState
from dispatch.directory import Directory, key_of
from dispatch.events import LastSeen
from dispatch.notices.model import NoticeBatch
from dispatch.plan import Planner
from dispatch.schedule import TickSchedule
from subscribers import Subscriber
from tests.dispatch.harness import START, ZHENGZHOU
from tests.dispatch.kafka_io import report_event

offsets = st.tuples(st.floats(-4.0, 4.0), st.floats(-4.0, 4.0))
steps = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.integers(1, 90)),
        st.tuples(st.just("move"), st.integers(0, 39), offsets),
        st.tuples(st.just("sighting"), offsets),
    ),
    max_size=12,
)


def _recipients(batches: list[bytes], msg_type: str) -> list[str]:
    return [
        r.subscriber_id
        for value in batches
        for batch in [NoticeBatch.from_bytes(value)]
        if batch.msg_type == msg_type
        for r in batch.recipients
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(positions=st.lists(offsets, min_size=40, max_size=40), plan=steps)
def test_nobody_is_alerted_twice_and_the_cancel_reaches_exactly_the_alerted(
    positions: list[tuple[float, float]], plan: list[tuple]
) -> None:
    lat0, lon0 = ZHENGZHOU
    directory = Directory()
    where = {}
    for index, (dlat, dlon) in enumerate(positions):
        body = {
            "id": f"s{index}",
            "kind": "device",
            "lat": lat0 + dlat,
            "lon": lon0 + dlon,
            "channel": {"kind": "sse"},
        }
        directory.upsert(Subscriber.model_validate(body))
        where[f"s{index}"] = (lon0 + dlon, lat0 + dlat)
    planner = Planner(directory, TickSchedule.parse("0h=1m"), batch_size=7, secret=b"s" * 16)
    state = CaseState.reported(
        report_event("c-prop", lat0, lon0, START - timedelta(minutes=20), START), 0, START
    )
    now = START
    alerts: list[str] = []
    alerts += _recipients(planner.tick(state, now).batches, "Alert")

    for step in plan:
        if step[0] == "tick":
            now += timedelta(minutes=step[1])
            alerts += _recipients(planner.tick(state, now).batches, "Alert")
        elif step[0] == "move":
            name, (dlat, dlon) = f"s{step[1]}", step[2]
            body = {
                "id": name,
                "kind": "device",
                "lat": lat0 + dlat,
                "lon": lon0 + dlon,
                "channel": {"kind": "sse"},
            }
            directory.upsert(Subscriber.model_validate(body))
            where[name] = (lon0 + dlon, lat0 + dlat)
            moved = planner.move(
                state,
                np.array([key_of(name)]),
                np.array([lon0 + dlon]),
                np.array([lat0 + dlat]),
                now,
            )
            if moved is not None:
                alerts += _recipients(moved.batches, "Alert")
        else:
            (dlat, dlon) = step[1]
            state.add_sighting(LastSeen(lat=lat0 + dlat, lon=lon0 + dlon, time=now), now)
            alerts += _recipients(planner.tick(state, now).batches, "Alert")

        # Everyone inside the announced area has been alerted.
        inside = {
            name for name, (x, y) in where.items() if shapely.contains_xy(state.previous_area, x, y)
        }
        assert inside <= set(alerts)

    assert len(alerts) == len(set(alerts)), "a subscriber was alerted twice"
    state.resolve("found", now)
    cancel = planner.due(state, now)
    assert cancel is not None
    assert sorted(_recipients(cancel.batches, "Cancel")) == sorted(alerts)
