"""Brokers stopped with SIGTERM or killed with SIGKILL come back with their data; clients go on."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient

from kafkaweb.cluster import Cluster
from tests.compat.confluent import consume, create_topic
from tests.compat.records import Rec, assert_read_back, make_records
from tests.compat.traffic import Traffic
from tests.conftest import running_cluster, wait_until_ready

pytestmark = pytest.mark.cluster


def restart(cluster: Cluster, node_id: int) -> None:
    cluster.start_broker(node_id)
    wait_until_ready(cluster)


def test_broker_comes_back_with_its_data_after_sigterm_and_sigkill(tmp_path: Path) -> None:
    with running_cluster(tmp_path, brokers=1) as cluster:
        bootstrap = cluster.spec.bootstrap_servers
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topic = create_topic(admin)
        records = make_records("restart", 6000)
        first, second = records[:3000], records[3000:]
        # One producer across both restarts: it must reconnect by itself.
        producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "partitioner": "murmur2_random",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": 120_000,
            }
        )
        send(producer, topic, first)

        # A clean exit after SIGTERM (a generous deadline: this machine is shared).
        assert cluster.stop_process("broker-1", timeout_s=90) == 0
        partition_dir = tmp_path / "broker-1" / f"{topic}-0"
        assert list(partition_dir.glob("*.log"))
        assert (tmp_path / "broker-1" / ".clean-shutdown").exists()
        restart(cluster, 1)
        assert_read_back(first, consume(bootstrap, topic, len(first)))

        send(producer, topic, second)
        cluster.kill("broker-1")
        assert not (tmp_path / "broker-1" / ".clean-shutdown").exists()
        restart(cluster, 1)
        assert_read_back(records, consume(bootstrap, topic, len(records)))

        # And it takes new writes where the recovered log ends.
        more = make_records("after-recovery", 300)
        send(producer, topic, more)
        producer.close()
        consumed = consume(bootstrap, topic, len(records) + len(more))
        assert_read_back(records + more, consumed)


def send(producer: Producer, topic: str, records: list[Rec]) -> None:
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            failures.append(error)

    for rec in records:
        producer.produce(
            topic,
            key=rec.key,
            value=rec.value,
            headers=list(rec.headers),
            timestamp=rec.timestamp,
            on_delivery=delivered,
        )
        producer.poll(0)
    assert producer.flush(120) == 0
    assert not failures, failures[:3]


def test_clients_continue_while_brokers_restart(tmp_path: Path) -> None:
    with running_cluster(tmp_path, brokers=3) as cluster:
        bootstrap = cluster.spec.bootstrap_servers
        topic = create_topic(AdminClient({"bootstrap.servers": bootstrap}))
        traffic = Traffic(bootstrap, topic)
        traffic.start()
        traffic.progress(500)

        cluster.stop_process("broker-2")
        traffic.progress(500)
        restart(cluster, 2)
        traffic.progress(500)

        cluster.kill("broker-3")
        traffic.progress(500)
        restart(cluster, 3)
        traffic.progress(500)

        traffic.finish()
        assert not traffic.failed, traffic.failed[:3]
        # Idempotence: every record sent was acknowledged once and stored once, in order.
        assert len(traffic.delivered) == len(traffic.sent)
        assert_read_back(traffic.sent, traffic.consumed)
