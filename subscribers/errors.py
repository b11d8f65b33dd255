"""Errors raised by the subscribers package.

One root, so a caller can catch everything this package refuses with one clause::

    SubscriberError (ValueError)
    ├── InvalidSubscriber      a subscriber, position or area that breaks a rule
    ├── ImportFailed           a bulk import file that cannot be read at all
    └── RegistryUnavailable    a store that cannot be opened or reached

Messages are sentences that say what was wrong and what would be right. They never quote an
exact subscriber position: positions are personal data.
"""

from __future__ import annotations

from typing import Any

import shapely

__all__ = [
    "ImportFailed",
    "InvalidSubscriber",
    "RegistryUnavailable",
    "SubscriberError",
    "invalidity_reason",
]


class SubscriberError(ValueError):
    """Root of every error the subscribers package raises."""


class InvalidSubscriber(SubscriberError):
    """A subscriber, a position or a watched area that breaks one of the registry's rules."""


class ImportFailed(SubscriberError):
    """A bulk import file that cannot be read at all (rows that fail are reported, not raised)."""


class RegistryUnavailable(SubscriberError):
    """A store that cannot be opened or reached."""


def invalidity_reason(geometry: Any) -> str:
    """Why shapely finds ``geometry`` invalid, in words only: the position it names is dropped."""
    return str(shapely.is_valid_reason(geometry)).split("[", 1)[0].strip()
