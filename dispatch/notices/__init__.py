"""Notices: the model carried on the ``notices`` topic, its JSON and CAP 1.2 forms, and delivery.

- :mod:`dispatch.notices.model` — :class:`NoticeBatch` (one Kafka message: a notice and its
  recipients), :class:`Recipient`, :class:`PublicCase`, the stable notice and delivery ids.
- :mod:`dispatch.notices.rendering` — :func:`notice_for`, the JSON notice one recipient gets.
- :mod:`dispatch.notices.cap` — the CAP 1.2 XML form.
- :mod:`dispatch.notices.delivery` — the delivery worker: webhooks, SSE, platforms' topics.
- :mod:`dispatch.notices.store` — the dedupe store (SQLite, PostgreSQL) and the delivery
  guarantee; :mod:`dispatch.notices.webhook` — signed webhooks and their retries;
  :mod:`dispatch.notices.signing` — subscribers' webhook secrets;
  :mod:`dispatch.notices.sse` — the SSE hub and its FastAPI router.
"""

from dispatch.notices.errors import CapEncodingError, DedupeStoreError, DeliveryError, NoticeError
from dispatch.notices.model import (
    CaseText,
    ChannelKind,
    Circle,
    MsgType,
    NoticeBatch,
    NoticeReference,
    PublicCase,
    Recipient,
    delivery_identifier,
    notice_identifier,
)
from dispatch.notices.rendering import notice_for

__all__ = [
    "CapEncodingError",
    "CaseText",
    "ChannelKind",
    "Circle",
    "DedupeStoreError",
    "DeliveryError",
    "MsgType",
    "NoticeBatch",
    "NoticeError",
    "NoticeReference",
    "PublicCase",
    "Recipient",
    "delivery_identifier",
    "notice_for",
    "notice_identifier",
]
