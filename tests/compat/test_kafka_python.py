"""kafka-python with its defaults (idempotence on, acks=all) produces and consumes unmodified."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka import codec as kafka_codec

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

AVAILABLE = {
    "none": True,
    "gzip": kafka_codec.has_gzip(),
    "snappy": kafka_codec.has_snappy(),
    "lz4": kafka_codec.has_lz4(),
    "zstd": kafka_codec.has_zstd(),
}


def consume(bootstrap: list[str], topic: str, count: int, timeout_s: float = 60) -> list[Consumed]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    out: list[Consumed] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < count and time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=500).values():
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
        consumer.close()
    return out


@pytest.mark.parametrize("codec", CODECS)
def test_produce_and_consume_with_defaults(
    cluster: Cluster, new_topic: TopicFactory, codec: str
) -> None:
    assert AVAILABLE[codec], f"kafka-python found no {codec} library (see requirements.txt)"
    topic = new_topic()
    records = make_records(f"kafka-python-{codec}")
    bootstrap = cluster.spec.bootstrap_servers.split(",")

    producer = KafkaProducer(
        bootstrap_servers=bootstrap, compression_type=None if codec == "none" else codec
    )
    assert producer.config["enable_idempotence"] is True
    assert producer.config["acks"] == -1
    try:
        futures = [
            producer.send(
                topic,
                key=rec.key,
                value=rec.value,
                headers=list(rec.headers),
                timestamp_ms=rec.timestamp,
            )
            for rec in records
        ]
        producer.flush(60)
    finally:
        producer.close(10)
    placed: dict[bytes, set[int]] = {}
    for rec, future in zip(records, futures, strict=True):
        metadata = future.get(0)
        placed.setdefault(rec.key, set()).add(metadata.partition)
    assert_partitions(placed)
    assert_read_back(records, consume(bootstrap, topic, len(records)))

    stored = stored_codecs(cluster.spec.data_dir, topic)
    assert set(stored) <= {codec, "none"}
    assert stored[codec] > 0, stored
