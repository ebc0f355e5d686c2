"""The brokers' and controllers' only door to the metadata database (Django ORM).

Everything here is synchronous and must run off the event loop (in a worker thread).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, transaction
from django.db.models import F
from django.utils import timezone

from brokers.image import BrokerInfo, MetadataDelta, MetadataImage, PartitionState, TopicInfo
from streams import events
from streams.models import (
    Broker,
    ClusterState,
    Partition,
    ProducerIdBlock,
    Replica,
    Topic,
    TopicConfig,
)


class NotController(Exception):
    """The caller's controller epoch is no longer the cluster's: another controller took over."""


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    message: str
    broker_id: int | None = None
    topic: str = ""
    partition: int | None = None
    data: dict[str, Any] | None = None
    actor: str = "controller"


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def cluster_state() -> ClusterState:
    state = ClusterState.objects.filter(pk=1).first()
    if state is None:
        state, _ = ClusterState.objects.get_or_create(
            pk=1, defaults={"cluster_id": new_cluster_id()}
        )
    return state


def metadata_version() -> int:
    close_old_connections()
    row = ClusterState.objects.filter(pk=1).values_list("metadata_version", flat=True).first()
    return -1 if row is None else int(row)


def load_image() -> MetadataImage:
    """Read the whole cluster metadata as one consistent snapshot."""
    close_old_connections()
    with transaction.atomic():
        state = cluster_state()
        brokers = [
            BrokerInfo(
                id=b.id,
                host=b.host,
                port=b.port,
                rack=b.rack or None,
                alive=b.state != Broker.State.DOWN,
                epoch=b.epoch,
                incarnation=b.incarnation,
                shutting_down=b.state == Broker.State.SHUTTING_DOWN,
            )
            for b in Broker.objects.all()
        ]
        configs: dict[int, dict[str, str]] = {}
        for topic_pk, name, value in TopicConfig.objects.values_list("topic_id", "name", "value"):
            configs.setdefault(topic_pk, {})[name] = value
        replicas: dict[int, list[tuple[int, int, bool, str]]] = {}
        for partition_pk, broker_id, position, in_sync, role in Replica.objects.values_list(
            "partition_id", "broker_id", "position", "in_sync", "role"
        ):
            replicas.setdefault(partition_pk, []).append((position, broker_id, in_sync, role))
        partitions: dict[int, list[PartitionState]] = {}
        topic_names = dict(Topic.objects.values_list("pk", "name"))
        for (
            pk,
            topic_pk,
            index,
            leader,
            leader_epoch,
            partition_epoch,
        ) in Partition.objects.values_list(
            "pk", "topic_id", "index", "leader_id", "leader_epoch", "partition_epoch"
        ).order_by("topic_id", "index"):
            rows = sorted(replicas.get(pk, []))
            partitions.setdefault(topic_pk, []).append(
                PartitionState(
                    topic=topic_names[topic_pk],
                    index=index,
                    leader=-1 if leader is None else leader,
                    leader_epoch=leader_epoch,
                    partition_epoch=partition_epoch,
                    replicas=tuple(b for _, b, _, _ in rows),
                    isr=tuple(b for _, b, s, _ in rows if s),
                    adding=tuple(b for _, b, _, r in rows if r == Replica.Role.ADDING),
                    removing=tuple(b for _, b, _, r in rows if r == Replica.Role.REMOVING),
                )
            )
        topics = [
            TopicInfo(
                name=t.name,
                topic_id=t.topic_id,
                internal=t.internal,
                configs=configs.get(t.pk, {}),
                partitions=tuple(partitions.get(t.pk, ())),
            )
            for t in Topic.objects.all()
        ]
        return MetadataImage.build(
            version=state.metadata_version,
            cluster_id=state.cluster_id,
            controller_id=state.controller_id,
            controller_epoch=state.controller_epoch,
            brokers=brokers,
            topics=topics,
        )


def claim_controller(node_id: int) -> int:
    """Become the active controller: bump and return the controller epoch."""
    close_old_connections()
    with transaction.atomic():
        state = cluster_state()
        ClusterState.objects.filter(pk=1).update(
            controller_id=node_id, controller_epoch=F("controller_epoch") + 1
        )
        state.refresh_from_db()
        return state.controller_epoch


def commit(
    controller_epoch: int,
    before: MetadataImage,
    *,
    topics: Sequence[TopicInfo] = (),
    deleted_topics: Sequence[str] = (),
    brokers: Sequence[BrokerInfo] = (),
    events_: Iterable[Event] = (),
) -> MetadataDelta:
    """Write one metadata change atomically, fenced by the controller epoch.

    Only rows that differ from `before` are written. Raises NotController when another
    controller has claimed the cluster since.
    """
    close_old_connections()
    with transaction.atomic():
        fenced = ClusterState.objects.filter(pk=1, controller_epoch=controller_epoch).update(
            metadata_version=F("metadata_version") + 1
        )
        if not fenced:
            raise NotController(f"controller epoch {controller_epoch} is stale")
        state = ClusterState.objects.get(pk=1)
        now = timezone.now()
        for broker in brokers:
            _write_broker(broker, before.brokers.get(broker.id), now)
        for name in deleted_topics:
            Topic.objects.filter(name=name).delete()
        for topic in topics:
            _write_topic(topic, before.topics.get(topic.name))
        stored = [
            events.ClusterEvent(
                kind=e.kind,
                message=e.message,
                broker_id=e.broker_id,
                topic=e.topic,
                partition=e.partition,
                data=e.data or {},
                actor=e.actor,
            )
            for e in events_
        ]
        if stored:
            created = events.ClusterEvent.objects.bulk_create(stored)
            transaction.on_commit(lambda: events.publish_stored(created))
        return MetadataDelta(
            version=state.metadata_version,
            controller_id=state.controller_id,
            controller_epoch=controller_epoch,
            topics=tuple(topics),
            deleted_topics=tuple(deleted_topics),
            brokers=tuple(brokers),
        )


def _write_broker(broker: BrokerInfo, previous: BrokerInfo | None, now: Any) -> None:
    state = Broker.State.DOWN
    if broker.alive:
        state = Broker.State.SHUTTING_DOWN if broker.shutting_down else Broker.State.UP
    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "rack": broker.rack or "",
        "state": state,
        "epoch": broker.epoch,
        "incarnation": broker.incarnation,
    }
    if previous is None or previous.alive != broker.alive:
        values["state_changed_at"] = now
    if previous is None or previous.epoch != broker.epoch:
        values["registered_at"] = now
    Broker.objects.update_or_create(id=broker.id, defaults=values)


def _write_topic(topic: TopicInfo, previous: TopicInfo | None) -> None:
    if previous is not None and previous.topic_id != topic.topic_id:
        Topic.objects.filter(name=topic.name).delete()
        previous = None
    if previous is None:
        row = Topic.objects.create(
            name=topic.name, topic_id=topic.topic_id, internal=topic.internal
        )
    else:
        row = Topic.objects.get(name=topic.name)
    if previous is None or previous.configs != topic.configs:
        TopicConfig.objects.filter(topic=row).exclude(name__in=list(topic.configs)).delete()
        for name, value in topic.configs.items():
            TopicConfig.objects.update_or_create(topic=row, name=name, defaults={"value": value})
    old_partitions = previous.partitions if previous is not None else ()
    for state in topic.partitions:
        old = old_partitions[state.index] if state.index < len(old_partitions) else None
        if old == state:
            continue
        partition, _ = Partition.objects.update_or_create(
            topic=row,
            index=state.index,
            defaults={
                "leader_id": None if state.leader < 0 else state.leader,
                "leader_epoch": state.leader_epoch,
                "partition_epoch": state.partition_epoch,
            },
        )
        if old is None or (old.replicas, old.isr, old.adding, old.removing) != (
            state.replicas,
            state.isr,
            state.adding,
            state.removing,
        ):
            _write_replicas(partition, state)


def _write_replicas(partition: Partition, state: PartitionState) -> None:
    Replica.objects.filter(partition=partition).exclude(broker_id__in=state.replicas).delete()
    for position, broker_id in enumerate(state.replicas):
        role = Replica.Role.MEMBER
        if broker_id in state.adding:
            role = Replica.Role.ADDING
        elif broker_id in state.removing:
            role = Replica.Role.REMOVING
        Replica.objects.update_or_create(
            partition=partition,
            broker_id=broker_id,
            defaults={"position": position, "in_sync": broker_id in state.isr, "role": role},
        )


def allocate_producer_ids(broker_id: int, size: int = 1000) -> tuple[int, int]:
    """Hand a broker the next block of producer ids (KIP-730); ids never repeat."""
    close_old_connections()
    with transaction.atomic():
        cluster_state()
        ClusterState.objects.filter(pk=1).update(next_producer_id=F("next_producer_id") + size)
        first = ClusterState.objects.get(pk=1).next_producer_id - size
        ProducerIdBlock.objects.create(broker_id=broker_id, first_id=first, size=size)
        return first, size
