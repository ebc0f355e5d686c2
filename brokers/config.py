"""Broker-level configuration, by Kafka's names, with Kafka's defaults unless Kafkaweb says why."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from brokers.log.config import TOPIC_CONFIGS
from kafkaweb import env

# Broker configs a client may see through DescribeConfigs, with their defaults.
BROKER_DEFAULTS: Mapping[str, str] = {
    "auto.create.topics.enable": "true",
    "num.partitions": "3",
    "default.replication.factor": "3",
    "min.insync.replicas": "1",
    "message.max.bytes": "1048588",
    "socket.request.max.bytes": "104857600",
    "replica.lag.time.max.ms": "30000",
    "replica.fetch.max.bytes": "1048576",
    "replica.fetch.response.max.bytes": "10485760",
    "replica.fetch.wait.max.ms": "500",
    "replica.fetch.min.bytes": "1",
    "unclean.leader.election.enable": "false",
    "auto.leader.rebalance.enable": "true",
    "leader.imbalance.check.interval.seconds": "300",
    "leader.imbalance.per.broker.percentage": "10",
    "log.retention.check.interval.ms": "300000",
    "log.flush.scheduler.interval.ms": "1000",
    "log.cleaner.enable": "true",
    "delete.topic.enable": "true",
    "group.min.session.timeout.ms": "6000",
    "group.max.session.timeout.ms": "1800000",
    "group.initial.rebalance.delay.ms": "3000",
    "group.max.size": "2147483647",
    "offsets.retention.minutes": "10080",
    "offsets.retention.check.interval.ms": "600000",
    "offsets.topic.num.partitions": "12",
    # Kafka's default is 3; a cluster of fewer brokers (KAFKAWEB_BROKERS) could never have them.
    "offsets.topic.replication.factor": str(min(3, env.BROKER_COUNT)),
    "offset.metadata.max.bytes": "4096",
    "transactional.id.expiration.ms": "604800000",
    "transaction.max.timeout.ms": "900000",
    "transactions.remove.expired.transaction.cleanup.interval.ms": "3600000",
    "producer.id.expiration.ms": "86400000",
    "broker.session.timeout.ms": str(env.SESSION_TIMEOUT_MS),
    "broker.heartbeat.interval.ms": str(env.HEARTBEAT_INTERVAL_MS),
}


def broker_values() -> dict[str, str]:
    """Every broker config: Kafka's defaults with KAFKAWEB_BROKER_CONFIG's overrides."""
    return {**BROKER_DEFAULTS, **_overrides()}


def _overrides() -> dict[str, str]:
    """KAFKAWEB_BROKER_CONFIG="name=value,name=value" overrides broker configs."""
    raw = os.environ.get("KAFKAWEB_BROKER_CONFIG", "")
    pairs = [item.split("=", 1) for item in raw.split(",") if "=" in item]
    unknown = [k for k, _ in pairs if k.strip() not in BROKER_DEFAULTS]
    if unknown:
        raise SystemExit(f"KAFKAWEB_BROKER_CONFIG: unknown broker config(s) {unknown}")
    return {k.strip(): v.strip() for k, v in pairs}


def broker_log_defaults(broker_values: Mapping[str, str]) -> dict[str, str]:
    """Topic-level defaults a broker sets through its own configs (min.insync.replicas, ...)."""
    return {
        d.name: broker_values[d.server_default_property]
        for d in TOPIC_CONFIGS.values()
        if d.server_default_property and d.server_default_property in broker_values
    }


@dataclass(frozen=True, slots=True)
class BrokerConfig:
    node_id: int
    host: str
    port: int
    data_dir: Path
    values: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_node(cls, node_id: int) -> BrokerConfig:
        return cls(
            node_id=node_id,
            host=env.HOST,
            port=env.broker_port(node_id),
            data_dir=env.DATA_DIR / f"broker-{node_id}",
            values=broker_values(),
        )

    def get(self, name: str) -> str:
        return self.values[name]

    def int(self, name: str) -> int:
        return int(self.values[name])

    def flag(self, name: str) -> bool:
        return self.values[name].lower() == "true"
