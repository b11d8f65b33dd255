"""Webhook signing secrets, per the Standard Webhooks specification.

Each webhook subscriber verifies our signatures with a secret of its own, ``whsec_`` followed
by base64 of the key bytes. Rather than keep a table of secrets (one more store to back up and
leak), a subscriber's secret is derived from the operator's master key:
``HMAC-SHA256(master_key, "wayhome webhook secret\\n" + subscriber_id)``. The API hands the
secret to the subscriber when it registers (:func:`webhook_secret_for`); the delivery worker
derives the same one when it signs. Rotating the master key rotates every secret at once; a
deployment that needs per-subscriber rotation passes its own :data:`SecretSource` instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from functools import lru_cache

__all__ = ["SecretSource", "webhook_secret_for", "derived_secrets"]

SecretSource = Callable[[str], str]
"""Gives the ``whsec_...`` secret of a subscriber id."""

_MIN_MASTER_KEY_BYTES = 16


def webhook_secret_for(master_key: bytes, subscriber_id: str) -> str:
    """The Standard Webhooks secret (``whsec_...``) of ``subscriber_id`` under ``master_key``."""
    if len(master_key) < _MIN_MASTER_KEY_BYTES:
        raise ValueError(
            f"the webhook master key must be at least {_MIN_MASTER_KEY_BYTES} bytes, "
            f"got {len(master_key)}"
        )
    key = hmac.new(
        master_key, b"wayhome webhook secret\n" + subscriber_id.encode(), hashlib.sha256
    ).digest()
    return "whsec_" + base64.b64encode(key).decode()


def derived_secrets(master_key: bytes, cache_size: int = 65_536) -> SecretSource:
    """A :data:`SecretSource` deriving each subscriber's secret from ``master_key``.

    The last ``cache_size`` secrets are kept, since a subscriber inside an open case's area
    gets its Alert, Updates and Cancel from the same worker.
    """
    webhook_secret_for(master_key, "")  # fail now, not at the first delivery, on a short key

    @lru_cache(maxsize=cache_size)
    def secret(subscriber_id: str) -> str:
        return webhook_secret_for(master_key, subscriber_id)

    return secret
