"""When the coordinator's broker dies, another takes the group over from the metadata DB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, ConsumerGroupDescription

from kafkaweb.cluster import Cluster
from tests.conftest import running_cluster, wait_until_ready
from tests.groups.conftest import (
    GROUP_CONFIG,
    ConfluentMember,
    Member,
    balanced,
    create_topic,
    produce,
    wait_for_offsets_topic,
    wait_until,
)
from tests.groups.test_offsets import assign_consumer

pytestmark = pytest.mark.cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster of its own: these tests kill brokers."""
    with running_cluster(tmp_path, broker_config=GROUP_CONFIG) as c:
        wait_for_offsets_topic(c)
        yield c


def describe(bootstrap: str, group: str) -> ConsumerGroupDescription:
    """A fresh client each time: librdkafka caches a group's coordinator, and a request it
    sends to a cached coordinator that was just killed waits for that broker to come back."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return admin.describe_consumer_groups([group], request_timeout=10)[group].result(30)


def coordinator_id(bootstrap: str, group: str) -> int:
    return int(describe(bootstrap, group).coordinator.id)


def committed(bootstrap: str, group: str, topic: str) -> list[tuple[int, str | None]]:
    consumer = assign_consumer(bootstrap, group)
    try:
        found = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], 60)
    finally:
        consumer.close()
    return [(tp.offset, tp.metadata) for tp in found]


def test_committed_offsets_survive_a_restart_of_the_coordinators_broker(
    cluster: Cluster,
) -> None:
    bootstrap = cluster.spec.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = create_topic(admin, 2)
    produce(bootstrap, topic, 20, 2)
    group = f"survivor-{uuid.uuid4().hex[:8]}"
    consumer = assign_consumer(bootstrap, group)
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, 0, 6, "six"), TopicPartition(topic, 1, 9, "nine")],
            asynchronous=False,
        )
    finally:
        consumer.close()
    expected = [(6, "six"), (9, "nine")]
    broker = coordinator_id(bootstrap, group)

    cluster.kill(f"broker-{broker}")
    # The controller moves the offsets partition; its new leader loads the group from the DB.
    assert committed(bootstrap, group, topic) == expected
    assert wait_until(lambda: coordinator_id(bootstrap, group) != broker, what="a new coordinator")

    cluster.start_broker(broker)
    wait_until_ready(cluster)
    assert committed(bootstrap, group, topic) == expected


def test_an_active_group_keeps_consuming_when_its_coordinator_dies(
    cluster: Cluster, members: list[Member]
) -> None:
    bootstrap = cluster.spec.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = create_topic(admin, 6)
    group = f"moving-{uuid.uuid4().hex[:8]}"
    produce(bootstrap, topic, 120, 6)
    config = {"auto.commit.interval.ms": 200}
    for _ in range(2):
        members.append(ConfluentMember(bootstrap, group, topic, **config).start())
    wait_until(lambda: balanced(members, topic, 6), what="two members balanced")
    wait_until(lambda: sum(len(m.values) for m in members) >= 120, what="first records read")
    broker = coordinator_id(bootstrap, group)

    cluster.kill(f"broker-{broker}")
    produce(bootstrap, topic, 120, 6, start=120)

    # At least once: every record arrives, some perhaps twice around the move.
    wait_until(
        lambda: {int(v) for m in members for v in m.values} >= set(range(240)),
        what="records produced after the coordinator died",
    )
    wait_until(lambda: balanced(members, topic, 6), what="the group stable again")
    description = describe(bootstrap, group)
    assert description.coordinator.id != broker
    assert len(description.members) == 2
