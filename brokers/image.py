"""The metadata image: an immutable snapshot of the cluster as the controller last described it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

NO_LEADER = -1


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    id: int
    host: str
    port: int
    rack: str | None
    alive: bool
    # Grows with each registration; a broker acts on the image only once it names its incarnation.
    epoch: int
    incarnation: str = ""
    shutting_down: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "port": self.port,
            "rack": self.rack,
            "alive": self.alive,
            "epoch": self.epoch,
            "incarnation": self.incarnation,
            "shutting_down": self.shutting_down,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BrokerInfo:
        return cls(
            id=data["id"],
            host=data["host"],
            port=data["port"],
            rack=data.get("rack"),
            alive=data["alive"],
            epoch=data["epoch"],
            incarnation=data.get("incarnation", ""),
            shutting_down=data.get("shutting_down", False),
        )


@dataclass(frozen=True, slots=True)
class PartitionState:
    topic: str
    index: int
    leader: int
    leader_epoch: int
    partition_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    adding: tuple[int, ...] = ()
    removing: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "leader": self.leader,
            "leader_epoch": self.leader_epoch,
            "partition_epoch": self.partition_epoch,
            "replicas": list(self.replicas),
            "isr": list(self.isr),
            "adding": list(self.adding),
            "removing": list(self.removing),
        }

    @classmethod
    def from_json(cls, topic: str, data: Mapping[str, Any]) -> PartitionState:
        return cls(
            topic=topic,
            index=data["index"],
            leader=data["leader"],
            leader_epoch=data["leader_epoch"],
            partition_epoch=data["partition_epoch"],
            replicas=tuple(data["replicas"]),
            isr=tuple(data["isr"]),
            adding=tuple(data.get("adding", ())),
            removing=tuple(data.get("removing", ())),
        )


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    internal: bool
    configs: Mapping[str, str]
    partitions: tuple[PartitionState, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "topic_id": str(self.topic_id),
            "internal": self.internal,
            "configs": dict(self.configs),
            "partitions": [p.to_json() for p in self.partitions],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TopicInfo:
        name = data["name"]
        return cls(
            name=name,
            topic_id=uuid.UUID(data["topic_id"]),
            internal=data["internal"],
            configs=dict(data["configs"]),
            partitions=tuple(PartitionState.from_json(name, p) for p in data["partitions"]),
        )


@dataclass(frozen=True, slots=True)
class MetadataDelta:
    """What one metadata version changed: whole topics and brokers, replaced or removed."""

    version: int
    controller_id: int | None
    controller_epoch: int
    topics: tuple[TopicInfo, ...] = ()
    deleted_topics: tuple[str, ...] = ()
    brokers: tuple[BrokerInfo, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "controller_id": self.controller_id,
            "controller_epoch": self.controller_epoch,
            "topics": [t.to_json() for t in self.topics],
            "deleted_topics": list(self.deleted_topics),
            "brokers": [b.to_json() for b in self.brokers],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetadataDelta:
        return cls(
            version=data["version"],
            controller_id=data["controller_id"],
            controller_epoch=data["controller_epoch"],
            topics=tuple(TopicInfo.from_json(t) for t in data["topics"]),
            deleted_topics=tuple(data["deleted_topics"]),
            brokers=tuple(BrokerInfo.from_json(b) for b in data["brokers"]),
        )


@dataclass(frozen=True, slots=True)
class MetadataImage:
    version: int
    cluster_id: str
    controller_id: int | None
    controller_epoch: int
    brokers: Mapping[int, BrokerInfo]
    topics: Mapping[str, TopicInfo]
    topics_by_id: Mapping[uuid.UUID, TopicInfo] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        version: int,
        cluster_id: str,
        controller_id: int | None,
        controller_epoch: int,
        brokers: Iterable[BrokerInfo],
        topics: Iterable[TopicInfo],
    ) -> MetadataImage:
        by_name = {t.name: t for t in topics}
        return cls(
            version=version,
            cluster_id=cluster_id,
            controller_id=controller_id,
            controller_epoch=controller_epoch,
            brokers={b.id: b for b in brokers},
            topics=by_name,
            topics_by_id={t.topic_id: t for t in by_name.values()},
        )

    @classmethod
    def empty(cls) -> MetadataImage:
        return cls.build(
            version=-1,
            cluster_id="",
            controller_id=None,
            controller_epoch=-1,
            brokers=(),
            topics=(),
        )

    def apply(self, delta: MetadataDelta) -> MetadataImage:
        topics = dict(self.topics)
        by_id = dict(self.topics_by_id)
        for name in delta.deleted_topics:
            gone = topics.pop(name, None)
            if gone is not None:
                by_id.pop(gone.topic_id, None)
        for topic in delta.topics:
            previous = topics.get(topic.name)
            if previous is not None and previous.topic_id != topic.topic_id:
                by_id.pop(previous.topic_id, None)
            topics[topic.name] = topic
            by_id[topic.topic_id] = topic
        brokers = dict(self.brokers)
        for broker in delta.brokers:
            brokers[broker.id] = broker
        return replace(
            self,
            version=delta.version,
            controller_id=delta.controller_id,
            controller_epoch=delta.controller_epoch,
            brokers=brokers,
            topics=topics,
            topics_by_id=by_id,
        )

    def partition(self, topic: str, index: int) -> PartitionState | None:
        info = self.topics.get(topic)
        if info is None or not 0 <= index < len(info.partitions):
            return None
        return info.partitions[index]

    def alive_brokers(self) -> list[BrokerInfo]:
        return [b for b in self.brokers.values() if b.alive]
