"""Transactional clients as the tests use them: producers, readers per isolation level."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from brokers.coordinator.offsets_topic import OFFSETS_TOPIC, partition_for

PARTITIONS = 3


def txn_producer(bootstrap: str, transactional_id: str, **config: object) -> Producer:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            "linger.ms": 5,
            **config,
        }
    )
    producer.init_transactions(30)
    return producer


def send_all(producer: Producer, topic: str, values: Iterable[bytes]) -> None:
    """One record per value, spread over every partition by their index."""
    for i, value in enumerate(values):
        producer.produce(topic, value=value, partition=i % PARTITIONS)
    producer.poll(0)


def read(
    bootstrap: str,
    topic: str,
    isolation: str,
    until: int | None = None,
    timeout_s: float = 30,
) -> list[bytes]:
    """Every value from the beginning of every partition: until `until` values arrive, or
    (with `until` None) until each partition has reached its end for this isolation level."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"txn-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    values: list[bytes] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if until is not None and len(values) >= until:
                break
            if until is None and len(at_end) == PARTITIONS:
                break
            for message in consumer.consume(500, 0.2):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                    continue
                assert error is None, error
                at_end.discard(message.partition())
                values.append(message.value())
    finally:
        consumer.close()
    return values


def coordinator_of(admin: AdminClient, transactional_id: str) -> int:
    """The broker leading the id's `__consumer_offsets` partition: its coordinator."""
    partitions = admin.list_topics(OFFSETS_TOPIC, timeout=10).topics[OFFSETS_TOPIC].partitions
    return int(partitions[partition_for(transactional_id, len(partitions))].leader)
