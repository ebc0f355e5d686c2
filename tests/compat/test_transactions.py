"""Exactly-once with real clients: transactional producers, read_committed consumers, fencing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from kafkaweb.cluster import Cluster
from tests.compat.confluent import TopicFactory

PARTITIONS = 3


def txn_producer(bootstrap: str, transactional_id: str, **config: object) -> Producer:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            "linger.ms": 5,
            **config,
        }
    )
    producer.init_transactions(30)
    return producer


def send_all(producer: Producer, topic: str, values: Iterable[bytes]) -> None:
    """One record per value, spread over every partition by their index."""
    for i, value in enumerate(values):
        producer.produce(topic, value=value, partition=i % PARTITIONS)
    producer.poll(0)


def read(
    bootstrap: str,
    topic: str,
    isolation: str,
    until: int | None = None,
    timeout_s: float = 30,
) -> list[bytes]:
    """Every value from the beginning of every partition: until `until` values arrive, or
    (with `until` None) until each partition has reached its end for this isolation level."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"txn-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    values: list[bytes] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if until is not None and len(values) >= until:
                break
            if until is None and len(at_end) == PARTITIONS:
                break
            for message in consumer.consume(500, 0.2):
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                    continue
                assert error is None, error
                at_end.discard(message.partition())
                values.append(message.value())
    finally:
        consumer.close()
    return values


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
