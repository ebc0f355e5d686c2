"""confluent-kafka as the tests use it: topics made ready, every record accounted for."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.compat.records import PARTITIONS, Consumed, Rec

# new_topic (conftest): creates a topic for the test, deletes it afterwards.
TopicFactory = Callable[..., str]


def produce(
    bootstrap: str, topic: str, records: list[Rec], **config: object
) -> dict[bytes, set[int]]:
    """Sends every record and waits for each delivery report; returns where each key went."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",
            "enable.idempotence": True,
            "linger.ms": 5,
            **config,
        }
    )
    placed: dict[bytes, set[int]] = {}
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, message: object) -> None:
        if error is not None:
            failures.append(error)
        else:
            placed.setdefault(message.key(), set()).add(message.partition())  # type: ignore[attr-defined]

    for rec in records:
        while True:
            try:
                producer.produce(
                    topic,
                    key=rec.key,
                    value=rec.value,
                    headers=list(rec.headers),
                    timestamp=rec.timestamp,
                    on_delivery=delivered,
                )
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0, "records still undelivered after 60 s"
    producer.close()
    assert not failures, failures[:3]
    return placed


def consume(bootstrap: str, topic: str, count: int, timeout_s: float = 60) -> list[Consumed]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"compat-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    out: list[Consumed] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < count and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                assert message.error() is None, message.error()
                timestamp_type, timestamp = message.timestamp()
                assert timestamp_type == 1  # CreateTime
                out.append(
                    Consumed(
                        message.partition(),
                        message.offset(),
                        Rec(
                            message.key(),
                            message.value(),
                            tuple(message.headers() or ()),
                            timestamp,
                        ),
                    )
                )
    finally:
        consumer.close()
    return out


def wait_for_leaders(
    admin: AdminClient, topic: str, partitions: int, timeout_s: float = 30
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        metadata = admin.list_topics(topic, timeout=5).topics.get(topic)
        if (
            metadata is not None
            and metadata.error is None
            and len(metadata.partitions) == partitions
            and all(p.leader >= 0 for p in metadata.partitions.values())
        ):
            return
        time.sleep(0.1)
    raise TimeoutError(f"{topic} has no leader for every partition")


def create_topic(
    admin: AdminClient,
    name: str | None = None,
    partitions: int = PARTITIONS,
    replication: int = -1,
    configs: dict[str, str] | None = None,
) -> str:
    name = name or f"compat-{uuid.uuid4().hex[:10]}"
    futures = admin.create_topics(
        [NewTopic(name, partitions, replication, config=configs or {})], operation_timeout=30
    )
    futures[name].result(60)
    wait_for_leaders(admin, name, partitions)
    return name
