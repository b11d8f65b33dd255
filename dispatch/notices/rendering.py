"""The JSON form of a notice, as one recipient receives it.

Webhooks post it, the SSE stream sends it as an event's data, and platforms read it from their
Kafka topic. It is built only from a :class:`~dispatch.notices.model.NoticeBatch`, whose models
have no place for a case's private fields, and it picks the case's text in the recipient's
language (its primary language next, the case's first text last).
"""

from __future__ import annotations

import json
from typing import Any

from dispatch.notices.model import NoticeBatch, Recipient, sent_to_json

__all__ = ["notice_for", "NoticeRenderer", "NOTICE_SCHEMA_VERSION"]

NOTICE_SCHEMA_VERSION = 1
"""Version of the JSON notice's shape; bumped on any change a receiver could notice."""


def notice_for(batch: NoticeBatch, recipient: Recipient) -> dict[str, Any]:
    """The JSON notice of ``batch`` for ``recipient``: a plain dict, ready for ``json.dumps``."""
    case = batch.case
    text = case.text_for(recipient.language)

    notice: dict[str, Any] = {
        "schema": NOTICE_SCHEMA_VERSION,
        "id": batch.delivery_id(recipient),
        "notice_id": batch.notice_id,
        "type": batch.msg_type,
        "case_id": batch.case_id,
        "tick": batch.tick,
        "sender": batch.sender,
        "sent": sent_to_json(batch.sent),
        "subscriber_id": recipient.subscriber_id,
        "language": text.language,
        "category": case.category,
        "event": case.event,
        "urgency": case.urgency,
        "severity": case.severity,
        "certainty": case.certainty,
        "headline": text.headline,
        "description": text.description,
        "area": {"type": "Feature", "geometry": batch.area, "properties": {}},
    }

    # Optional fields appear only when the case gives them.
    if text.instruction:
        notice["instruction"] = text.instruction
    if case.contact:
        notice["contact"] = case.contact
    if case.web:
        notice["web"] = case.web
    if case.last_seen_at:
        notice["last_seen_at"] = sent_to_json(case.last_seen_at)
    if case.expires:
        notice["expires"] = sent_to_json(case.expires)
    if batch.circles:
        notice["circles"] = [circle.model_dump() for circle in batch.circles]
    references = batch.references_for(recipient)
    if references:
        notice["references"] = [
            {"sender": ref.sender, "identifier": ref.identifier, "sent": sent_to_json(ref.sent)}
            for ref in references
        ]
    return notice


class NoticeRenderer:
    """Renders the JSON notices of one batch fast: its shared part is serialized once per language.

    A batch's area geometry can hold thousands of coordinates; serializing it again for each of
    thousands of recipients would cost more than delivering them. :meth:`body` splices each
    recipient's own fields in front of the shared JSON, and gives the same document as
    ``json.dumps(notice_for(batch, recipient))``.
    """

    _OWN_FIELDS = ("id", "subscriber_id", "references")

    def __init__(self, batch: NoticeBatch) -> None:
        self.batch = batch
        self._shared: dict[str, bytes] = {}

    def _shared_for(self, language: str) -> bytes:
        text = self.batch.case.text_for(language)
        shared = self._shared.get(text.language)
        if shared is None:
            probe = Recipient(subscriber_id="-", channel="sse", language=text.language)
            notice = notice_for(self.batch, probe)
            for field in self._OWN_FIELDS:
                notice.pop(field, None)
            shared = json.dumps(notice, ensure_ascii=False, separators=(",", ":")).encode()
            self._shared[text.language] = shared
        return shared

    def body(self, recipient: Recipient, delivery_id: str | None = None) -> bytes:
        """The JSON notice for ``recipient`` as UTF-8 bytes (``delivery_id`` if computed)."""
        own = (
            f'{{"id":"{delivery_id or self.batch.delivery_id(recipient)}",'
            f'"subscriber_id":{json.dumps(recipient.subscriber_id, ensure_ascii=False)},'
        )
        references = self.batch.references_for(recipient)
        if references:
            listed = [
                {"sender": ref.sender, "identifier": ref.identifier, "sent": sent_to_json(ref.sent)}
                for ref in references
            ]
            own += f'"references":{json.dumps(listed, separators=(",", ":"))},'
        return own.encode() + self._shared_for(recipient.language)[1:]
