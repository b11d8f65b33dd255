"""Errors of the notices package.

One root, so a caller can catch everything that went wrong while building, rendering or
delivering a notice::

    NoticeError(ValueError)
    ├── CapEncodingError      the notice cannot be written as valid CAP 1.2
    └── DeliveryError         a notice could not be delivered (carries a reason, never a payload)
        └── DedupeStoreError  the delivery store could not be opened or written

Messages are sentences that say what was wrong and what would be right.
"""

from __future__ import annotations


class NoticeError(ValueError):
    """Root of every error raised by ``dispatch.notices``."""


class CapEncodingError(NoticeError):
    """The notice cannot be encoded as a CAP 1.2 message."""


class DeliveryError(NoticeError):
    """A notice could not be delivered to its recipient."""


class DedupeStoreError(DeliveryError):
    """The store of delivered notices could not be opened, read or written."""
