"""KafkaJS, unmodified: an idempotent producer, transactions and consumer groups over Node.js."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafkaweb.cluster import Cluster
from tests.compat.records import assert_numbered_read_back, run_client

pytestmark = pytest.mark.cluster
SCRIPT_DIR = Path(__file__).parent / "kafkajs"
COUNT = 3000


def test_kafkajs_produces_and_a_kafkajs_group_reads_everything_back(
    cluster: Cluster, topic_name: str
) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.spec.bootstrap_servers})
    admin.create_topics([NewTopic(topic_name, 3, 3)])[topic_name].result(30)
    records = run_client(
        [
            "node",
            "roundtrip.js",
            cluster.spec.bootstrap_servers,
            topic_name,
            str(COUNT),
            f"{topic_name}-group",
        ],
        SCRIPT_DIR,
    )
    partitions = assert_numbered_read_back(records, COUNT)
    assert {r["headers"]["source"] for r in records} == {"kafkajs"}
    for in_partition in partitions.values():
        timestamps = [r["timestamp"] for r in in_partition]
        assert timestamps == sorted(timestamps)


def test_kafkajs_transactions_commit_abort_and_send_offsets(
    cluster: Cluster, topic_name: str
) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.spec.bootstrap_servers})
    input_topic = f"{topic_name}-in"
    for future in admin.create_topics(
        [NewTopic(topic_name, 3, 3), NewTopic(input_topic, 1, 3)]
    ).values():
        future.result(30)
    lines = run_client(
        [
            "node",
            "transactions.js",
            cluster.spec.bootstrap_servers,
            topic_name,
            input_topic,
            f"{topic_name}-group",
            f"{topic_name}-reader",
        ],
        SCRIPT_DIR,
    )
    offsets = lines.pop()["offsets"]
    committed = [f"commit-{i}" for i in range(100)] + [f"again-{i}" for i in range(50)]
    # read_committed: both committed transactions, each record once, and nothing aborted.
    assert sorted(r["value"] for r in lines) == sorted(committed)
    # The offsets sent in the first transaction were committed with it.
    assert [
        (t["topic"], [(p["partition"], p["offset"]) for p in t["partitions"]]) for t in offsets
    ] == [(input_topic, [(0, "42")])]

    # The aborted records are in the log all the same: read_uncommitted returns them too.
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.spec.bootstrap_servers,
            "group.id": f"{topic_name}-uncommitted",
            "isolation.level": "read_uncommitted",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic_name, p, 0) for p in range(3)])
    values: list[str] = []
    deadline = time.monotonic() + 60
    while len(values) < 250 and time.monotonic() < deadline:
        for message in consumer.consume(500, 0.5):
            if message.error() is None:
                values.append(message.value().decode())
    consumer.close()
    assert sorted(values) == sorted(committed + [f"abort-{i}" for i in range(100)])
