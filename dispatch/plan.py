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

import hmac
from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha256
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from chain.entries import dispatch_record as chain_dispatch_record
from chain.recipients import pseudonym
from dispatch.cases import AlertGroup, CaseState
from dispatch.directory import Contact, Directory
from dispatch.notices.model import MsgType, NoticeBatch, NoticeReference
from dispatch.reach import area_digest
from dispatch.schedule import TickSchedule

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
    header: NoticeBatch, contacts: list[Contact], batch_size: int, first_part: int = 0
) -> list[bytes]:
    """The Kafka values of a notice to ``contacts``, ``batch_size`` recipients each."""
    values = []
    for part, start in enumerate(range(0, len(contacts), batch_size), start=first_part):
        head = header.model_copy(update={"part": part}).to_bytes()
        if not head.endswith(_RECIPIENTS_TAIL):
            raise AssertionError("the notice batch no longer ends with its recipients")
        chunk = contacts[start : start + batch_size]
        body = b",".join(contact.recipient_json for contact in chunk)
        values.append(head[: -len(b"[]}")] + b"[" + body + b"]}")
    return values


def dispatch_record(
    case_id: str,
    tick: int,
    sent: datetime,
    area: BaseGeometry,
    case_secret: bytes,
    subscriber_ids: list[str],
) -> dict[str, Any]:
    """The log record of a dispatch (``chain.entries``): the recipients as a pseudonym root."""
    pseudonyms = [pseudonym(case_secret, subscriber_id) for subscriber_id in subscriber_ids]
    return chain_dispatch_record(case_id, tick, sent, bytes.fromhex(area_digest(area)), pseudonyms)


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

    def case_secret(self, case_id: str) -> bytes:
        """The key of the case's recipient pseudonyms."""
        return hmac.new(self.secret, f"pseudonyms:{case_id}".encode(), sha256).digest()

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

    def _contacts(self, keys: np.ndarray) -> list[Contact]:
        contacts = self.directory.contacts
        found = [contacts.get(int(key)) for key in keys]
        return [contact for contact in found if contact is not None]

    def _alert(
        self, state: CaseState, dispatch: Dispatch, keys: np.ndarray, area: BaseGeometry
    ) -> list[str]:
        """Alert ``keys`` (not yet alerted ones only): batches, alerted groups; returns ids."""
        keys = np.setdiff1d(np.unique(keys), state.alerted_keys(), assume_unique=True)
        contacts = self._contacts(keys)
        if not contacts:
            return []
        header = self._header(state, dispatch.tick, "Alert", dispatch.sent, area)
        dispatch.batches += batch_values(header, contacts, self.batch_size)
        dispatch.counts["Alert"] = len(contacts)

        # Remember who was alerted, by channel, for the Updates and the Cancel.
        by_channel: dict[tuple[str, str | None], list[int]] = {}
        for key, contact in zip(
            keys.tolist(), (self.directory.contacts.get(k) for k in keys.tolist()), strict=True
        ):
            if contact is not None:
                by_channel.setdefault((contact.channel, contact.target), []).append(key)
        for (channel, target), channel_keys in by_channel.items():
            state.groups.append(
                AlertGroup(dispatch.tick, channel, target, np.array(channel_keys, dtype=np.int64))
            )
        state.remember_notice(dispatch.tick, "Alert", header.as_reference())
        return [contact.subscriber_id for contact in contacts]

    def _to_alerted(
        self,
        state: CaseState,
        dispatch: Dispatch,
        msg_type: MsgType,
        area: BaseGeometry,
        groups: list[AlertGroup],
    ) -> list[str]:
        """An Update or a Cancel to the subscribers of ``groups``, on the channel of each."""
        ids: list[str] = []
        part = 0
        for alert_tick in sorted({group.tick for group in groups}):
            references = state.references_for(alert_tick)
            header = self._header(state, dispatch.tick, msg_type, dispatch.sent, area, references)
            contacts = []
            for group in groups:
                if group.tick != alert_tick:
                    continue
                for contact in self._contacts(group.keys):
                    # The channel it was alerted on, whatever it has changed to since.
                    if (contact.channel, contact.target) != (group.channel, group.target):
                        contact = Contact(
                            contact.subscriber_id,
                            contact.kind,
                            group.channel,
                            group.target,
                            contact.language,
                        )
                    contacts.append(contact)
            values = batch_values(header, contacts, self.batch_size, first_part=part)
            dispatch.batches += values
            part += len(values)
            ids += [contact.subscriber_id for contact in contacts]
        dispatch.counts[msg_type] = len(ids)
        return ids

    def _finish(
        self, state: CaseState, dispatch: Dispatch, area: BaseGeometry, ids: list[str]
    ) -> Dispatch:
        dispatch.record = dispatch_record(
            state.case_id, dispatch.tick, dispatch.sent, area, self.case_secret(state.case_id), ids
        )
        state.tick = dispatch.tick
        return dispatch

    # -- the dispatches --------------------------------------------------------------------

    def tick(self, state: CaseState, now: datetime) -> Dispatch:
        """A scheduled tick (and the Update after a sighting or a perimeter change)."""
        dispatch = Dispatch(state.case_id, state.tick + 1, "tick", now)
        area = state.area_inputs.area(now)
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
        area = (
            state.previous_area if state.previous_area is not None else state.area_inputs.area(now)
        )
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
