"""A case's lifecycle in the log: the record each case event leaves (``chain.entries``).

Beside one entry per dispatch (:mod:`dispatch.plan`), the log holds one entry per change of a
case, so that what the police did is as provable as what the service sent (DESIGN.md, "The
ledger"; the entry kinds of ``chain.entries``):

| event            | record        | fields beside the case id and the time                     |
|------------------|---------------|------------------------------------------------------------|
| ``CaseReported`` | ``case_opened`` | category; commitment to the private fields             |
| ``SightingAdded``| ``sighting``  | commitment to the sighting (place, time, note); area digest |
| ``PerimeterSet`` | ``perimeter`` | digest of the police perimeter; ``add`` or ``replace``      |
| ``CaseResolved`` | ``resolution``| outcome: ``found``, ``cancelled``, ``false_report``         |

Personal data stays off the log. A case filed through the API carries the vault's salted
commitment to its private fields (:mod:`dispatch.vault`), which the ``case_opened`` record
holds as it is; a case filed straight onto ``cases`` without private fields commits to none
(an empty object). Where a child was sighted is a commitment too (``chain.privacy.commit``),
never coordinates. A commitment's salt is derived from the service's secret and the event's
stable id, so a record computed again after a crash has the same bytes, which is how the
recorder knows it has it already; whoever holds the secret can open it, nobody else can.

The time of a record is the event's own: ``reported_at``, the sighting's time,
``resolved_at``, or, for a perimeter, which has none, the event's ``ce_time`` (the Kafka
timestamp of a message that has no CloudEvents headers).

The dispatcher builds the record and puts it on ``dispatches`` in the same transaction as the
state change; the recorder signs it with the service's submitter key (Ed25519), the key the
service, as the party that took the event in, signs every entry with.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import shapely

from chain.entries import (
    canonical,
    case_opened_record,
    perimeter_record,
    resolution_record,
    sighting_record,
)
from chain.privacy import commit
from dispatch.cases import CaseState
from dispatch.events import CaseReported, CaseResolved, PerimeterSet, SightingAdded, header
from dispatch.reach import area_digest, check_perimeter

LIFECYCLE_KINDS = ("case_opened", "sighting", "perimeter", "resolution")


def commitment_salt(secret: bytes, case_id: str, event_id: str) -> bytes:
    """The 32-byte salt of the commitment made for one event of a case."""
    message = f"lifecycle-salt:{case_id}:{event_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).digest()


def event_time(headers: Any, timestamp_ms: int) -> datetime:
    """When an event happened: its ``ce_time``, else its Kafka timestamp."""
    text = header(headers, "ce_time")
    if text:
        try:
            instant = datetime.fromisoformat(text)
        except ValueError:
            instant = None
        if instant is not None and instant.tzinfo is not None:
            return instant
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC)


def lifecycle_record(
    event: CaseReported | SightingAdded | PerimeterSet | CaseResolved,
    state: CaseState,
    *,
    event_id: str,
    at: datetime,
    secret: bytes,
) -> dict[str, Any]:
    """The ``chain.entries`` record of a case event ``state`` has just applied.

    ``at`` is the event's time (:func:`event_time`); it dates the records whose event has no
    time of its own.
    """
    case_id = event.case_id
    salt = commitment_salt(secret, case_id, event_id)
    if isinstance(event, CaseReported):
        subject = (
            bytes.fromhex(event.private_commitment)
            if event.private_commitment is not None
            else commit(canonical({}), salt).digest
        )
        return case_opened_record(case_id, event.reported_at, event.case.category, subject)
    if isinstance(event, SightingAdded):
        sighting = event.sighting
        details = {
            "lat": sighting.lat,
            "lon": sighting.lon,
            "time": sighting.time.isoformat(),
            "note": event.note,
        }
        try:
            area = state.area_inputs.area(sighting.time)
        except ValueError:  # the model cannot grow from here: the point itself
            area = shapely.Point(sighting.lon, sighting.lat)
        return sighting_record(
            case_id,
            sighting.time,
            commit(canonical(details), salt).digest,
            bytes.fromhex(area_digest(area)),
        )
    if isinstance(event, PerimeterSet):
        perimeter = check_perimeter(event.perimeter)
        return perimeter_record(case_id, at, bytes.fromhex(area_digest(perimeter)), event.mode)
    return resolution_record(case_id, event.resolved_at, event.outcome)
