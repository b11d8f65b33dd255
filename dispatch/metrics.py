"""Prometheus metrics of the service, served at ``GET /metrics``.

- ``wayhome_open_cases``: cases this process is ticking.
- ``wayhome_notices_total{msg_type}``: recipients of Alert, Update and Cancel notices put on
  Kafka (one per recipient, not per batch message).
- ``wayhome_notice_batches_total``: notice batch messages put on Kafka.
- ``wayhome_dispatches_total{kind}``: dispatches (tick, move, cancel), one log entry each.
- ``wayhome_dispatch_seconds``: from the start of a dispatch to its notices committed on Kafka.
- ``wayhome_delivery_latency_seconds``: from a notice's ``sent`` time to its delivery to one
  recipient (one observation per delivery, on the service's clock).
- ``wayhome_consumer_lag{topic}``: messages between a consumer's position and the end of the
  partitions it is assigned, summed per topic: the dispatcher's on ``cases`` and
  ``subscribers``, the delivery worker's on ``notices``, the recorder's on ``dispatches``.
- ``wayhome_dead_letters_total{topic}``: events parked on a dead-letter topic.

They live in one registry (not the process-global default), so two services in one test
process do not collide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer


class Metrics:
    """The service's metrics in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.open_cases = Gauge(
            "wayhome_open_cases", "Cases this process is ticking.", registry=self.registry
        )
        self.notices = Counter(
            "wayhome_notices",
            "Recipients of notices put on Kafka.",
            ["msg_type"],
            registry=self.registry,
        )
        self.notice_batches = Counter(
            "wayhome_notice_batches", "Notice batch messages put on Kafka.", registry=self.registry
        )
        self.dispatches = Counter(
            "wayhome_dispatches", "Dispatches by kind.", ["kind"], registry=self.registry
        )
        self.dispatch_seconds = Histogram(
            "wayhome_dispatch_seconds",
            "From the start of a dispatch to its notices committed on Kafka.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "wayhome_delivery_latency_seconds",
            "From a notice's sent time to its delivery.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "wayhome_consumer_lag",
            "Messages behind the end of the consumed partitions.",
            ["topic"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "wayhome_dead_letters",
            "Events parked on a dead-letter topic.",
            ["topic"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


async def consumer_lag(consumer: AIOKafkaConsumer, *, committed_only: bool = False) -> int:
    """Messages between ``consumer``'s position and the end of its assigned partitions.

    ``committed_only`` measures to the last stable offset, as a ``read_committed`` consumer
    sees the end of a partition that has transactions open.
    """
    lag = 0
    for tp in consumer.assignment():
        end = consumer.highwater(tp)
        if committed_only:
            end = consumer.last_stable_offset(tp) or end
        if end is not None:
            lag += max(0, end - await consumer.position(tp))
    return lag
