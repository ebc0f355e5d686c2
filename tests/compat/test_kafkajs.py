"""KafkaJS, unmodified: an idempotent producer and a consumer group over Node.js."""

from __future__ import annotations

import json
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
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
