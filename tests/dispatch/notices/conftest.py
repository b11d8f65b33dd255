"""Fixtures shared by the notices tests."""

from __future__ import annotations

import pytest

from dispatch.notices import NoticeBatch, Recipient
from tests.dispatch.notices.builders import notice_batch


@pytest.fixture
def batch() -> NoticeBatch:
    return notice_batch(
        [
            Recipient(subscriber_id="app-1", channel="sse", language="zh-CN"),
            Recipient(subscriber_id="hook-1", channel="webhook", target="https://example.org/h"),
            Recipient(subscriber_id="plat-1", channel="kafka", target="partner.notices"),
        ]
    )
