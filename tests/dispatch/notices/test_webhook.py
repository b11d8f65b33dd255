"""Webhook delivery: Standard Webhooks signatures and the retry schedule, on a real receiver."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from dispatch.notices.signing import derived_secrets, webhook_secret_for
from dispatch.notices.webhook import RetryPolicy, WebhookSender, signed_headers
from tests.dispatch.notices.receiver import Receiver, ReceiverServer

MASTER_KEY = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 12, 3, 10, 0, 0, tzinfo=UTC)


class Sleeps:
    """Records the delays asked for instead of waiting."""

    def __init__(self) -> None:
        self.delays_s: list[float] = []

    async def __call__(self, delay_s: float) -> None:
        self.delays_s.append(delay_s)


def sender(sleeps: Sleeps, **policy: float) -> WebhookSender:
    return WebhookSender(
        derived_secrets(MASTER_KEY),
        retry=RetryPolicy(**policy),
        clock=lambda: datetime.now(UTC),
        sleep=sleeps,
        draw=lambda: 1.0,
    )


def test_a_signature_verifies_with_the_subscribers_secret() -> None:
    secret = webhook_secret_for(MASTER_KEY, "sub-1")
    body = b'{"type":"Alert"}'
    headers = signed_headers(secret, "ntc_1", datetime.now(UTC), body)
    assert Webhook(secret).verify(body, headers) == {"type": "Alert"}


def test_a_signature_does_not_verify_with_another_subscribers_secret() -> None:
    body = b'{"type":"Alert"}'
    headers = signed_headers(webhook_secret_for(MASTER_KEY, "sub-1"), "ntc_1", NOW, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhook_secret_for(MASTER_KEY, "sub-2")).verify(body, headers)


def test_a_short_master_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes, got 5"):
        derived_secrets(b"short")


async def test_a_delivered_webhook_carries_a_verifiable_signature_and_the_delivery_id() -> None:
    sleeps = Sleeps()
    with ReceiverServer() as receiver:
        async with sender(sleeps) as webhooks:
            result = await webhooks.send(receiver.url, "ntc_abc", "sub-1", b'{"n":1}')
    assert result.delivered and result.attempts == 1 and sleeps.delays_s == []
    (request,) = receiver.requests
    assert request.headers["webhook-id"] == "ntc_abc"
    secret = webhook_secret_for(MASTER_KEY, "sub-1")
    assert Webhook(secret).verify(request.body, request.headers) == {"n": 1}


async def test_a_failing_receiver_is_retried_with_growing_backoff_until_it_accepts() -> None:
    sleeps = Sleeps()
    with ReceiverServer(Receiver(fail_first=3, fail_status=503)) as receiver:
        async with sender(sleeps, attempts=5, base_ms=100, cap_ms=250) as webhooks:
            result = await webhooks.send(receiver.url, "ntc_retry", "sub-1", b"{}")
    assert result.delivered and result.attempts == 4
    assert sleeps.delays_s == [0.1, 0.2, 0.25]  # base * 2**n, capped; the draw is 1.0 here
    assert receiver.attempts["ntc_retry"] == 4
    assert {r.headers["webhook-id"] for r in receiver.requests} == {"ntc_retry"}


async def test_a_receiver_that_never_accepts_exhausts_the_attempts() -> None:
    sleeps = Sleeps()
    with ReceiverServer(Receiver(fail_first=99, fail_status=500)) as receiver:
        async with sender(sleeps, attempts=3, base_ms=10, cap_ms=1000) as webhooks:
            result = await webhooks.send(receiver.url, "ntc_x", "sub-1", b"{}")
    assert not result.delivered and result.attempts == 3 and result.status == 500
    assert "after 3 attempts" in result.reason
    assert len(sleeps.delays_s) == 2


async def test_a_retry_after_lengthens_the_delay_up_to_the_cap() -> None:
    sleeps = Sleeps()
    failing = Receiver(fail_first=2, fail_status=429, retry_after_s=3)
    with ReceiverServer(failing) as receiver:
        async with sender(sleeps, attempts=3, base_ms=10, cap_ms=2000) as webhooks:
            result = await webhooks.send(receiver.url, "ntc_x", "sub-1", b"{}")
    assert result.delivered and sleeps.delays_s == [2.0, 2.0]


@pytest.mark.parametrize("status", [400, 401, 404, 410])
async def test_a_refusal_that_is_not_transient_is_not_retried(status: int) -> None:
    sleeps = Sleeps()
    with ReceiverServer(Receiver(fail_first=99, fail_status=status)) as receiver:
        async with sender(sleeps, attempts=5) as webhooks:
            result = await webhooks.send(receiver.url, "ntc_x", "sub-1", b"{}")
    assert not result.delivered and result.attempts == 1 and sleeps.delays_s == []
    assert "not retried" in result.reason


@pytest.mark.parametrize("status", [408, 429])
async def test_throttling_and_timeouts_are_retried(status: int) -> None:
    sleeps = Sleeps()
    with ReceiverServer(Receiver(fail_first=1, fail_status=status)) as receiver:
        async with sender(sleeps, attempts=3) as webhooks:
            result = await webhooks.send(receiver.url, "ntc_x", "sub-1", b"{}")
    assert result.delivered and result.attempts == 2


async def test_an_unreachable_receiver_is_retried_then_given_up() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps = Sleeps()
    async with sender(sleeps, attempts=2, base_ms=1, cap_ms=1) as webhooks:
        result = await webhooks.send(f"http://127.0.0.1:{port}/h", "ntc_x", "sub-1", b"{}")
    assert not result.delivered and "could not be reached" in result.reason
    assert len(sleeps.delays_s) == 1


@given(
    retry=st.integers(min_value=0, max_value=40),
    draw=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_full_jitter_delays_stay_within_zero_and_the_capped_exponential(
    retry: int, draw: float
) -> None:
    policy = RetryPolicy(base_ms=200, cap_ms=5000)
    delay = policy.delay_ms(retry, draw)
    assert 0 <= delay <= min(5000, 200 * 2**retry)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"attempts": 0}, "attempts must be at least 1"),
        ({"base_ms": 10, "cap_ms": 5}, "base_ms must be within 0..cap_ms"),
        ({"timeout_ms": 0}, "timeout_ms must be positive"),
    ],
)
def test_a_retry_policy_that_makes_no_sense_is_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**fields)
