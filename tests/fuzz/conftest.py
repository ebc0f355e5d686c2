"""A one-broker cluster of its own for the fuzzer, and the topic it aims at."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient

from brokers.config import BROKER_DEFAULTS
from kafkaweb.cluster import Cluster
from tests.compat.confluent import create_topic
from tests.conftest import running_cluster
from tests.fuzz.frames import Target
from tests.protocol.raw import RawClient, build_request

MAX_MESSAGE_BYTES = 20_000


@pytest.fixture(scope="package")
def fuzz_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # No auto-creation: mutated Metadata requests must not create topics by the hundred.
    with running_cluster(
        tmp_path_factory.mktemp("fuzz"), brokers=1, broker_config="auto.create.topics.enable=false"
    ) as cluster:
        yield cluster


@pytest.fixture(scope="package")
def target(fuzz_cluster: Cluster) -> Target:
    admin = AdminClient({"bootstrap.servers": fuzz_cluster.spec.bootstrap_servers})
    topic = create_topic(
        admin,
        name="fuzz-target",
        partitions=1,
        replication=1,
        configs={"max.message.bytes": str(MAX_MESSAGE_BYTES)},
    )
    with RawClient(fuzz_cluster.spec.broker_address(1)) as client:
        versions = client.request(18, 0, build_request(18, 0))
        served = {
            int(k.api_key): (int(k.min_version), int(k.max_version)) for k in versions.api_keys
        }
        metadata = client.request(
            3,
            12,
            build_request(
                3,
                12,
                topics=None,
                allow_auto_topic_creation=False,
                include_topic_authorized_operations=False,
            ),
        )
    (info,) = [t for t in metadata.topics if t.name == topic]
    return Target(
        topic=topic,
        topic_id=info.topic_id,
        max_message_bytes=MAX_MESSAGE_BYTES,
        max_request_bytes=int(BROKER_DEFAULTS["socket.request.max.bytes"]),
        served=served,
    )
