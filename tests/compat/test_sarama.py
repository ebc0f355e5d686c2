"""Sarama, the Go client, unmodified: an idempotent producer and a consumer group.

This is the Sarama Debian packages (1.22), speaking the protocol versions of Kafka 2.1 as
its users configure it: Produce v3, Fetch v4, JoinGroup v1, InitProducerId v0.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from kafkaweb.cluster import Cluster
from tests.compat.records import assert_numbered_read_back, run_client

pytestmark = pytest.mark.cluster
SOURCE = Path(__file__).parent / "sarama" / "roundtrip.go"
# Where Debian's golang-*-dev packages put their sources.
GOPATH = "/usr/share/gocode"
COUNT = 1000


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    binary = tmp_path_factory.mktemp("sarama") / "roundtrip"
    build = subprocess.run(
        ["go", "build", "-o", str(binary), SOURCE.name],
        cwd=SOURCE.parent,
        env={**os.environ, "GOPATH": GOPATH, "GO111MODULE": "off", "GOFLAGS": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    return binary


def test_sarama_produces_and_a_sarama_group_reads_everything_back(
    cluster: Cluster, topic_name: str, roundtrip: Path
) -> None:
    admin = AdminClient({"bootstrap.servers": cluster.spec.bootstrap_servers})
    admin.create_topics([NewTopic(topic_name, 3, 3)])[topic_name].result(30)
    records = run_client(
        [str(roundtrip), cluster.spec.bootstrap_servers, topic_name, str(COUNT), f"{topic_name}-g"]
    )
    # Sarama hashes keys with FNV-1a, not murmur2: its own choice, stable per key.
    partitions = assert_numbered_read_back(records, COUNT)
    assert {r["headers"]["codec"] for r in records} == {"none", "gzip", "snappy", "lz4"}
    assert sorted(partitions) == [0, 1, 2]
    for in_partition in partitions.values():
        assert [r["offset"] for r in in_partition] == list(range(len(in_partition)))
