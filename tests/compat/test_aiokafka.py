"""aiokafka produces and consumes unmodified, with every codec (it compresses through cramjam)."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from kafkaweb.cluster import Cluster
from tests.compat.confluent import TopicFactory
from tests.compat.records import (
    CODECS,
    PARTITIONS,
    Consumed,
    Rec,
    assert_partitions,
    assert_read_back,
    make_records,
    stored_codecs,
)

pytestmark = pytest.mark.cluster


async def produce(
    bootstrap: str, topic: str, records: list[Rec], codec: str
) -> dict[bytes, set[int]]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        compression_type=None if codec == "none" else codec,
        enable_idempotence=True,
        linger_ms=5,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                key=rec.key,
                value=rec.value,
                headers=list(rec.headers),
                timestamp_ms=rec.timestamp,
            )
            for rec in records
        ]
        results = await asyncio.wait_for(asyncio.gather(*futures), 60)
    finally:
        await producer.stop()
    placed: dict[bytes, set[int]] = {}
    for rec, metadata in zip(records, results, strict=True):
        placed.setdefault(rec.key, set()).add(metadata.partition)
    return placed


async def consume(bootstrap: str, topic: str, count: int, timeout_s: float = 60) -> list[Consumed]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    out: list[Consumed] = []
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        while len(out) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            for messages in batches.values():
                for m in messages:
                    assert m.timestamp_type == 0  # CreateTime
                    out.append(
                        Consumed(
                            m.partition,
                            m.offset,
                            Rec(m.key, m.value, tuple(m.headers), m.timestamp),
                        )
                    )
    finally:
        await consumer.stop()
    return out


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume(cluster: Cluster, new_topic: TopicFactory, codec: str) -> None:
    topic = new_topic()
    records = make_records(f"aiokafka-{codec}")
    bootstrap = cluster.spec.bootstrap_servers

    placed = asyncio.run(produce(bootstrap, topic, records, codec))
    assert_partitions(placed)
    assert_read_back(records, asyncio.run(consume(bootstrap, topic, len(records))))

    stored = stored_codecs(cluster.spec.data_dir, topic)
    assert set(stored) <= {codec, "none"}
    assert stored[codec] > 0, stored
