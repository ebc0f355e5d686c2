"""Replication under faults: no acknowledged record is lost, replicas agree, leaders move."""

from __future__ import annotations

import signal
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka import KafkaAdminClient, TopicPartition

from kafkaweb.cluster import Cluster
from tests.cluster.load import ProducerLoad, check_no_loss, check_replicas_identical, read_all
from tests.conftest import running_cluster

pytestmark = pytest.mark.cluster
PARTITIONS = 6


def create_topic(
    cluster: Cluster, name: str, partitions: int = PARTITIONS, rf: int = 3, **configs: str
) -> AdminClient:
    # A short socket timeout lets the client give up on a paused broker and ask another.
    admin = AdminClient(
        {"bootstrap.servers": cluster.spec.bootstrap_servers, "socket.timeout.ms": 3000}
    )
    admin.create_topics([NewTopic(name, partitions, rf, config=configs)])[name].result(30)
    wait_for(
        lambda: all(
            p.leader >= 0
            for p in admin.list_topics(name, timeout=10).topics[name].partitions.values()
        )
    )
    return admin


def wait_for(condition, timeout_s: float = 60, what: str = "condition") -> None:
    """Poll until true; a client timing out against a paused broker just means "not yet"."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if condition():
                return
        except KafkaException:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def leader_of(admin: AdminClient, topic: str, partition: int) -> int:
    return admin.list_topics(topic, timeout=10).topics[topic].partitions[partition].leader


def full_isr(admin: AdminClient, topic: str) -> bool:
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions.values()
    return all(len(p.isrs) == len(p.replicas) and p.leader >= 0 for p in partitions)


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory):
    with running_cluster(tmp_path_factory.mktemp("faults"), brokers=3, controllers=2) as cluster:
        yield cluster


def test_acknowledged_records_survive_killed_leaders_and_a_paused_broker(faulty: Cluster) -> None:
    topic = "faults"
    admin = create_topic(faulty, topic)
    load = ProducerLoad(faulty.spec.bootstrap_servers, topic).start()
    try:
        load.wait_for_progress()
        for round_ in range(5):
            victim = leader_of(admin, topic, round_ % PARTITIONS)
            assert victim > 0
            faulty.kill(f"broker-{victim}")
            wait_for(
                lambda v=victim, p=round_ % PARTITIONS: leader_of(admin, topic, p) not in (v, -1),
                what="a new leader",
            )
            load.wait_for_progress()
            faulty.start_broker(victim)
            wait_for(lambda: full_isr(admin, topic), 90, "the restarted broker to rejoin every ISR")
            load.wait_for_progress()
        paused = leader_of(admin, topic, 0)
        faulty.send_signal(f"broker-{paused}", signal.SIGSTOP)
        wait_for(
            lambda: all(
                paused not in p.isrs
                for p in admin.list_topics(topic, timeout=10).topics[topic].partitions.values()
            ),
            what="the paused broker to leave every ISR",
        )
        load.wait_for_progress()
        faulty.send_signal(f"broker-{paused}", signal.SIGCONT)
        wait_for(lambda: full_isr(admin, topic), 90, "the resumed broker to rejoin every ISR")
        load.wait_for_progress()
    finally:
        load.stop()
    assert len(load.acked) > 5000
    check_no_loss(load, read_all(faulty.spec.bootstrap_servers, topic, PARTITIONS))
    wait_for(lambda: full_isr(admin, topic), 60, "full ISRs")
    check_replicas_identical(faulty, topic, PARTITIONS)


def test_reassignment_under_load_moves_a_partition_without_losing_a_record(faulty: Cluster) -> None:
    topic = "moving"
    admin = create_topic(faulty, topic, partitions=2, rf=2)
    load = ProducerLoad(faulty.spec.bootstrap_servers, topic).start()
    try:
        load.wait_for_progress()
        before = admin.list_topics(topic, timeout=10).topics[topic].partitions[0].replicas
        spare = next(b for b in (1, 2, 3) if b not in before)
        target = [spare, before[0]]
        kafka_admin = KafkaAdminClient(bootstrap_servers=faulty.spec.bootstrap_servers)
        try:
            assert kafka_admin.alter_partition_reassignments(
                {TopicPartition(topic, 0): target}
            ) == {TopicPartition(topic, 0): None}
            ongoing = kafka_admin.list_partition_reassignments()
        finally:
            kafka_admin.close()
        assert set(ongoing) <= {TopicPartition(topic, 0)}
        wait_for(
            lambda: (
                admin.list_topics(topic, timeout=10).topics[topic].partitions[0].replicas == target
            ),
            90,
            "the reassignment to complete",
        )
        wait_for(
            lambda: not (faulty.spec.data_dir / f"broker-{before[1]}" / f"{topic}-0").exists(),
            30,
            "the old replica to go",
        )
        load.wait_for_progress()
    finally:
        load.stop()
    check_no_loss(load, read_all(faulty.spec.bootstrap_servers, topic, 2))
    check_replicas_identical(faulty, topic, 2)


def test_two_of_three_brokers_down_refuses_acks_all_and_takes_acks_one(tmp_path) -> None:
    with running_cluster(tmp_path, brokers=3, controllers=1) as cluster:
        topic = "min-isr"
        admin = create_topic(cluster, topic, partitions=1)
        bootstrap = cluster.spec.bootstrap_servers
        before = _produce(bootstrap, topic, "all", [b"a", b"b", b"c"])
        assert all(err is None for err in before)
        survivor = leader_of(admin, topic, 0)
        for broker in (1, 2, 3):
            if broker != survivor:
                cluster.kill(f"broker-{broker}")
        wait_for(
            lambda: len(admin.list_topics(topic, timeout=10).topics[topic].partitions[0].isrs) == 1,
            what="ISR of one",
        )
        refused = _produce(
            bootstrap,
            topic,
            "all",
            [b"refused"],
            {"message.timeout.ms": 10000, "enable.idempotence": False, "retries": 0},
        )
        assert refused[0] is not None and refused[0].code() == KafkaError.NOT_ENOUGH_REPLICAS
        accepted = _produce(bootstrap, topic, "1", [b"one"], {"enable.idempotence": False})
        assert accepted == [None]
        for broker in (1, 2, 3):
            if broker != survivor:
                cluster.start_broker(broker)
        wait_for(lambda: full_isr(admin, topic), 90, "full ISR")
        values = [n for _, n in _values(bootstrap, topic)]
        assert values == [b"a", b"b", b"c", b"one"]


def _produce(
    bootstrap: str, topic: str, acks: str, values: list[bytes], extra: dict | None = None
) -> list:
    outcome: list = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, **(extra or {})})
    for value in values:
        producer.produce(
            topic, value=value, partition=0, on_delivery=lambda err, msg: outcome.append(err)
        )
    producer.flush(60)
    return outcome


def _values(bootstrap: str, topic: str) -> list[tuple[int, bytes]]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "check", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = consumer.consume(100, 1.0)
        out += [(m.offset(), m.value()) for m in messages if not m.error()]
        if not messages and out:
            break
    consumer.close()
    return out


def test_adding_partitions_places_new_replicas_on_live_brokers(faulty: Cluster) -> None:
    topic = "growing"
    admin = create_topic(faulty, topic, partitions=2)
    admin.create_partitions([NewPartitions(topic, 5)])[topic].result(30)
    wait_for(lambda: len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 5)
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    leaders = [p.leader for p in partitions.values()]
    assert all(len(set(p.replicas)) == 3 for p in partitions.values())
    assert len(set(leaders)) == 3  # leaders rotate over the brokers


def test_deleted_records_stay_deleted_when_the_leader_dies(faulty: Cluster) -> None:
    """DeleteRecords answers once every in-sync replica dropped the records (Kafka's low
    watermark), so a follower taking over never serves them again."""
    from confluent_kafka import TopicPartition as Partition
    from confluent_kafka.admin import OffsetSpec

    topic = "trimmed"
    admin = create_topic(faulty, topic, partitions=1)
    bootstrap = faulty.spec.bootstrap_servers
    assert _produce(bootstrap, topic, "all", [b"%d" % i for i in range(100)]) == [None] * 100
    leader = leader_of(admin, topic, 0)
    paused = next(b for b in (1, 2, 3) if b != leader)

    # An in-sync follower that cannot fetch keeps the low watermark where it was, until
    # it drops out of the ISR (after the broker session timeout, longer than this wait).
    faulty.send_signal(f"broker-{paused}", signal.SIGSTOP)
    try:
        waiting = admin.delete_records([Partition(topic, 0, 40)], operation_timeout=0.3)
        with pytest.raises(KafkaException) as timed_out:
            next(iter(waiting.values())).result(30)
        assert timed_out.value.args[0].code() == KafkaError.REQUEST_TIMED_OUT
    finally:
        faulty.send_signal(f"broker-{paused}", signal.SIGCONT)
    deleted = admin.delete_records([Partition(topic, 0, 40)], operation_timeout=30)
    assert next(iter(deleted.values())).result(60).low_watermark == 40

    faulty.kill(f"broker-{leader}")
    wait_for(lambda: leader_of(admin, topic, 0) not in (leader, -1), 30, "a new leader")
    earliest = admin.list_offsets({Partition(topic, 0): OffsetSpec.earliest()})
    assert next(iter(earliest.values())).result(30).offset == 40
    assert [offset for offset, _ in _values(bootstrap, topic)] == list(range(40, 100))
    faulty.start_broker(leader)
    wait_for(lambda: full_isr(admin, topic), 90, "the broker to rejoin the ISR")
