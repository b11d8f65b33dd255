"""Retention: a resolved case's private fields are shredded once ``retention_days`` have passed.

The service sweeps at start and then every hour of its clock (:func:`run_sweeps`); a sweep
(:func:`shred_expired`) shreds, in the vault, every case the API's view shows resolved for at
least the retention, on the service's clock. Open, failed and resolving cases are never
touched, whatever their age. A case's resolution time is when its dispatcher applied the
resolution; a state written before it kept that time falls back to its last tick, an earlier
instant, so such a case is shredded up to one tick interval early rather than late.

Sweeping by the hour, rather than arming a timer per case, keeps the rule stateless: a service
that was down when a case's time came shreds it at its next start. Police may also shred a
resolved case at once through the API.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from dispatch.cases import CaseState
from dispatch.clock import Clock
from dispatch.vault import Vault

logger = logging.getLogger(__name__)

SWEEP_EVERY = timedelta(hours=1)


def resolved_at(state: CaseState) -> datetime | None:
    """When ``state`` was resolved, or None while it is not."""
    if state.status != "resolved":
        return None
    return state.resolved_at or state.last_tick_at or state.reported_at


def past_retention(states: Iterable[CaseState], now: datetime, retention_days: int) -> list[str]:
    """The ids of the cases resolved at least ``retention_days`` before ``now``."""
    cutoff = now - timedelta(days=retention_days)
    return [
        state.case_id
        for state in states
        if (closed := resolved_at(state)) is not None and closed <= cutoff
    ]


def shred_expired(
    vault: Vault, states: Iterable[CaseState], now: datetime, retention_days: int
) -> list[str]:
    """Shred every case past its retention that is not shredded yet; the ids shredded now."""
    done = vault.shredded_cases()
    due = [
        case_id for case_id in past_retention(states, now, retention_days) if case_id not in done
    ]
    return [case_id for case_id in due if vault.shred(case_id, now)]


async def run_sweeps(clock: Clock, sweep: Callable[[], object]) -> None:
    """Call ``sweep`` now and after every :data:`SWEEP_EVERY` of ``clock``, until cancelled.

    A sweep that fails is logged and tried again at the next hour.
    """
    while True:
        try:
            sweep()
        except Exception:
            logger.warning("retention sweep failed; it is retried in an hour", exc_info=True)
        next_at = clock.now() + SWEEP_EVERY
        while clock.now() < next_at:
            await clock.sleep_until(next_at, max_wait_s=60)
