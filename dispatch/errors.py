"""Errors of the dispatch service.

One root, so the API can map every failure to an HTTP status in one table
(:mod:`dispatch.api.errors`) and a worker can park what it cannot use::

    DispatchError(ValueError)
    ├── InvalidInput        the request or event is malformed or out of range      → 422
    ├── CaseNotFound        no case has that id                                      → 404
    ├── CaseConflict        the case exists already, or is closed                    → 409
    ├── SubscriberNotFound  no subscriber has that id                                → 404
    ├── Unauthenticated     no bearer token, or one wayhome does not know            → 401
    ├── Forbidden           the token's role may not do this                         → 403
    ├── Shredded            the case's private fields were crypto-shredded           → 410
    └── MalformedEvent      an event on a topic cannot be read (goes to dead letters)

Messages are sentences that say what was wrong and what would be right. They never carry a
case's private fields.
"""

from __future__ import annotations


class DispatchError(ValueError):
    """Root of every error raised by ``dispatch`` (notices has its own root)."""


class InvalidInput(DispatchError):
    """The request or event is malformed or out of range."""


class CaseNotFound(DispatchError):
    """No case has the given id."""


class CaseConflict(DispatchError):
    """The case already exists, or it is closed and cannot change any more."""


class SubscriberNotFound(DispatchError):
    """No subscriber has the given id."""


class Unauthenticated(DispatchError):
    """The request carries no bearer token, or one that wayhome does not know."""


class Forbidden(DispatchError):
    """The token's role does not allow this action."""


class Shredded(DispatchError):
    """The case's private fields were crypto-shredded: their key is gone for good."""


class MalformedEvent(DispatchError):
    """An event read from a topic cannot be decoded; it is parked on a dead-letter topic."""
