"""What one dispatch of a case sends: the notices of a tick, an update, a move or a cancel.

A dispatch is computed from the case's state, the subscriber directory and the time, and
changes nothing outside the state it returns, so the dispatcher can compute it, then write the
notices, the new state and the log record in one Kafka transaction (or redo it after a crash
and get the same notice ids). Four kinds:

- ``tick`` (first at once, then on the schedule): ring = area now minus area at the previous
  tick; recipients = devices in the ring and areas/platforms touching it, not yet alerted.
  After a sighting or a perimeter change the same dispatch also sends an Update to everyone
  alerted before.
- ``move``: devices that reported a position inside the case's current area, not yet alerted.
- ``cancel``: a Cancel to exactly the alerted set, each on the channel it was alerted on.

Who was alerted. The state keeps the alerted as int64 keys grouped by channel, not as contacts.
Measured at a hundred thousand recipients, the keys take 0.94 MB of state (deflated, base64);
their ids would add 0.3 MB when they are short sequential ids and 3.1 MB when they are UUIDs,
past a Kafka message's default limit of 1 MB. An Update or a Cancel finds each key's id and
language in the directory; the few subscribers deleted after their alert are the exception, kept
in the state's ``departed`` when the dispatcher sees their deletion, so they are still told, on
the channel they were alerted on. One deleted while no worker followed the ``subscribers``
topic, and whose tombstone compaction has removed by the time one does, cannot be told; the
planner logs how many.

Batches. Recipients of a notice travel ``batch_size`` to a Kafka message
(:class:`~dispatch.notices.model.NoticeBatch`). The batch's header is serialised once by the
notice model; each recipient's JSON is cached in the directory, and a batch's value is the
header with the recipients spliced in. This is what lets one worker put hundreds of thousands
of recipients a second on Kafka: building a pydantic object per recipient per tick would cost
several times more than the whole produce.

One log record per dispatch: case, tick, kind, area digest, recipient count and the root of a
Merkle tree over the recipients' pseudonymous ids (``chain.recipients``), never the ids
themselves.
"""

from __future__ import annotations

import base64
import hmac
import logging
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from dispatch.cases import AlertGroup, CaseState
from dispatch.directory import Contact, Directory
from dispatch.notices.model import MsgType, NoticeBatch, NoticeReference
from dispatch.reach import area_digest
from dispatch.schedule import TickSchedule

logger = logging.getLogger(__name__)

_RECIPIENTS_TAIL = b',"recipients":[]}'


@dataclass
class Dispatch:
    """One dispatch: its notice batches (Kafka values) and its log record."""

    case_id: str
    tick: int
    kind: str
    sent: datetime
    batches: list[bytes] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)
    started_s: float | None = None

    @property
    def dispatch_id(self) -> str:
        return f"{self.case_id}:{self.tick}"

    @property
    def recipient_count(self) -> int:
        return sum(self.counts.values())


def rounded_geojson(area: BaseGeometry) -> dict[str, Any]:
    """The area as a GeoJSON geometry with at most 6 decimals (about 0.1 m)."""
    rounded = shapely.transform(area, lambda coords: np.round(coords, 6))
    return dict(mapping(rounded))


def batch_values(
    header: NoticeBatch, recipients: list[bytes], batch_size: int, first_part: int = 0
) -> list[bytes]:
    """The Kafka values of a notice to ``recipients`` (their JSON), ``batch_size`` each.

    The header is serialised once; each part differs from it only in ``"part"``, which the
    model writes before any free text, so its first occurrence is the field itself.
    """
    head = header.model_copy(update={"part": 0}).to_bytes()
    if not head.endswith(_RECIPIENTS_TAIL) or b'"part":0,' not in head:
        raise AssertionError("the notice batch no longer reads as its header, then recipients")
    head = head[: -len(b"[]}")]
    values = []
    for part, start in enumerate(range(0, len(recipients), batch_size), start=first_part):
        part_head = head if part == 0 else head.replace(b'"part":0,', b'"part":%d,' % part, 1)
        body = b",".join(recipients[start : start + batch_size])
        values.append(part_head + b"[" + body + b"]}")
    return values


def recipients_to_text(subscriber_ids: list[str]) -> str:
    """Recipient ids as base64 of deflated newline-joined text (a few bytes per recipient)."""
    return base64.b64encode(zlib.compress("\n".join(subscriber_ids).encode(), 1)).decode()


