"""Builders of cases, batches and recipients shared by the notices tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from dispatch.notices import CaseText, NoticeBatch, NoticeReference, PublicCase, Recipient

CST = timezone(timedelta(hours=8))
SENT = datetime(2026, 12, 3, 18, 30, 5, 123456, tzinfo=CST)
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[113.5, 34.5], [114.0, 34.5], [114.0, 35.0], [113.5, 35.0], [113.5, 34.5]]],
}


def public_case(case_id: str = "case-1", **fields: Any) -> PublicCase:
    texts = (
        CaseText(
            language="en",
            headline="Missing child: girl, 7, red coat",
            description="Last seen near Zhengzhou East station wearing a red coat.",
            instruction="Call 110 if you see her. Do not approach the vehicle.",
        ),
        CaseText(
            language="zh-CN",
            headline="儿童走失：女孩，7岁，红色外套",
            description="最后出现在郑州东站附近，身穿红色外套。",
        ),
    )
    values: dict[str, Any] = {
        "case_id": case_id,
        "category": "lost_child",
        "texts": texts,
        "contact": "110",
        "web": "https://example.org/cases/case-1",
        "last_seen_at": SENT - timedelta(hours=1),
    }
    values.update(fields)
    return PublicCase(**values)


def notice_batch(
    recipients: list[Recipient] | tuple[Recipient, ...] = (),
    *,
    msg_type: str = "Alert",
    tick: int = 0,
    case_id: str = "case-1",
    area: dict[str, Any] | None = None,
    references: tuple[NoticeReference, ...] | None = None,
    **fields: Any,
) -> NoticeBatch:
    if references is None and msg_type != "Alert":
        references = (
            NoticeReference(identifier=f"urn:wayhome:notice:{case_id}:0:alert", sent=SENT),
        )
    values: dict[str, Any] = {
        "case_id": case_id,
        "tick": tick,
        "msg_type": msg_type,
        "sent": SENT + timedelta(minutes=tick),
        "case": public_case(case_id),
        "area": area or SQUARE,
        "references": references or (),
        "recipients": tuple(recipients),
    }
    values.update(fields)
    return NoticeBatch(**values)


def webhook_recipients(url: str, n: int, prefix: str = "sub") -> list[Recipient]:
    return [
        Recipient(subscriber_id=f"{prefix}-{i}", channel="webhook", target=url, language="en")
        for i in range(n)
    ]
