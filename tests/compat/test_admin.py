"""Topic administration through confluent-kafka's AdminClient and kafka-python's KafkaAdminClient."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Producer,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
    ResourceType,
)
from kafka import KafkaConsumer
from kafka import TopicPartition as KafkaPythonTopicPartition
from kafka import errors as kafka_errors
from kafka.admin import AlterConfigOp, ConfigResourceType, KafkaAdminClient
from kafka.admin import ConfigResource as KafkaPythonConfigResource
from kafka.admin import OffsetSpec as KafkaPythonOffsetSpec

from kafkaweb.cluster import Cluster
from tests.compat.confluent import TopicFactory, wait_for_leaders

pytestmark = pytest.mark.cluster


def unique(prefix: str = "admin") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_of(future: Future[Any]) -> str:
    """The Kafka error name a confluent-kafka admin future failed with, or "OK"."""
    try:
        future.result(60)
    except KafkaException as exc:
        return str(exc.args[0].name())
    return "OK"


def topic_configs(admin: AdminClient, topic: str) -> dict[str, ConfigEntry]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    return dict(admin.describe_configs([resource])[resource].result(60))


def topic_names(admin: AdminClient) -> set[str]:
    return set(admin.list_topics(timeout=10).topics)


# confluent-kafka ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("partitions", "replication", "configs", "error"),
    [
        (3, 3, {"retention.ms": "not-a-number"}, "INVALID_CONFIG"),
        (3, 3, {"no.such.config": "1"}, "INVALID_CONFIG"),
        (3, 3, {"cleanup.policy": "sometimes"}, "INVALID_CONFIG"),
        (3, 3, {"min.insync.replicas": "0"}, "INVALID_CONFIG"),
        (0, 3, {}, "INVALID_PARTITIONS"),
        (3, 4, {}, "INVALID_REPLICATION_FACTOR"),
        (3, 0, {}, "INVALID_REPLICATION_FACTOR"),
    ],
)
def test_create_topic_with_invalid_settings_fails(
    admin: AdminClient, partitions: int, replication: int, configs: dict[str, str], error: str
) -> None:
    name = unique()
    for validate_only in (True, False):
        futures = admin.create_topics(
            [NewTopic(name, partitions, replication, config=configs)],
            validate_only=validate_only,
            operation_timeout=30,
        )
        assert error_of(futures[name]) == error
    assert name not in topic_names(admin)


@pytest.mark.parametrize("name", ["bad/name", ".", "..", "a" * 250, "with space", "ünïcode"])
def test_create_topic_with_invalid_name_fails(admin: AdminClient, name: str) -> None:
    futures = admin.create_topics([NewTopic(name, 1, 1)], operation_timeout=30)
    # librdkafka calls INVALID_TOPIC_EXCEPTION (17) TOPIC_EXCEPTION.
    assert error_of(futures[name]) == "TOPIC_EXCEPTION"


def test_create_existing_topic_fails(admin: AdminClient, new_topic: TopicFactory) -> None:
    name = new_topic()
    futures = admin.create_topics([NewTopic(name, 3, 3)], operation_timeout=30)
    assert error_of(futures[name]) == "TOPIC_ALREADY_EXISTS"


def test_validate_only_creates_nothing(admin: AdminClient) -> None:
    name = unique()
    futures = admin.create_topics([NewTopic(name, 3, 3)], validate_only=True, operation_timeout=30)
    assert error_of(futures[name]) == "OK"
    assert name not in topic_names(admin)


def test_describe_topics_and_configs(admin: AdminClient, new_topic: TopicFactory) -> None:
    name = new_topic(configs={"retention.ms": "3600000"})
    description = admin.describe_topics(TopicCollection([name]))[name].result(60)
    assert description.name == name
    assert description.topic_id is not None
    assert sorted(p.id for p in description.partitions) == [0, 1, 2]
    for partition in description.partitions:
        replicas = sorted(r.id for r in partition.replicas)
        assert replicas == [1, 2, 3]
        assert partition.leader.id in replicas
        assert sorted(r.id for r in partition.isr) == replicas

    missing = unique("missing")
    error = error_of(admin.describe_topics(TopicCollection([missing]))[missing])
    assert error == "UNKNOWN_TOPIC_OR_PART"

    configs = topic_configs(admin, name)
    retention = configs["retention.ms"]
    assert retention.value == "3600000"
    assert retention.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert not retention.is_default
    segment = configs["segment.bytes"]
    assert segment.value == "1073741824"
    assert segment.source == ConfigSource.DEFAULT_CONFIG.value
    assert segment.is_default
    assert configs["cleanup.policy"].value == "delete"
    # Three replicas: the cluster sets min.insync.replicas to 2 on the topic.
    assert configs["min.insync.replicas"].value == "2"

    broker = ConfigResource(ResourceType.BROKER, "1")
    broker_configs = admin.describe_configs([broker])[broker].result(60)
    assert broker_configs["message.max.bytes"].value == "1048588"
    assert broker_configs["num.partitions"].is_read_only


def test_alter_configs_replaces_every_override(admin: AdminClient, new_topic: TopicFactory) -> None:
    name = new_topic(configs={"retention.ms": "3600000", "cleanup.policy": "compact"})
    resource = ConfigResource(ResourceType.TOPIC, name, set_config={"segment.ms": "100000"})
    with pytest.warns(DeprecationWarning):
        futures = admin.alter_configs([resource])
    assert error_of(futures[resource]) == "OK"
    configs = topic_configs(admin, name)
    assert configs["segment.ms"].value == "100000"
    # AlterConfigs sets the whole set: overrides it does not name go back to their defaults.
    assert configs["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["cleanup.policy"].value == "delete"

    bad = ConfigResource(ResourceType.TOPIC, name, set_config={"retention.ms": "soon"})
    with pytest.warns(DeprecationWarning):
        assert error_of(admin.alter_configs([bad])[bad]) == "INVALID_CONFIG"
    missing = ConfigResource(ResourceType.TOPIC, unique(), set_config={"retention.ms": "1"})
    with pytest.warns(DeprecationWarning):
        assert error_of(admin.alter_configs([missing])[missing]) == "UNKNOWN_TOPIC_OR_PART"


def incremental_alter(
    admin: AdminClient, topic: str, *entries: ConfigEntry, validate_only: bool = False
) -> str:
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=list(entries))
    futures = admin.incremental_alter_configs([resource], validate_only=validate_only)
    return error_of(futures[resource])


def test_incremental_alter_configs(admin: AdminClient, new_topic: TopicFactory) -> None:
    name = new_topic(configs={"segment.ms": "100000", "cleanup.policy": "delete"})

    def alter(*entries: ConfigEntry, validate_only: bool = False) -> str:
        return incremental_alter(admin, name, *entries, validate_only=validate_only)

    assert (
        alter(
            ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("segment.ms", None, incremental_operation=AlterConfigOpType.DELETE),
            ConfigEntry(
                "cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND
            ),
        )
        == "OK"
    )
    configs = topic_configs(admin, name)
    assert configs["retention.ms"].value == "7200000"
    assert configs["segment.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert set(configs["cleanup.policy"].value.split(",")) == {"delete", "compact"}

    subtract = ConfigEntry(
        "cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT
    )
    assert alter(subtract) == "OK"
    assert topic_configs(admin, name)["cleanup.policy"].value == "compact"

    assert (
        alter(
            ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.SET),
            validate_only=True,
        )
        == "OK"
    )
    assert topic_configs(admin, name)["retention.ms"].value == "7200000"
    bad_value = ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)
    assert alter(bad_value) == "INVALID_CONFIG"
    unknown = ConfigEntry("no.such.config", "1", incremental_operation=AlterConfigOpType.SET)
    assert alter(unknown) == "INVALID_CONFIG"
    # APPEND and SUBTRACT are for list configs only.
    not_a_list = ConfigEntry("retention.ms", "5", incremental_operation=AlterConfigOpType.APPEND)
    assert alter(not_a_list) == "INVALID_CONFIG"


def test_incremental_append_starts_from_the_default(
    admin: AdminClient, new_topic: TopicFactory
) -> None:
    name = new_topic()
    append = ConfigEntry(
        "cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND
    )
    assert incremental_alter(admin, name, append) == "OK"
    # Kafka appends to the current value, the default "delete" when the topic has no override.
    assert topic_configs(admin, name)["cleanup.policy"].value == "delete,compact"


def test_create_partitions(admin: AdminClient, new_topic: TopicFactory, cluster: Cluster) -> None:
    name = new_topic()

    def grow(count: int, validate_only: bool = False, topic: str = name) -> str:
        futures = admin.create_partitions(
            [NewPartitions(topic, count)], validate_only=validate_only, operation_timeout=30
        )
        return error_of(futures[topic])

    assert grow(6, validate_only=True) == "OK"
    assert len(admin.list_topics(name, timeout=10).topics[name].partitions) == 3
    assert grow(5) == "OK"
    wait_for_leaders(admin, name, 5)
    assert grow(5) == "INVALID_PARTITIONS"
    assert grow(2) == "INVALID_PARTITIONS"
    assert grow(8, topic=unique()) == "UNKNOWN_TOPIC_OR_PART"

    producer = Producer({"bootstrap.servers": cluster.spec.bootstrap_servers})
    delivered: list[tuple[int, int]] = []
    producer.produce(
        name,
        value=b"into a new partition",
        partition=4,
        on_delivery=lambda e, m: (
            delivered.append((m.partition(), m.offset())) if e is None else None
        ),
    )
    assert producer.flush(30) == 0
    producer.close()
    assert delivered == [(4, 0)]


def test_delete_topics(admin: AdminClient, new_topic: TopicFactory) -> None:
    name = new_topic()
    first_id = admin.describe_topics(TopicCollection([name]))[name].result(60).topic_id
    assert error_of(admin.delete_topics([name], operation_timeout=30)[name]) == "OK"
    assert name not in topic_names(admin)
    assert error_of(admin.delete_topics([name], operation_timeout=30)[name]) == (
        "UNKNOWN_TOPIC_OR_PART"
    )
    new_topic(name=name)
    second_id = admin.describe_topics(TopicCollection([name]))[name].result(60).topic_id
    assert str(second_id) != str(first_id)


@pytest.fixture
def filled_partition(cluster: Cluster, new_topic: TopicFactory) -> Iterator[tuple[str, int]]:
    """100 records in partition 0; record i at base + 10 i, except record 50 at base + 5000."""
    name = new_topic()
    base = int(time.time() * 1000) - 60_000
    producer = Producer({"bootstrap.servers": cluster.spec.bootstrap_servers, "linger.ms": 0})
    for i in range(100):
        producer.produce(
            name, value=str(i).encode(), partition=0, timestamp=base + (5000 if i == 50 else 10 * i)
        )
    assert producer.flush(30) == 0
    producer.close()
    yield name, base


def test_delete_records_and_list_offsets(
    admin: AdminClient, cluster: Cluster, filled_partition: tuple[str, int]
) -> None:
    name, base = filled_partition
    tp = TopicPartition(name, 0)

    def lookup(spec: OffsetSpec) -> tuple[int, int]:
        info = admin.list_offsets({tp: spec})[tp].result(60)
        return info.offset, info.timestamp

    assert lookup(OffsetSpec.earliest())[0] == 0
    assert lookup(OffsetSpec.latest())[0] == 100
    assert lookup(OffsetSpec.max_timestamp()) == (50, base + 5000)
    assert lookup(OffsetSpec.for_timestamp(base + 205)) == (21, base + 210)
    assert lookup(OffsetSpec.for_timestamp(base + 10_000))[0] == -1

    deleted = admin.delete_records([TopicPartition(name, 0, 30)])
    result = next(iter(deleted.values())).result(60)
    assert result.low_watermark == 30
    assert lookup(OffsetSpec.earliest())[0] == 30
    earliest = admin.list_offsets({tp: OffsetSpec.earliest()})[tp].result(60)
    assert earliest.leader_epoch == 0  # the epoch that wrote the first offset
    assert lookup(OffsetSpec.for_timestamp(base)) == (30, base + 300)
    assert lookup(OffsetSpec.latest())[0] == 100

    beyond = admin.delete_records([TopicPartition(name, 0, 101)])
    assert error_of(next(iter(beyond.values()))) == "OFFSET_OUT_OF_RANGE"

    consumer = Consumer(
        {
            "bootstrap.servers": cluster.spec.bootstrap_servers,
            "group.id": unique("group"),
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(name, 0, OFFSET_BEGINNING)])
        offsets: list[int] = []
        deadline = time.monotonic() + 30
        while len(offsets) < 70 and time.monotonic() < deadline:
            for message in consumer.consume(100, 0.5):
                assert message.error() is None
                offsets.append(message.offset())
        assert offsets == list(range(30, 100))
    finally:
        consumer.close()


# kafka-python -------------------------------------------------------------------------------


@pytest.fixture
def kp_admin(cluster: Cluster) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=cluster.spec.bootstrap_servers.split(","))
    yield client
    client.close()


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"configs": {"retention.ms": "not-a-number"}}, kafka_errors.InvalidConfigurationError),
        ({"num_partitions": 0}, kafka_errors.InvalidPartitionsError),
        ({"replication_factor": 9}, kafka_errors.InvalidReplicationFactorError),
    ],
)
def test_kafka_python_create_topic_errors(
    kp_admin: KafkaAdminClient, spec: dict[str, Any], error: type[Exception]
) -> None:
    name = unique()
    with pytest.raises(error):
        kp_admin.create_topics({name: spec})
    assert name not in kp_admin.list_topics()


def test_kafka_python_create_topic_name_and_existence_errors(kp_admin: KafkaAdminClient) -> None:
    with pytest.raises(kafka_errors.InvalidTopicError):
        kp_admin.create_topics({"bad/name": {}})
    name = unique()
    kp_admin.create_topics({name: {}}, validate_only=True)
    assert name not in kp_admin.list_topics()
    kp_admin.create_topics({name: {"num_partitions": 2, "replication_factor": 3}})
    try:
        with pytest.raises(kafka_errors.TopicAlreadyExistsError):
            kp_admin.create_topics({name: {}})
    finally:
        kp_admin.delete_topics([name])


def test_kafka_python_topic_lifecycle(kp_admin: KafkaAdminClient, cluster: Cluster) -> None:
    name = unique()
    kp_admin.create_topics(
        {name: {"num_partitions": 2, "configs": {"retention.ms": "3600000"}}},
        wait_for_metadata=True,
    )
    try:
        (description,) = kp_admin.describe_topics([name])
        assert description["error_code"] == 0
        assert sorted(p["partition_index"] for p in description["partitions"]) == [0, 1]

        resource = KafkaPythonConfigResource(ConfigResourceType.TOPIC, name)
        described = kp_admin.describe_configs([resource], config_filter="all")["topic"][name]
        assert described["retention.ms"]["value"] == "3600000"
        assert described["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
        assert described["segment.bytes"]["config_source"] == "DEFAULT_CONFIG"

        # AlterConfigs (kafka-python carries the other overrides over itself) ...
        kp_admin.alter_configs(
            [KafkaPythonConfigResource(ConfigResourceType.TOPIC, name, {"retention.ms": "100000"})],
            incremental=False,
        )
        # ... and IncrementalAlterConfigs.
        kp_admin.alter_configs(
            [
                KafkaPythonConfigResource(
                    ConfigResourceType.TOPIC,
                    name,
                    {"segment.ms": "200000", "retention.ms": (AlterConfigOp.DELETE, None)},
                )
            ],
            incremental=True,
        )
        described = kp_admin.describe_configs([resource], config_filter="all")["topic"][name]
        assert described["segment.ms"]["value"] == "200000"
        assert described["retention.ms"]["config_source"] == "DEFAULT_CONFIG"

        kp_admin.create_partitions({name: 4})
        kp_admin.wait_for_topics([name])
        (description,) = kp_admin.describe_topics([name])
        assert len(description["partitions"]) == 4

        producer = Producer({"bootstrap.servers": cluster.spec.bootstrap_servers})
        for i in range(20):
            producer.produce(name, value=str(i).encode(), partition=1)
        assert producer.flush(30) == 0
        producer.close()
        tp = KafkaPythonTopicPartition(name, 1)
        result = kp_admin.delete_records({tp: 15})
        assert result[tp]["low_watermark"] == 15
        offsets = kp_admin.list_partition_offsets({tp: KafkaPythonOffsetSpec.EARLIEST})
        assert offsets[tp].offset == 15
        assert kp_admin.list_partition_offsets({tp: KafkaPythonOffsetSpec.LATEST})[tp].offset == 20

        consumer = KafkaConsumer(
            bootstrap_servers=cluster.spec.bootstrap_servers.split(","),
            group_id=None,
            enable_auto_commit=False,
        )
        try:
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            assert consumer.position(tp) == 15
            records = consumer.poll(timeout_ms=10_000).get(tp, [])
            assert records and records[0].offset == 15
        finally:
            consumer.close()
    finally:
        kp_admin.delete_topics([name])
    assert name not in kp_admin.list_topics()
    with pytest.raises(kafka_errors.UnknownTopicOrPartitionError):
        kp_admin.delete_topics([name])
