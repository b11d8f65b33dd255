"""CAP 1.2 XML for notices (OASIS Common Alerting Protocol Version 1.2, 1 July 2010).

A notice becomes one ``<alert>`` in the ``urn:oasis:names:tc:emergency:cap:1.2`` namespace:

- ``identifier`` is the notice id, ``sender`` the operator's sender, ``sent`` the notice's time;
  ``status`` Actual, ``scope`` Public, ``msgType`` Alert / Update / Cancel; Updates and Cancels
  carry ``references``, each earlier notice as ``sender,identifier,sent``, space-separated.
- One ``info`` per language: for a recipient, the case's text in its language (see
  :meth:`PublicCase.text_for`); without a recipient (``GET /v1/cases/{id}/alert.cap``), one
  ``info`` for each language the case gives. ``category`` is Rescue.
- Times carry an explicit offset and whole seconds (CAP §3.3.2): never ``Z``, and UTC as
  ``-00:00`` as the specification asks.
- The area is one ``area`` with a ``polygon`` for each part of the (multi)polygon, as CAP's
  ``lat,lon`` pairs, at most 6 decimals, closed, at least 4 points, and a ``circle`` for each
  circle of the notice. Parts split at the antimeridian stay separate polygons.

Covering, never under-covering. A polygon is grown outward by 2e-6 degrees (about 0.2 m)
before its coordinates are rounded to 6 decimals; rounding moves a vertex by at most 0.71e-6
degrees, so the rounded polygon still covers the area. A part with more than
``max_points_per_polygon`` vertices is simplified the same way: grown by a tolerance, then
Douglas-Peucker simplified with a smaller one, and kept only if it still covers the part; the
tolerance doubles until the part fits, and the part's minimum rotated rectangle (which always
covers) is the last resort. Holes are dropped: CAP polygons have none, and dropping them only
covers more. The cost is some overshoot on very large or ragged areas; the alternative, plain
simplification, would silently leave some people outside the alerted polygon.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from lxml import etree
from shapely.geometry import MultiPolygon, Polygon, box, shape
from shapely.geometry.base import BaseGeometry

from dispatch.notices.errors import CapEncodingError
from dispatch.notices.model import CaseText, NoticeBatch, NoticeReference, Recipient

__all__ = [
    "CAP_NAMESPACE",
    "notice_to_cap",
    "notice_to_cap_bytes",
    "cap_time",
    "area_to_cap_polygons",
]

CAP_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
_NSMAP = {None: CAP_NAMESPACE}
_GROW_DEG = 2e-6
_WORLD = box(-180.0, -90.0, 180.0, 90.0)
_MAX_SIMPLIFY_ROUNDS = 24


def cap_time(moment: datetime) -> str:
    """``moment`` as CAP's ``YYYY-MM-DDThh:mm:ss±hh:mm``; UTC is written ``-00:00``."""
    offset = moment.utcoffset()
    if offset is None:
        raise CapEncodingError(f"CAP times need a UTC offset, got the naive time {moment}")
    if offset % timedelta(minutes=1):
        raise CapEncodingError(f"CAP offsets are whole minutes, got {offset} in {moment}")

    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes <= 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{moment:%Y-%m-%dT%H:%M:%S}{sign}{hours:02d}:{mins:02d}"


def _reference(ref: NoticeReference) -> str:
    return f"{ref.sender},{ref.identifier},{cap_time(ref.sent)}"


def _grow(part: Polygon, by_deg: float) -> BaseGeometry:
    """``part`` without holes, grown outward by ``by_deg`` and kept within lon/lat bounds."""
    grown = Polygon(part.exterior).buffer(by_deg, join_style="mitre", mitre_limit=2.0)
    return grown.intersection(_WORLD)


def _polygons_of(geometry: BaseGeometry) -> list[Polygon]:
    if isinstance(geometry, Polygon):
        return [] if geometry.is_empty else [geometry]
    if isinstance(geometry, MultiPolygon):
        return [part for part in geometry.geoms if not part.is_empty]
    # A clip or buffer may return a collection; keep its polygonal pieces.
    pieces: list[Polygon] = []
    for sub in getattr(geometry, "geoms", []):
        pieces.extend(_polygons_of(sub))
    return pieces


def _covering_part(part: Polygon, max_points: int) -> list[Polygon]:
    """Polygons that together cover ``part``, each with at most ``max_points`` vertices."""
    covering = _polygons_of(_grow(part, _GROW_DEG))
    if all(len(piece.exterior.coords) <= max_points for piece in covering):
        return covering

    # Too many vertices: grow by a tolerance, simplify with less, keep it only if it covers.
    minx, miny, maxx, maxy = part.bounds
    tolerance = max(maxx - minx, maxy - miny) / max(max_points, 4) / 4 or _GROW_DEG
    for _ in range(_MAX_SIMPLIFY_ROUNDS):
        grown = _grow(part, tolerance)
        simplified = grown.simplify(tolerance / 2, preserve_topology=True)
        pieces = _polygons_of(simplified.buffer(_GROW_DEG, join_style="mitre").intersection(_WORLD))
        if (
            pieces
            and all(len(piece.exterior.coords) <= max_points for piece in pieces)
            and MultiPolygon(pieces).covers(part)
        ):
            return pieces
        tolerance *= 2

    rectangle = part.minimum_rotated_rectangle.buffer(_GROW_DEG, join_style="mitre")
    return _polygons_of(rectangle.intersection(_WORLD))


