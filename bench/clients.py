"""Producing and consuming as fast as confluent-kafka goes, tuned as a user would tune it."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

PRODUCER_SETTINGS: dict[str, Any] = {
    "linger.ms": 5,
    "batch.size": 1_000_000,
    "queue.buffering.max.messages": 2_000_000,
    "queue.buffering.max.kbytes": 2_097_151,
    "enable.idempotence": False,
}
CONSUMER_SETTINGS: dict[str, Any] = {
    "fetch.queue.backoff.ms": 1,
    "queued.min.messages": 1_000_000,
    "fetch.max.bytes": 52_428_800,
    "max.partition.fetch.bytes": 10_485_760,
    "enable.auto.commit": False,
}


def produce(bootstrap: str, topic: str, count: int, size: int, acks: str) -> float:
    """Seconds to produce `count` records of `size` bytes and have them all acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, **PRODUCER_SETTINGS})
    payload = b"x" * size
    send = producer.produce
    started = time.perf_counter()
    for _ in range(count):
        try:
            send(topic, payload)
        except BufferError:
            producer.poll(0.001)
            send(topic, payload)
    if producer.flush(300):
        raise RuntimeError("records left undelivered")
    return time.perf_counter() - started


def consume(bootstrap: str, topic: str, partitions: int, count: int) -> float:
    """Seconds to read `count` records from the start of `topic`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", **CONSUMER_SETTINGS})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = 0
    started = time.perf_counter()
    deadline = started + 300
    while got < count:
        got += len(consumer.consume(10000, 0.01))
        if time.perf_counter() > deadline:
            raise RuntimeError(f"read {got} of {count} records in 300 s")
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed
