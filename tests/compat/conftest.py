"""Fixtures for client compatibility tests: an admin client and topics on the shared cluster."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from kafkaweb.cluster import Cluster
from tests.compat.confluent import TopicFactory, create_topic
from tests.protocol.raw import RawClient, build_request


def wait_for_every_broker_to_see_every_broker(cluster: Cluster, timeout_s: float = 30) -> None:
    """Right after a start, a broker may still leave a live one out of its Metadata answers;
    librdkafka then drops its connection to that broker, failing what was in flight on it
    (_DESTROY_BROKER)."""
    deadline = time.monotonic() + timeout_s
    count = cluster.spec.brokers
    for node_id in range(1, count + 1):
        while True:
            with RawClient(cluster.spec.broker_address(node_id)) as client:
                metadata = client.request(3, 12, build_request(3, 12, topics=(), **NO_EXTRAS))
            if len(metadata.brokers) == count:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"broker {node_id} sees {len(metadata.brokers)} brokers")
            time.sleep(0.1)


NO_EXTRAS = {"allow_auto_topic_creation": False, "include_topic_authorized_operations": False}


@pytest.fixture(scope="session")
def admin(cluster: Cluster) -> AdminClient:
    wait_for_every_broker_to_see_every_broker(cluster)
    client = AdminClient({"bootstrap.servers": cluster.spec.bootstrap_servers})
    client.list_topics(timeout=30)
    return client


@pytest.fixture
def new_topic(admin: AdminClient) -> Iterator[TopicFactory]:
    """Creates topics on the shared cluster and deletes them after the test."""
    created: dict[str, None] = {}

    def make(**kwargs: object) -> str:
        name = create_topic(admin, **kwargs)  # type: ignore[arg-type]
        created[name] = None
        return name

    yield make
    if created:
        for future in admin.delete_topics(list(created), operation_timeout=30).values():
            try:
                future.result(60)
            except KafkaException as exc:
                # A test may have deleted its topic itself.
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise
