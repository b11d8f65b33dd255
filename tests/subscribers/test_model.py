"""The subscriber model refuses bad input with a sentence and keeps positions out of reprs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from subscribers import InvalidSubscriber, subscriber_from_dict

SSE = {"kind": "sse"}


def test_a_device_with_a_position_is_accepted():
    sub = subscriber_from_dict(
        {
            "id": "p",
            "kind": "device",
            "lon": 113.6,
            "lat": 34.7,
            "channel": SSE,
            "fix_time": datetime(2026, 5, 1, tzinfo=UTC),
        }
    )
    assert (sub.lon, sub.lat) == (113.6, 34.7)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"kind": "device", "lon": 113.6, "lat": 91.2},
            "latitude must be within -90..90, got 91.2",
        ),
        (
            {"kind": "device", "lon": 181.0, "lat": 1.0},
            "longitude must be within -180..180, got 181.0",
        ),
        ({"kind": "device", "lon": 1.0}, "a device needs both lon and lat"),
        ({"kind": "device", "lon": 1.0, "lat": True}, "lat must be a number of degrees, got True"),
        (
            {"kind": "device", "lon": False, "lat": 1.0},
            "lon must be a number of degrees, got False",
        ),
        ({"kind": "area"}, "a watched area needs an area"),
        (
            {
                "kind": "area",
                "area": {
                    "type": "Polygon",
                    "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
                },
            },
            "the area's boundary crosses itself",
        ),
        (
            {
                "kind": "area",
                "area": {
                    "type": "Polygon",
                    "coordinates": [[[-100, 0], [100, 0], [100, 10], [-100, 10], [-100, 0]]],
                },
            },
            "must span less than 180 degrees of longitude, got one spanning 200",
        ),
        (
            {
                "kind": "platform",
                "area": {
                    "type": "MultiPolygon",
                    "coordinates": [
                        [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]],
                        [[[-90, 20], [90, 20], [90, 30], [-90, 30], [-90, 20]]],
                    ],
                },
            },
            "must span less than 180 degrees of longitude, got one spanning 180",
        ),
        (
            {"kind": "area", "area": {"type": "Point", "coordinates": [0, 0]}},
            "must be a GeoJSON Polygon or MultiPolygon",
        ),
        ({"kind": "platform", "lon": 1.0, "lat": 1.0}, "a platform has no position"),
        (
            {"kind": "platform", "channel": {"kind": "webhook", "url": "ftp://x.example.org"}},
            "a webhook url must be an http or https url with a host, got 'ftp://x.example.org'",
        ),
        ({"kind": "platform", "channel": {"kind": "webhook"}}, "a webhook channel needs a url"),
        (
            {"kind": "platform", "channel": {"kind": "kafka", "topic": "no spaces"}},
            "a kafka channel needs a topic",
        ),
        (
            {"kind": "platform", "channel": {"kind": "sse", "url": "https://a.example.org/h"}},
            "an sse channel takes no url, only a webhook does",
        ),
        (
            {
                "kind": "platform",
                "channel": {"kind": "kafka", "topic": "t", "url": "https://a.example.org/h"},
            },
            "a kafka channel takes no url, only a webhook does",
        ),
        (
            {
                "kind": "platform",
                "channel": {"kind": "webhook", "url": "https://a.example.org/h", "topic": "t"},
            },
            "a webhook channel takes no topic, only a kafka one does",
        ),
        (
            {"kind": "platform", "channel": {"kind": "sse", "topic": "t"}},
            "an sse channel takes no topic, only a kafka one does",
        ),
        ({"kind": "platform", "language": "english!"}, "language must be a language tag"),
        (
            {"kind": "platform", "created_at": datetime(2026, 5, 1)},
            "created_at must carry a time zone offset",
        ),
        ({"kind": "robot"}, "kind"),
    ],
)
def test_bad_subscribers_are_refused_with_a_sentence(fields, message):
    data = {"id": "s", "channel": SSE, **fields}
    with pytest.raises(InvalidSubscriber, match=message.replace("(", r"\(").replace(")", r"\)")):
        subscriber_from_dict(data)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://a.example.org/h\nHost: evil", "no whitespace or control characters"),
        ("https://a.example.org/h\r\nX: y", "no whitespace or control characters"),
        (" https://a.example.org/h", "no whitespace or control characters"),
        ("https://a.example.org/h\t", "no whitespace or control characters"),
        ("https://exa mple.org/h", "no whitespace or control characters"),
        ("https://a.example.org/h\u2028", "no whitespace or control characters"),
        ("https://a.example.org/\x7f", "no whitespace or control characters"),
        ("https://a.example.org/\x00", "no whitespace or control characters"),
        ("https://[::1/h", "must be a well-formed url"),
        ("https://xn--/h", "must be a well-formed url"),
        ("https:///h", "an http or https url with a host"),
        ("mailto:someone@example.org", "an http or https url with a host"),
        ("ftp://a.example.org/h", "an http or https url with a host"),
        ("https://a.example.org:99999/h", "port must be within 1..65535, got 99999"),
        ("https://a.example.org:0/h", "port must be within 1..65535, got 0"),
    ],
)
def test_malformed_webhook_urls_are_refused_with_a_sentence(url, message):
    data = {"id": "s", "kind": "platform", "channel": {"kind": "webhook", "url": url}}
    with pytest.raises(InvalidSubscriber, match=message):
        subscriber_from_dict(data)


@pytest.mark.parametrize(
    "url",
    [
        "https://a.example.org/h",
        "http://a.example.org:8080/hooks/alerts?token=abc",
        "https://[2001:db8::1]/h",
        "https://bücher.example/h",
    ],
)
def test_well_formed_webhook_urls_are_accepted(url):
    data = {"id": "s", "kind": "platform", "channel": {"kind": "webhook", "url": url}}
    assert subscriber_from_dict(data).channel.url == url


def test_repr_hides_positions_and_areas():
    sub = subscriber_from_dict(
        {"id": "p", "kind": "device", "lon": 113.612345, "lat": 34.754321, "channel": SSE}
    )
    assert "113.61" not in repr(sub)
    assert "34.75" not in repr(sub)
    assert "113.61" not in str(sub)
