"""KafkaJS, unmodified: an idempotent producer, transactions and consumer groups over Node.js."""

from __future__ import annotations

import json
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafkaweb.cluster import Cluster

pytestmark = pytest.mark.cluster
SCRIPT_DIR = Path(__file__).parent / "kafkajs"
COUNT = 3000


def test_kafkajs_produces_and_a_kafkajs_group_reads_everything_back(
    cluster: Cluster, topic_name: str
) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.spec.bootstrap_servers})
    admin.create_topics([NewTopic(topic_name, 3, 3)])[topic_name].result(30)
    out = subprocess.run(
        [
            "node",
            "roundtrip.js",
            cluster.spec.bootstrap_servers,
            topic_name,
            str(COUNT),
            f"{topic_name}-group",
        ],
        cwd=SCRIPT_DIR,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted(int(r["headers"]["index"]) for r in records) == list(range(COUNT))
    by_partition: dict[int, list[dict]] = defaultdict(list)
    partition_of_key: dict[str, int] = {}
    for record in records:
        by_partition[record["partition"]].append(record)
        assert (
            partition_of_key.setdefault(record["key"], record["partition"]) == record["partition"]
        )
        index = int(record["headers"]["index"])
        assert record["value"] == f"value-{index}"
        assert record["headers"]["source"] == "kafkajs"
    for partition_records in by_partition.values():
        offsets = [r["offset"] for r in partition_records]
        indexes = [int(r["headers"]["index"]) for r in partition_records]
        assert offsets == sorted(offsets) and indexes == sorted(indexes)
        timestamps = [r["timestamp"] for r in partition_records]
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
    out = subprocess.run(
        [
            "node",
            "transactions.js",
            cluster.spec.bootstrap_servers,
            topic_name,
            input_topic,
            f"{topic_name}-group",
            f"{topic_name}-reader",
        ],
        cwd=SCRIPT_DIR,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines()]
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
