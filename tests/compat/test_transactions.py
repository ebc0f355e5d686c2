"""Exactly-once with real clients: transactional producers, read_committed consumers, fencing."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AioTopicPartition
from confluent_kafka import (
    KafkaError,
    KafkaException,
    Producer,
)
from kafka import KafkaProducer

from kafkaweb.cluster import Cluster
from tests.compat.confluent import TopicFactory
from tests.compat.transactional import PARTITIONS, read, send_all, txn_producer

pytestmark = pytest.mark.cluster


def test_commit_and_abort_across_partitions(cluster: Cluster, new_topic: TopicFactory) -> None:
    bootstrap = cluster.spec.bootstrap_servers
    topic = new_topic(partitions=PARTITIONS)
    producer = txn_producer(bootstrap, f"tx-{uuid.uuid4().hex[:8]}")

    producer.begin_transaction()
    send_all(producer, topic, [b"committed-1-%d" % i for i in range(30)])
    producer.commit_transaction(30)

    producer.begin_transaction()
    send_all(producer, topic, [b"aborted-%d" % i for i in range(30)])
    producer.flush(30)
    producer.abort_transaction(30)

    producer.begin_transaction()
    send_all(producer, topic, [b"committed-2-%d" % i for i in range(30)])
    producer.commit_transaction(30)
    producer.flush(30)

    committed = read(bootstrap, topic, "read_committed")
    assert sorted(committed) == sorted(
        [b"committed-1-%d" % i for i in range(30)] + [b"committed-2-%d" % i for i in range(30)]
    )
    # read_uncommitted sees the aborted records too, but never the markers.
    everything = read(bootstrap, topic, "read_uncommitted", until=90)
    assert len(everything) == 90
    assert sorted(v for v in everything if v.startswith(b"aborted")) == sorted(
        b"aborted-%d" % i for i in range(30)
    )


def test_open_transaction_holds_back_read_committed(
    cluster: Cluster, new_topic: TopicFactory
) -> None:
    bootstrap = cluster.spec.bootstrap_servers
    topic = new_topic(partitions=PARTITIONS)
    producer = txn_producer(bootstrap, f"tx-{uuid.uuid4().hex[:8]}")
    producer.begin_transaction()
    send_all(producer, topic, [b"open-%d" % i for i in range(9)])
    producer.flush(30)
    # Uncommitted data is there for read_uncommitted, and not past the LSO for read_committed.
    assert len(read(bootstrap, topic, "read_uncommitted", until=9)) == 9
    assert read(bootstrap, topic, "read_committed") == []
    producer.commit_transaction(30)
    assert len(read(bootstrap, topic, "read_committed", until=9)) == 9


def test_second_producer_fences_the_first(cluster: Cluster, new_topic: TopicFactory) -> None:
    bootstrap = cluster.spec.bootstrap_servers
    topic = new_topic(partitions=PARTITIONS)
    transactional_id = f"tx-{uuid.uuid4().hex[:8]}"
    zombie = txn_producer(bootstrap, transactional_id)
    zombie.begin_transaction()
    send_all(zombie, topic, [b"zombie-%d" % i for i in range(6)])
    zombie.flush(30)

    # The new instance fences the old one and aborts what it left open.
    fresh = txn_producer(bootstrap, transactional_id)
    fresh.begin_transaction()
    send_all(fresh, topic, [b"fresh-%d" % i for i in range(6)])
    fresh.commit_transaction(30)

    with pytest.raises(KafkaException) as raised:
        zombie.produce(topic, value=b"late", partition=0)
        zombie.commit_transaction(30)
    error = raised.value.args[0]
    assert error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED), error
    assert sorted(read(bootstrap, topic, "read_committed")) == sorted(
        b"fresh-%d" % i for i in range(6)
    )


def test_consume_transform_produce_survives_a_crash_mid_transaction(
    cluster: Cluster, new_topic: TopicFactory
) -> None:
    bootstrap = cluster.spec.bootstrap_servers
    source = new_topic(partitions=PARTITIONS)
    sink = new_topic(partitions=PARTITIONS)
    inputs = [b"record-%03d" % i for i in range(300)]
    plain = Producer({"bootstrap.servers": bootstrap})
    send_all(plain, source, inputs)
    assert plain.flush(30) == 0
    transactional_id = f"ctp-{uuid.uuid4().hex[:8]}"
    group = f"ctp-{uuid.uuid4().hex[:8]}"

    def worker(*crash_after: int) -> int:
        args = [bootstrap, source, sink, transactional_id, group, str(len(inputs))]
        command = [sys.executable, "-m", "tests.compat.eos_worker", *args]
        command += [str(n) for n in crash_after]
        return subprocess.run(command, timeout=180, check=False).returncode

    # Two transactions commit, the third is killed after writing output and sending offsets.
    assert worker(2) == -signal.SIGKILL
    # The restarted application fences the dead one's transaction and carries on.
    assert worker() == 0

    output = read(bootstrap, sink, "read_committed", until=len(inputs))
    assert Counter(output) == Counter(v.upper() for v in inputs)
    assert len(read(bootstrap, sink, "read_committed")) == len(inputs)  # and nothing after
    # The crashed transaction's output is in the log, aborted: read_uncommitted sees it.
    assert len(read(bootstrap, sink, "read_uncommitted")) > len(inputs)


def test_a_transaction_that_outlives_its_timeout_is_aborted(
    cluster: Cluster, new_topic: TopicFactory
) -> None:
    bootstrap = cluster.spec.bootstrap_servers
    topic = new_topic(partitions=PARTITIONS)
    producer = txn_producer(
        bootstrap,
        f"tx-{uuid.uuid4().hex[:8]}",
        **{"transaction.timeout.ms": 2000, "socket.timeout.ms": 1500},
    )
    producer.begin_transaction()
    send_all(producer, topic, [b"late-%d" % i for i in range(6)])
    assert producer.flush(30) == 0
    # Records written after the open transaction become readable only when it ends.
    plain = Producer({"bootstrap.servers": bootstrap})
    send_all(plain, topic, [b"after-%d" % i for i in range(PARTITIONS)])
    assert plain.flush(30) == 0
    visible = read(bootstrap, topic, "read_committed", until=PARTITIONS, timeout_s=30)
    assert sorted(visible) == [b"after-%d" % i for i in range(PARTITIONS)]
    # The coordinator bumped the epoch when it aborted: the producer cannot commit.
    with pytest.raises(KafkaException):
        producer.commit_transaction(30)


def test_a_timeout_above_the_broker_maximum_is_refused(cluster: Cluster) -> None:
    producer = Producer(
        {
            "bootstrap.servers": cluster.spec.bootstrap_servers,
            "transactional.id": f"tx-{uuid.uuid4().hex[:8]}",
            "transaction.timeout.ms": 900_001,
        }
    )
    with pytest.raises(KafkaException) as raised:
        producer.init_transactions(30)
    assert raised.value.args[0].code() == KafkaError.INVALID_TRANSACTION_TIMEOUT


def test_aiokafka_transactions_and_read_committed(
    cluster: Cluster, new_topic: TopicFactory
) -> None:
    bootstrap = cluster.spec.bootstrap_servers
    topic = new_topic(partitions=PARTITIONS)

    async def scenario() -> list[bytes]:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, transactional_id=f"aio-{uuid.uuid4().hex[:8]}"
        )
        await producer.start()
        try:
            for tag, commit in ((b"a", True), (b"b", False), (b"c", True)):
                await producer.begin_transaction()
                for i in range(12):
                    await producer.send(topic, value=b"%s-%d" % (tag, i), partition=i % PARTITIONS)
                if commit:
                    await producer.commit_transaction()
                else:
                    await producer.abort_transaction()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        consumer.assign([AioTopicPartition(topic, p) for p in range(PARTITIONS)])
        values: list[bytes] = []
        try:
            deadline = time.monotonic() + 30
            while len(values) < 24 and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                values += [m.value for messages in batches.values() for m in messages]
        finally:
            await consumer.stop()
        return values

    values = asyncio.run(scenario())
    expected = [b"%s-%d" % (tag, i) for tag in (b"a", b"c") for i in range(12)]
    assert sorted(values) == sorted(expected)
    assert sorted(read(bootstrap, topic, "read_committed")) == sorted(expected)


def test_kafka_python_transactions(cluster: Cluster, new_topic: TopicFactory) -> None:
    bootstrap = cluster.spec.bootstrap_servers
    topic = new_topic(partitions=PARTITIONS)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=f"kp-{uuid.uuid4().hex[:8]}"
    )
    try:
        producer.init_transactions()
        for tag, commit in ((b"a", True), (b"b", False)):
            producer.begin_transaction()
            for i in range(9):
                producer.send(topic, value=b"%s-%d" % (tag, i), partition=i % PARTITIONS)
            if commit:
                producer.commit_transaction()
            else:
                producer.abort_transaction()
    finally:
        producer.close(timeout=30)
    assert sorted(read(bootstrap, topic, "read_committed")) == sorted(b"a-%d" % i for i in range(9))
