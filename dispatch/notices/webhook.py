"""Webhook delivery per the Standard Webhooks specification, with retries.

Every POST carries the JSON notice and three headers: ``webhook-id`` (the stable delivery id,
the same on every retry and every redelivery, for the receiver to dedupe on),
``webhook-timestamp`` (seconds since the epoch, of this attempt) and ``webhook-signature``
(``v1,`` + base64 HMAC-SHA256 over ``id.timestamp.body``, made by the ``standardwebhooks``
package with the subscriber's secret). A receiver checks it with any Standard Webhooks
library, in Python ``standardwebhooks.Webhook(secret).verify(body, headers)``, and answers 2xx
only once it has stored the notice, remembering the ``webhook-id`` to drop a resend.

An attempt succeeds on a 2xx. It is retried on a connection error, a timeout, 408, 425, 429
and 5xx, after a delay drawn with "full jitter": uniformly in ``[0, min(cap, base * 2**n)]``
for the n-th retry, which spreads a crowd of retries to a recovering receiver instead of
sending them in waves. A ``Retry-After`` in seconds on the answer lengthens the delay to it, up
to the cap. Any other status (400, 401, 404, 410, ...) says the receiver will never
take this notice, and is not retried. When the attempts run out, or on such a refusal, the
delivery is parked on ``notices.dead`` by the caller with the reason.

Retries happen inside the worker's concurrency slot: a receiver that keeps failing holds one
slot for up to ``attempts`` delays (about a minute with the defaults) and delays its batch's
offset commit by as much. A separate retry topic would free the slot but reorder a subscriber's
notices; for a service whose notices are few and urgent, waiting is the better trade.

The sender posts to whatever URL the subscriber registered; refusing targets it must not reach
(loopback, private ranges, metadata services) is for the API to do when the subscriber
registers, where the refusal can be explained.

aiohttp is the client: on this workload (small signed POSTs to many keep-alive connections) it
sustains several times the throughput of httpx's async client.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from math import floor

import aiohttp
from standardwebhooks import Webhook

from dispatch.notices.signing import SecretSource

__all__ = ["RetryPolicy", "WebhookResult", "WebhookSender", "signed_headers"]

logger = logging.getLogger(__name__)

_RETRIED_STATUSES = frozenset({408, 425, 429})

USER_AGENT = "wayhome-delivery/1"
# aiohttp adds Accept, Accept-Encoding and its own User-Agent to every request unless told not
# to; a webhook needs none of them, and building them costs a fifth of a request's CPU.
_SKIPPED_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent")

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a webhook is retried."""

    attempts: int = 6
    base_ms: float = 500.0
    cap_ms: float = 30_000.0
    timeout_ms: float = 10_000.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if not 0 <= self.base_ms <= self.cap_ms:
            raise ValueError(
                f"base_ms must be within 0..cap_ms, "
                f"got base_ms={self.base_ms}, cap_ms={self.cap_ms}"
            )
        if self.timeout_ms <= 0:
            raise ValueError(f"timeout_ms must be positive, got {self.timeout_ms}")

    def delay_ms(self, retry: int, draw: float) -> float:
        """The delay before the ``retry``-th retry (0-based), given a uniform ``draw`` in [0, 1)."""
        ceiling = min(self.cap_ms, self.base_ms * (2**retry))
        return draw * ceiling


@dataclass(frozen=True)
class WebhookResult:
    """How one webhook delivery ended."""

    delivered: bool
    attempts: int
    reason: str
    status: int | None = None


def signed_headers(secret: str, delivery_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of ``body`` sent at ``at`` as ``delivery_id``."""
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(delivery_id, at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def _utc_now() -> datetime:
    return datetime.now(UTC)


class WebhookSender:
    """Posts signed notices to webhook URLs over one pooled aiohttp session.

    ``clock``, ``sleep`` and ``draw`` are injected so that tests can run the retry schedule
    without waiting, and check the delays it asked for.
    """

    def __init__(
        self,
        secrets: SecretSource,
        *,
        retry: RetryPolicy | None = None,
        max_connections: int = 64,
        clock: Clock = _utc_now,
        sleep: Sleep = asyncio.sleep,
        draw: Callable[[], float] = random.random,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self.secrets = secrets
        self.retry = retry or RetryPolicy()
        self.max_connections = max_connections
        self._clock = clock
        self._sleep = sleep
        self._draw = draw
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> WebhookSender:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the connection pool."""
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections, limit_per_host=self.max_connections
            )
            timeout = aiohttp.ClientTimeout(total=self.retry.timeout_ms / 1000)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                auto_decompress=False,
                skip_auto_headers=_SKIPPED_AUTO_HEADERS,
            )

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _attempt(
        self, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, float | None]:
        """One POST: its status, reason phrase and Retry-After in ms (when given in seconds)."""
        assert self._session is not None, "WebhookSender.start() must run before send()"
        async with self._session.post(url, data=body, headers=headers) as response:
            await response.read()
            retry_after = response.headers.get("Retry-After", "")
            retry_after_ms = float(retry_after) * 1000 if retry_after.isdigit() else None
            return response.status, response.reason or "", retry_after_ms

    async def send(
        self, url: str, delivery_id: str, subscriber_id: str, body: bytes
    ) -> WebhookResult:
        """Deliver ``body`` to ``url``, retrying as the policy allows; never raises for the wire."""
        secret = self.secrets(subscriber_id)
        reason = ""
        status: int | None = None
        retry_after_ms: float | None = None

        for attempt in range(1, self.retry.attempts + 1):
            headers = signed_headers(secret, delivery_id, self._clock(), body)
            try:
                status, text, retry_after_ms = await self._attempt(url, headers, body)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                status, retry_after_ms = None, None
                reason = f"the receiver could not be reached ({exc.__class__.__name__})"
            else:
                if 200 <= status < 300:
                    return WebhookResult(True, attempt, "delivered", status)
                reason = f"the receiver answered {status} {text}".rstrip()
                if status < 500 and status not in _RETRIED_STATUSES:
                    return WebhookResult(False, attempt, reason + ", which is not retried", status)

            if attempt < self.retry.attempts:
                delay_ms = self.retry.delay_ms(attempt - 1, self._draw())
                if retry_after_ms is not None:
                    # The receiver asked for a pause: honour it, up to the cap.
                    delay_ms = max(delay_ms, min(retry_after_ms, self.retry.cap_ms))
                logger.warning(
                    "webhook attempt failed delivery_id=%s attempt=%d reason=%r retry_in_ms=%.0f",
                    delivery_id,
                    attempt,
                    reason,
                    delay_ms,
                )
                await self._sleep(delay_ms / 1000)

        return WebhookResult(
            False, self.retry.attempts, f"{reason}, after {self.retry.attempts} attempts", status
        )