def text_to_recipients(text: str) -> list[str]:
    """The inverse of :func:`recipients_to_text`."""
    if not text:
        return []
    joined = zlib.decompress(base64.b64decode(text)).decode()
    return joined.split("\n") if joined else []


def case_secret(service_secret: bytes, case_id: str) -> bytes:
    """The key of a case's recipient pseudonyms, derived from the service's secret."""
    return hmac.new(service_secret, f"pseudonyms:{case_id}".encode(), sha256).digest()


class Planner:
    """Computes dispatches; holds what every dispatch of this worker shares."""

    def __init__(
        self,
        directory: Directory,
        schedule: TickSchedule,
        *,
        batch_size: int,
        secret: bytes,
        sender: str = "wayhome",
    ) -> None:
        self.directory = directory
        self.schedule = schedule
        self.batch_size = batch_size
        self.secret = secret
        self.sender = sender

    # -- building blocks ---------------------------------------------------------------------

    def _header(
        self,
        state: CaseState,
        tick: int,
        msg_type: MsgType,
        sent: datetime,
        area: BaseGeometry,
        references: tuple[NoticeReference, ...] = (),
    ) -> NoticeBatch:
        return NoticeBatch(
            case_id=state.case_id,
            tick=tick,
            msg_type=msg_type,
            sent=sent,
            sender=self.sender,
            references=references,
            case=state.case,
            area=rounded_geojson(area),
        )

    def _alert(
        self, state: CaseState, dispatch: Dispatch, keys: np.ndarray, area: BaseGeometry
    ) -> list[str]:
        """Alert ``keys`` (not yet alerted ones only): batches, alerted groups; returns ids."""
        directory = self.directory
        keys = np.unique(keys)
        if state.groups:
            keys = np.setdiff1d(keys, state.alerted_keys(), assume_unique=True)
        rows, keys = directory.rows_of(keys)
        if len(rows) == 0:
            return []
        header = self._header(state, dispatch.tick, "Alert", dispatch.sent, area)
        dispatch.batches += batch_values(header, directory.recipient_json(rows), self.batch_size)
        dispatch.counts["Alert"] = len(rows)

        # Remember who was alerted, by channel, for the Updates and the Cancel.
        channels = directory.channels_of(rows)
        for number in np.unique(channels).tolist():
            contact = directory.contacts[int(keys[np.argmax(channels == number)])]
            state.groups.append(
                AlertGroup(dispatch.tick, contact.channel, contact.target, keys[channels == number])
            )
        state.remember_notice(dispatch.tick, "Alert", header.as_reference())
        return directory.subscriber_ids(rows)

    def _to_alerted(
        self,
        state: CaseState,
        dispatch: Dispatch,
        msg_type: MsgType,
        area: BaseGeometry,
        groups: list[AlertGroup],
    ) -> list[str]:
        """An Update or a Cancel to the subscribers of ``groups``, on the channel of each."""
        directory = self.directory
        ids: list[str] = []
        part = 0
        for alert_tick in sorted({group.tick for group in groups}):
            references = state.references_for(alert_tick)
            header = self._header(state, dispatch.tick, msg_type, dispatch.sent, area, references)
            recipients: list[bytes] = []
            for group in groups:
                if group.tick != alert_tick:
                    continue
                rows, keys = directory.rows_of(group.keys)
                same = directory.channels_of(rows) == directory.channel_number(
                    group.channel, group.target
                )
                recipients += directory.recipient_json(rows[same])
                ids += directory.subscriber_ids(rows)

                # Deleted since their alert: told from what the state kept of them.
                unknown = 0
                for key in np.setdiff1d(group.keys, keys).tolist():
                    gone = state.departed.get(key)
                    if gone is None:
                        unknown += 1
                        continue
                    recipients.append(
                        Contact(
                            gone.subscriber_id,
                            gone.kind,
                            group.channel,
                            group.target,
                            gone.language,
                            key,
                        ).recipient_json
                    )
                    ids.append(gone.subscriber_id)
                if unknown:
                    logger.warning(
                        "alerted subscribers unreachable case=%s msg_type=%s count=%d",
                        state.case_id,
                        msg_type,
                        unknown,
                    )
                # The channel it was alerted on, whatever it has changed to since.
                for key in keys[~same].tolist():
                    moved = directory.contacts[key]
                    recipients.append(
                        Contact(
                            moved.subscriber_id,
                            moved.kind,
                            group.channel,
                            group.target,
                            moved.language,
                            key,
                        ).recipient_json
                    )
            values = batch_values(header, recipients, self.batch_size, first_part=part)
            dispatch.batches += values
            part += len(values)
        dispatch.counts[msg_type] = len(ids)
        return ids

    def _finish(
        self, state: CaseState, dispatch: Dispatch, area: BaseGeometry, ids: list[str]
    ) -> Dispatch:
        dispatch.record = {
            "case": state.case_id,
            "tick": dispatch.tick,
            "kind": dispatch.kind,
            "time": dispatch.sent.isoformat(),
            "area_sha256": area_digest(area),
            "counts": dispatch.counts,
            "recipients": recipients_to_text(ids),
        }
        state.tick = dispatch.tick
        return dispatch

    # -- the dispatches --------------------------------------------------------------------

    def tick(self, state: CaseState, now: datetime) -> Dispatch:
        """A scheduled tick (and the Update after a sighting or a perimeter change)."""
        dispatch = Dispatch(state.case_id, state.tick + 1, "tick", now)
        # A last-seen time a little ahead of this clock (within the tolerance events are
        # checked with) is a difference of clocks: the area is the one at the last-seen time.
        area = state.area_inputs.area(max(now, state.area_inputs.last_seen.time))
        ids: list[str] = []

        if state.update_pending and state.groups:
            ids += self._to_alerted(state, dispatch, "Update", area, list(state.groups))
            state.remember_notice(
                dispatch.tick,
                "Update",
                self._header(state, dispatch.tick, "Update", now, area).as_reference(),
            )
        state.update_pending = False

        # After a restore the ring is the whole area: whoever moved in while no worker was
        # following the case is found here (the alerted set keeps the others out).
        previous = None if state.reconcile else state.previous_area
        state.reconcile = False
        ring_keys = self._ring(area, previous)
        ids += self._alert(state, dispatch, ring_keys, area)

        state.previous_area = area
        state.last_tick_at = now
        state.next_tick_at = self.schedule.next_tick(state.area_inputs.last_seen.time, now)
        return self._finish(state, dispatch, area, ids)

    def _ring(self, area: BaseGeometry, previous: BaseGeometry | None) -> np.ndarray:
        directory = self.directory
        if previous is None:
            return directory.inside(area)
        devices = np.asarray(directory.devices.inside_ring(area, previous), dtype=np.int64)
        ring = area.difference(previous)
        areas = (
            np.asarray(directory.areas.intersecting(ring), dtype=np.int64)
            if not ring.is_empty
            else np.empty(0, dtype=np.int64)
        )
        return np.concatenate([devices, areas])

    def move(
        self, state: CaseState, keys: np.ndarray, lon: np.ndarray, lat: np.ndarray, now: datetime
    ) -> Dispatch | None:
        """Alert devices whose new position (``lon``, ``lat``) is inside the case's area.

        The area is the one of the last tick: the area the case has announced.
        """
        area = state.previous_area
        if area is None or state.status != "open" or len(keys) == 0:
            return None
        inside = keys[shapely.contains_xy(area, lon, lat)]
        fresh = np.setdiff1d(inside, state.alerted_keys())
        if len(fresh) == 0:
            return None
        dispatch = Dispatch(state.case_id, state.tick + 1, "move", now)
        ids = self._alert(state, dispatch, fresh, area)
        if not ids:
            return None
        return self._finish(state, dispatch, area, ids)

    def cancel(self, state: CaseState, now: datetime) -> Dispatch:
        """The Cancel to exactly the alerted set; the case stops ticking."""
        dispatch = Dispatch(state.case_id, state.tick + 1, "cancel", now)
        area = state.previous_area
        if area is None:  # never dispatched, so nobody to cancel: the last-seen point will do
            last_seen = state.area_inputs.last_seen
            area = shapely.Point(last_seen.lon, last_seen.lat)
        ids = self._to_alerted(state, dispatch, "Cancel", area, list(state.groups))
        state.status = "resolved"
        state.next_tick_at = None
        return self._finish(state, dispatch, area, ids)

    def due(self, state: CaseState, now: datetime) -> Dispatch | None:
        """The dispatch due for ``state`` at ``now``, if any."""
        if state.next_tick_at is None or state.next_tick_at > now:
            return None
        if state.status == "resolving":
            return self.cancel(state, now)
        if state.status == "open":
            return self.tick(state, now)
        return None
