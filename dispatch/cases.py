"""A case as the dispatcher holds it: its public inputs, who was alerted, and its lifecycle.

Lifecycle::

    reported ──(first tick at once)──▶ open ──tick on schedule──▶ open
                                         │ sighting / perimeter: tick at once, Update to alerted
                                         └ resolved: Cancel to exactly the alerted ──▶ resolved
                                         │ a dispatch fails (its area cannot be computed)
                                         ▼
                                       failed ──sighting / perimeter: tick at once──▶ open
                                         └ resolved: Cancel to exactly the alerted ──▶ resolved

A failed case stops ticking: what made its area fail does not change with time, and retrying
at every tick would log the same error forever. Its ``failure`` says why, for the police.

The state is plain data and survives a crash or a rebalance by being written, after every
dispatch, to the compacted ``dispatch.state`` topic (in the same Kafka transaction as the
notices when the broker has transactions). It holds:

- the case's public description and the inputs of its area (last seen or latest sighting,
  category, policy, perimeters), never a private field;
- ``tick``: the number of the last dispatch, which names its notices (``case:tick:type``), so a
  dispatch redone after a crash gets the same notice and delivery ids;
- the area of the last scheduled tick, whose difference with the area now is the next ring;
- the alerted set, as groups of subscriber keys by the tick that alerted them and the channel
  they were alerted on, so a Cancel goes to exactly those subscribers on those channels;
- ``departed``: the id, kind and language of each alerted subscriber deleted since, which the
  directory no longer knows, so the Cancel still reaches it (see :mod:`dispatch.plan`).

Keys are stored sorted, delta-encoded and deflated: a hundred thousand alerted subscribers take
about 0.94 MB (their keys are hashes, so the deltas barely compress), just inside one Kafka
message at the broker's default limit; past that, the limit must be raised. The alternative, one
state record per alerted subscriber, would make the state topic as large as the notices.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from dispatch.directory import Contact
from dispatch.events import CaseReported, LastSeen
from dispatch.notices.model import NoticeReference, PublicCase
from dispatch.reach import CaseArea

STATE_VERSION = 1
_MAX_APPLIED_EVENTS = 512


def keys_to_text(keys: np.ndarray) -> str:
    """Sorted int64 keys as base64 of deflated deltas."""
    ordered = np.sort(np.asarray(keys, dtype=np.int64))
    deltas = np.diff(ordered, prepend=np.int64(0))
    return base64.b64encode(zlib.compress(deltas.astype("<i8").tobytes(), 1)).decode()


def text_to_keys(text: str) -> np.ndarray:
    """The inverse of :func:`keys_to_text`."""
    deltas = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<i8")
    return np.cumsum(deltas).astype(np.int64)


@dataclass
class AlertGroup:
    """Subscribers alerted by one tick on one channel."""

    tick: int
    channel: str
    target: str | None
    keys: np.ndarray
    _keys_text: str | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        # A group never changes once made, so its keys are encoded once, not at every dispatch.
        if self._keys_text is None:
            self._keys_text = keys_to_text(self.keys)
        return {
            "tick": self.tick,
            "channel": self.channel,
            "target": self.target,
            "keys": self._keys_text,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlertGroup:
        keys = text_to_keys(data["keys"])
        return cls(data["tick"], data["channel"], data["target"], keys, data["keys"])


@dataclass
class CaseState:
    """Everything the dispatcher needs to go on with a case on any worker."""

    case_id: str
    partition: int
    case: PublicCase
    area_inputs: CaseArea
    reported_at: datetime
    private_commitment: str | None = None
    status: Literal["open", "resolving", "resolved", "failed"] = "open"
    outcome: str | None = None
    resolved_at: datetime | None = None
    failure: str | None = None
    tick: int = -1
    last_tick_at: datetime | None = None
    previous_area: BaseGeometry | None = None
    next_tick_at: datetime | None = None
    update_pending: bool = False
    notices: list[tuple[int, str, NoticeReference]] = field(default_factory=list)
    groups: list[AlertGroup] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    departed: dict[int, Contact] = field(default_factory=dict)
    reconcile: bool = False  # in memory only: set when restored, cleared by the next tick

    @classmethod
    def reported(cls, event: CaseReported, partition: int, now: datetime) -> CaseState:
        """A new case: its first tick is due at once."""
        area = CaseArea(event.last_seen, event.case.category, event.policy)
        if event.perimeter is not None:
            area = area.with_perimeter(event.perimeter, "add")
        return cls(
            case_id=event.case_id,
            partition=partition,
            case=event.case,
            area_inputs=area,
            reported_at=event.reported_at,
            private_commitment=event.private_commitment,
            next_tick_at=now,
        )

    # -- the alerted set -------------------------------------------------------------------

    def alerted_keys(self) -> np.ndarray:
        """Keys of every subscriber alerted so far, sorted."""
        if not self.groups:
            return np.empty(0, dtype=np.int64)
        return np.unique(np.concatenate([group.keys for group in self.groups]))

    def alerted_count(self) -> int:
        return int(sum(len(group.keys) for group in self.groups))

    def remember_departed(self, contacts: list[Contact]) -> bool:
        """Keep how to reach the alerted among deleted ``contacts``; True when any was alerted."""
        alerted = self.alerted_keys()
        found = False
        for contact in contacts:
            at = int(np.searchsorted(alerted, contact.key))
            if at < len(alerted) and alerted[at] == contact.key:
                self.departed[contact.key] = contact
                found = True
        return found

    def remember_event(self, event_id: str) -> bool:
        """Record an applied event; False when it had been applied already (a redelivery)."""
        if event_id in self.applied:
            return False
        self.applied.append(event_id)
        del self.applied[:-_MAX_APPLIED_EVENTS]
        return True

    # -- lifecycle -------------------------------------------------------------------------

    def add_sighting(self, sighting: LastSeen, now: datetime) -> None:
        """Restart the area from a sighting; the next tick (at once) sends an Update."""
        self.area_inputs = self.area_inputs.with_sighting(sighting)
        self.update_pending = True
        self.next_tick_at = now

    def set_perimeter(self, perimeter: dict[str, Any], mode: str, now: datetime) -> None:
        """Change the area by a police perimeter; the next tick (at once) sends an Update."""
        self.area_inputs = self.area_inputs.with_perimeter(perimeter, mode)
        self.update_pending = True
        self.next_tick_at = now

    def fail(self, reason: str) -> None:
        """Stop ticking: a dispatch of the case failed for ``reason``."""
        self.status = "failed"
        self.failure = reason
        self.next_tick_at = None

    def recover(self) -> None:
        """Tick again after its area's inputs changed (a no-op on a case that had not failed)."""
        if self.status == "failed":
            self.status = "open"
            self.failure = None

    def resolve(self, outcome: str, now: datetime) -> None:
        """Close the case: the next dispatch (at once) is the Cancel, then it stops ticking."""
        self.status = "resolving"
        self.outcome = outcome
        self.resolved_at = now
        self.next_tick_at = now

    def remember_notice(self, tick: int, msg_type: str, reference: NoticeReference) -> None:
        """Record an Alert or Update sent, for the references of later notices."""
        self.notices.append((tick, msg_type, reference))

    def references_for(self, alert_tick: int) -> tuple[NoticeReference, ...]:
        """The Alert sent at ``alert_tick`` and every Update sent since."""
        return tuple(
            reference
            for tick, msg_type, reference in self.notices
            if (tick == alert_tick and msg_type == "Alert")
            or (msg_type == "Update" and tick > alert_tick)
        )

    # -- persistence -----------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        data = {
            "version": STATE_VERSION,
            "case_id": self.case_id,
            "partition": self.partition,
            "case": self.case.model_dump(mode="json", exclude_none=True),
            "area_inputs": {
                "last_seen": self.area_inputs.last_seen.model_dump(mode="json"),
                "category": self.area_inputs.category,
                "policy": self.area_inputs.policy,
                "perimeters": [list(item) for item in self.area_inputs.perimeters],
            },
            "reported_at": self.reported_at.isoformat(),
            "private_commitment": self.private_commitment,
            "status": self.status,
            "outcome": self.outcome,
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "failure": self.failure,
            "tick": self.tick,
            "last_tick_at": self.last_tick_at.isoformat() if self.last_tick_at else None,
            "previous_area": (
                base64.b64encode(shapely.to_wkb(self.previous_area)).decode()
                if self.previous_area is not None
                else None
            ),
            "next_tick_at": self.next_tick_at.isoformat() if self.next_tick_at else None,
            "update_pending": self.update_pending,
            "notices": [
                [tick, msg_type, reference.model_dump(mode="json")]
                for tick, msg_type, reference in self.notices
            ],
            "groups": [group.to_json() for group in self.groups],
            "applied": self.applied,
            "departed": [
                [c.key, c.subscriber_id, c.kind, c.language] for c in self.departed.values()
            ],
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, value: bytes) -> CaseState:
        data = json.loads(value)
        inputs = data["area_inputs"]
        return cls(
            case_id=data["case_id"],
            partition=data["partition"],
            case=PublicCase.model_validate(data["case"]),
            area_inputs=CaseArea(
                LastSeen.model_validate(inputs["last_seen"]),
                inputs["category"],
                inputs["policy"],
                tuple((mode, perimeter) for mode, perimeter in inputs["perimeters"]),
            ),
            reported_at=datetime.fromisoformat(data["reported_at"]),
            private_commitment=data.get("private_commitment"),
            status=data["status"],
            outcome=data.get("outcome"),
            resolved_at=_instant(data.get("resolved_at")),
            failure=data.get("failure"),
            tick=data["tick"],
            last_tick_at=_instant(data.get("last_tick_at")),
            previous_area=(
                shapely.from_wkb(base64.b64decode(data["previous_area"]))
                if data.get("previous_area")
                else None
            ),
            next_tick_at=_instant(data.get("next_tick_at")),
            update_pending=data.get("update_pending", False),
            notices=[
                (tick, msg_type, NoticeReference.model_validate(reference))
                for tick, msg_type, reference in data.get("notices", [])
            ],
            groups=[AlertGroup.from_json(group) for group in data.get("groups", [])],
            applied=list(data.get("applied", [])),
            # The channel of a departed subscriber is the one of its alert group.
            departed={
                key: Contact(subscriber_id, kind, "", None, language, key)
                for key, subscriber_id, kind, language in data.get("departed", [])
            },
        )


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