def _ring_to_cap(part: Polygon) -> str:
    points = []
    for lon, lat in part.exterior.coords:
        points.append(f"{_decimal(lat)},{_decimal(lon)}")
    if points[0] != points[-1]:
        points.append(points[0])
    return " ".join(points)


def _decimal(value: float) -> str:
    text = f"{round(value, 6):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def area_to_cap_polygons(
    area: dict[str, Any], max_points_per_polygon: int = 500, max_points: int = 5_000
) -> list[str]:
    """CAP ``polygon`` strings covering a GeoJSON Polygon or MultiPolygon, one per part.

    An area of many parts shares ``max_points`` among them: each part then gets at most
    ``max_points // parts`` points (never fewer than 5), so the message stays bounded however
    ragged the area.
    """
    if max_points_per_polygon < 5:
        raise CapEncodingError(
            f"max_points_per_polygon must be at least 5, got {max_points_per_polygon}"
        )
    try:
        geometry = shape(area)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CapEncodingError(f"the notice's area is not valid GeoJSON: {exc}") from exc

    parts = _polygons_of(geometry)
    per_part = min(max_points_per_polygon, max(5, max_points // max(len(parts), 1)))
    polygons: list[str] = []
    for part in parts:
        for piece in _covering_part(part, per_part):
            ring = _ring_to_cap(piece)
            if ring.count(" ") >= 3:
                polygons.append(ring)
    if not polygons:
        raise CapEncodingError("the notice's area has no polygon with at least 4 points")
    return polygons


def _info(parent: etree._Element, batch: NoticeBatch, text: CaseText, polygons: list[str]) -> None:
    case = batch.case
    info = etree.SubElement(parent, _q("info"))
    _add(info, "language", text.language)
    _add(info, "category", "Rescue")
    _add(info, "event", case.event)
    _add(info, "responseType", "AllClear" if batch.msg_type == "Cancel" else "Monitor")
    _add(info, "urgency", "Past" if batch.msg_type == "Cancel" else case.urgency)
    _add(info, "severity", case.severity)
    _add(info, "certainty", "Observed" if batch.msg_type == "Cancel" else case.certainty)
    if case.last_seen_at is not None:
        _add(info, "onset", cap_time(case.last_seen_at))
    if case.expires is not None:
        _add(info, "expires", cap_time(case.expires))
    _add(info, "senderName", batch.sender)
    _add(info, "headline", text.headline)
    _add(info, "description", text.description)
    if text.instruction:
        _add(info, "instruction", text.instruction)
    if case.web:
        _add(info, "web", case.web)
    if case.contact:
        _add(info, "contact", case.contact)
    for name, value in (("case_id", batch.case_id), ("category", case.category)):
        parameter = etree.SubElement(info, _q("parameter"))
        _add(parameter, "valueName", f"wayhome:{name}")
        _add(parameter, "value", value)

    area = etree.SubElement(info, _q("area"))
    _add(area, "areaDesc", f"Search area of case {batch.case_id}")
    for polygon in polygons:
        _add(area, "polygon", polygon)
    for circle in batch.circles:
        _add(area, "circle", f"{_decimal(circle.lat)},{_decimal(circle.lon)} {circle.radius_km:g}")


def _q(tag: str) -> str:
    return f"{{{CAP_NAMESPACE}}}{tag}"


def _add(parent: etree._Element, tag: str, text: str) -> etree._Element:
    element = etree.SubElement(parent, _q(tag))
    element.text = text
    return element


def notice_to_cap(
    batch: NoticeBatch,
    recipient: Recipient | None = None,
    *,
    max_points_per_polygon: int = 500,
    polygons: list[str] | None = None,
) -> etree._Element:
    """The CAP 1.2 ``<alert>`` of ``batch``: in ``recipient``'s language, or all the case's.

    ``polygons`` lets a caller rendering many recipients of one batch encode the area once
    (:func:`area_to_cap_polygons`) and pass it in.
    """
    if polygons is None:
        polygons = area_to_cap_polygons(batch.area, max_points_per_polygon)

    alert = etree.Element(_q("alert"), nsmap=_NSMAP)
    _add(alert, "identifier", batch.notice_id)
    _add(alert, "sender", batch.sender)
    _add(alert, "sent", cap_time(batch.sent))
    _add(alert, "status", "Actual")
    _add(alert, "msgType", batch.msg_type)
    _add(alert, "scope", "Public")

    references = batch.references_for(recipient) if recipient is not None else batch.references
    if batch.msg_type != "Alert":
        if not references:
            raise CapEncodingError(
                f"a CAP {batch.msg_type} must reference the notices it changes, got none"
            )
        _add(alert, "references", " ".join(_reference(ref) for ref in references))

    texts = [batch.case.text_for(recipient.language)] if recipient else list(batch.case.texts)
    for text in texts:
        _info(alert, batch, text, polygons)
    return alert


def notice_to_cap_bytes(
    batch: NoticeBatch, recipient: Recipient | None = None, **kwargs: Any
) -> bytes:
    """The CAP 1.2 document of ``batch`` as UTF-8 bytes with an XML declaration."""
    alert = notice_to_cap(batch, recipient, **kwargs)
    return etree.tostring(alert, xml_declaration=True, encoding="UTF-8", pretty_print=True)
