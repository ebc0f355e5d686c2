"""Leadership moves: controlled shutdown, preferred-leader election, decommissioning a broker."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest
from confluent_kafka import KafkaException
from kafka import KafkaAdminClient

from kafkaweb.cluster import PYTHON, Cluster
from tests.cluster.load import ProducerLoad, check_no_loss, check_replicas_identical, read_all
from tests.cluster.test_replication import create_topic, full_isr, wait_for
from tests.compat.transactional import PARTITIONS as TXN_PARTITIONS
from tests.compat.transactional import coordinator_of, read, send_all, txn_producer
from tests.conftest import running_cluster

pytestmark = pytest.mark.cluster
PARTITIONS = 6


def leaders(admin, topic: str) -> dict[int, int]:
    return {
        p.id: p.leader
        for p in admin.list_topics(topic, timeout=10).topics[topic].partitions.values()
    }


def preferred(admin, topic: str) -> bool:
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions.values()
    return all(p.leader == p.replicas[0] for p in partitions)


def events(cluster: Cluster, kind: str) -> list[str]:
    path = cluster.spec.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return [
            row[0]
            for row in db.execute(
                "select message from streams_clusterevent where kind = ?", (kind,)
            )
        ]


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory):
    with running_cluster(tmp_path_factory.mktemp("leaders"), brokers=3, controllers=1) as cluster:
        yield cluster


def test_a_stopping_broker_hands_its_leaderships_over_first(trio: Cluster) -> None:
    topic = "handover"
    admin = create_topic(trio, topic, PARTITIONS)
    load = ProducerLoad(trio.spec.bootstrap_servers, topic).start()
    try:
        load.wait_for_progress()
        stopping = leaders(admin, topic)[0]
        assert trio.stop_process(f"broker-{stopping}") == 0
        assert stopping not in leaders(admin, topic).values()
        assert any(f"broker {stopping} is shutting down" in m for m in events(trio, "broker_down"))
        load.wait_for_progress()
        trio.start_broker(stopping)
        wait_for(lambda: full_isr(admin, topic), 90, "the broker to rejoin every ISR")
        load.wait_for_progress()
    finally:
        load.stop()
    # Nothing failed: a controlled shutdown is invisible to an acks=all producer.
    assert load.errors == []
    check_no_loss(load, read_all(trio.spec.bootstrap_servers, topic, PARTITIONS))
    assert any("leader" in m for m in events(trio, "leader"))

    # Leadership stays where it moved until a preferred-leader election asks for it back.
    assert not preferred(admin, topic)
    client = KafkaAdminClient(bootstrap_servers=trio.spec.bootstrap_servers)
    try:
        client.elect_leaders(0, {topic: list(range(PARTITIONS))})
    finally:
        client.close()
    wait_for(lambda: preferred(admin, topic), 30, "preferred leaders")


def test_decommissioning_a_broker_moves_every_replica_off_it(tmp_path) -> None:
    with running_cluster(tmp_path, brokers=4, controllers=1) as cluster:
        _decommission_under_load(cluster)


def _decommission_under_load(cluster: Cluster) -> None:
    topic = "decommission"
    admin = create_topic(cluster, topic, 4, rf=3)
    load = ProducerLoad(cluster.spec.bootstrap_servers, topic).start()
    try:
        load.wait_for_progress()
        out = subprocess.run(
            [PYTHON, "manage.py", "brokers", "decommission", "3"],
            env=cluster.spec.environment(),
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stderr
        assert "moving" in out.stdout

        def off_broker_3() -> bool:
            metadata = admin.list_topics(timeout=10)
            return all(
                3 not in p.replicas for t in metadata.topics.values() for p in t.partitions.values()
            )

        wait_for(off_broker_3, 120, "every replica to leave broker 3")
        load.wait_for_progress()
    finally:
        load.stop()
    check_no_loss(load, read_all(cluster.spec.bootstrap_servers, topic, 4))
    check_replicas_identical(cluster, topic, 4)


def test_leaders_return_to_preferred_replicas_on_their_own(tmp_path) -> None:
    config = "leader.imbalance.check.interval.seconds=2"
    with running_cluster(tmp_path, brokers=3, controllers=1, broker_config=config) as cluster:
        topic = "rebalance"
        admin = create_topic(cluster, topic, PARTITIONS)
        assert preferred(admin, topic)
        victim = leaders(admin, topic)[0]
        cluster.kill(f"broker-{victim}")
        wait_for(lambda: victim not in leaders(admin, topic).values(), 30, "leaders to move")
        cluster.start_broker(victim)
        wait_for(lambda: preferred(admin, topic), 60, "leaders to return to preferred replicas")


def test_a_transaction_outlives_its_coordinator(trio: Cluster) -> None:
    """SIGKILL the broker coordinating an open transaction: the next leader of its
    `__consumer_offsets` partition reads it back and the producer commits (or, if the client
    gave up on it, aborts) cleanly, then goes on."""
    bootstrap = trio.spec.bootstrap_servers
    topic = "transactions"
    admin = create_topic(trio, topic, TXN_PARTITIONS)
    transactional_id = "outlives-its-coordinator"
    producer = txn_producer(bootstrap, transactional_id, **{"message.timeout.ms": 60_000})
    producer.begin_transaction()
    send_all(producer, topic, [b"first-%d" % i for i in range(30)])
    assert producer.flush(30) == 0

    coordinator = coordinator_of(admin, transactional_id)
    trio.kill(f"broker-{coordinator}")
    try:
        producer.commit_transaction(60)
        expected = [b"first-%d" % i for i in range(30)]
    except KafkaException as exc:
        assert exc.args[0].txn_requires_abort(), exc
        producer.abort_transaction(60)
        expected = []
    assert coordinator_of(admin, transactional_id) != coordinator

    producer.begin_transaction()
    send_all(producer, topic, [b"second-%d" % i for i in range(30)])
    producer.commit_transaction(60)
    expected += [b"second-%d" % i for i in range(30)]
    assert sorted(read(bootstrap, topic, "read_committed")) == sorted(expected)
