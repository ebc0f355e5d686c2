"""Topic changes — create, delete, alter configs, add partitions — through Kafka's admin API.

Each goes to the brokers as a real AdminClient request, so the controller applies Kafka's own
rules and its error message is what the user reads; each change made is recorded as an admin
ClusterEvent naming who made it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from streams import events
from streams.services.kafka import TIMEOUT_S, ServiceError, admin, result

# Which form field a broker's CreateTopics / CreatePartitions error belongs to.
_ERROR_FIELDS = {
    "INVALID_PARTITIONS": "partitions",
    "INVALID_REPLICATION_FACTOR": "replication_factor",
    "INVALID_REPLICA_ASSIGNMENT": "replication_factor",
    "INVALID_CONFIG": "configs",
    "TOPIC_EXCEPTION": "name",
    "TOPIC_ALREADY_EXISTS": "name",
    "INVALID_TOPIC_EXCEPTION": "name",
    "POLICY_VIOLATION": "configs",
}


@dataclass(frozen=True, slots=True)
class TopicConfigEntry:
    name: str
    value: str | None
    source: str  # "topic" (an override), "broker", "default"
    read_only: bool
    sensitive: bool

    @property
    def is_override(self) -> bool:
        return self.source == "topic"


def _field_of(error: ServiceError, default: str | None = None) -> ServiceError:
    return ServiceError(error.message, _ERROR_FIELDS.get(error.code, default), error.code)


def topic_create(
    *,
    name: str,
    partitions: int,
    replication_factor: int,
    configs: Mapping[str, str] | None = None,
    actor: str,
    validate_only: bool = False,
) -> None:
    """Create a topic; raises ServiceError with the broker's reason and the field it concerns."""
    topic = NewTopic(name, partitions, replication_factor, config=dict(configs or {}))
    futures = admin().create_topics(
        [topic], operation_timeout=TIMEOUT_S, validate_only=validate_only
    )
    try:
        result(futures[name])
    except ServiceError as error:
        raise _field_of(error) from error
    if validate_only:
        return
    events.record(
        "admin",
        f"{actor} created topic {name} ({partitions} partitions, replication factor "
        f"{replication_factor})",
        actor=actor,
        topic=name,
        data={
            "action": "topic_create",
            "partitions": partitions,
            "replication_factor": replication_factor,
            "configs": dict(configs or {}),
        },
    )


def topic_delete(name: str, *, actor: str) -> None:
    futures = admin().delete_topics([name], operation_timeout=TIMEOUT_S)
    result(futures[name])
    events.record(
        "admin",
        f"{actor} deleted topic {name}",
        actor=actor,
        topic=name,
        data={"action": "topic_delete"},
    )


def topic_partitions_create(name: str, total: int, *, actor: str) -> None:
    """Grow a topic to `total` partitions (Kafka never shrinks one)."""
    futures = admin().create_partitions([NewPartitions(name, total)], operation_timeout=TIMEOUT_S)
    try:
        result(futures[name])
    except ServiceError as error:
        raise _field_of(error, "partitions") from error
    events.record(
        "admin",
        f"{actor} grew topic {name} to {total} partitions",
        actor=actor,
        topic=name,
        data={"action": "topic_partitions_create", "partitions": total},
    )


def topic_configs_alter(
    name: str,
    *,
    set_configs: Mapping[str, str],
    delete_configs: Sequence[str] = (),
    actor: str,
) -> None:
    """Set some overrides and remove others (IncrementalAlterConfigs), all or nothing."""
    if not set_configs and not delete_configs:
        return
    entries = [
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
        for key, value in set_configs.items()
    ] + [
        ConfigEntry(key, None, incremental_operation=AlterConfigOpType.DELETE)
        for key in delete_configs
    ]
    resource = ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
    futures = admin().incremental_alter_configs([resource])
    try:
        result(futures[resource])
    except ServiceError as error:
        raise ServiceError(error.message, "configs", error.code) from error
    changes = [f"{k}={v}" for k, v in set_configs.items()] + [f"-{k}" for k in delete_configs]
    events.record(
        "admin",
        f"{actor} changed configs of {name}: {', '.join(changes)}",
        actor=actor,
        topic=name,
        data={
            "action": "topic_configs_alter",
            "set": dict(set_configs),
            "delete": list(delete_configs),
        },
    )


def topic_configs_describe(name: str) -> list[TopicConfigEntry]:
    """Every config of a topic with where its value comes from (DescribeConfigs)."""
    resource = ConfigResource(ResourceType.TOPIC, name)
    described = result(admin().describe_configs([resource])[resource])
    sources = {
        ConfigSource.DYNAMIC_TOPIC_CONFIG.value: "topic",
        ConfigSource.DEFAULT_CONFIG.value: "default",
    }
    return sorted(
        (
            TopicConfigEntry(
                entry.name,
                entry.value,
                sources.get(entry.source, "broker"),
                bool(entry.is_read_only),
                bool(entry.is_sensitive),
            )
            for entry in described.values()
        ),
        key=lambda e: e.name,
    )
