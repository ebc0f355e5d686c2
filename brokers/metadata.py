"""The brokers' and controllers' only door to the metadata database (Django ORM).

Everything here is synchronous and must run off the event loop (in a worker thread).
"""

from __future__ import annotations

import base64
import datetime
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, transaction
from django.db.models import F
from django.utils import timezone

from brokers.coordinator.records import (
    CoordinatorFence,
    GroupCommit,
    GroupRow,
    GroupSnapshot,
    LoadedGroup,
    MemberRecord,
    OffsetRecord,
    PendingOffset,
    TxnRecord,
)
from brokers.image import BrokerInfo, MetadataDelta, MetadataImage, PartitionState, TopicInfo
from streams import events
from streams.models import (
    Broker,
    ClusterEvent,
    ClusterState,
    CommittedOffset,
    ConsumerGroup,
    Partition,
    PendingTxnOffset,
    ProducerIdBlock,
    Replica,
    Topic,
    TopicConfig,
    Transaction,
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


# Consumer groups and committed offsets (the group coordinator's storage) ------------------


class NotCoordinator(Exception):
    """The broker no longer leads the group's offsets partition at the epoch it wrote with."""


def _fence_holds(fence: CoordinatorFence) -> bool:
    """Whether the controller still has `fence.broker_id` leading the offsets partition.

    Every coordinator write checks this inside its transaction, so a coordinator that lost
    its partition cannot write after the new one has loaded the group.
    """
    row = (
        Partition.objects.filter(topic__name=fence.topic, index=fence.partition)
        .values_list("leader_id", "leader_epoch")
        .first()
    )
    return row is not None and row[0] == fence.broker_id and row[1] == fence.leader_epoch


def _snapshot_to_json(snapshot: GroupSnapshot) -> dict[str, Any]:
    return {
        "protocol_type": snapshot.protocol_type,
        "protocol": snapshot.protocol,
        "generation": snapshot.generation,
        "leader": snapshot.leader,
        "members": [
            {
                "member_id": m.member_id,
                "group_instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "rebalance_timeout_ms": m.rebalance_timeout_ms,
                "session_timeout_ms": m.session_timeout_ms,
                "metadata": base64.b64encode(m.metadata).decode(),
                "assignment": base64.b64encode(m.assignment).decode(),
            }
            for m in snapshot.members
        ],
    }


def _snapshot_from_json(data: Any) -> GroupSnapshot | None:
    if not data:
        return None
    return GroupSnapshot(
        protocol_type=data.get("protocol_type", ""),
        protocol=data.get("protocol", ""),
        generation=int(data.get("generation", 0)),
        leader=data.get("leader", ""),
        members=tuple(
            MemberRecord(
                member_id=m["member_id"],
                group_instance_id=m.get("group_instance_id"),
                client_id=m.get("client_id", ""),
                client_host=m.get("client_host", ""),
                rebalance_timeout_ms=int(m["rebalance_timeout_ms"]),
                session_timeout_ms=int(m["session_timeout_ms"]),
                metadata=base64.b64decode(m["metadata"]),
                assignment=base64.b64decode(m["assignment"]),
            )
            for m in data.get("members", [])
        ),
    )


def load_groups(fence: CoordinatorFence, partition_of: Callable[[str], int]) -> list[LoadedGroup]:
    """The groups of one offsets partition and their committed offsets, for a new coordinator."""
    close_old_connections()
    with transaction.atomic():
        if not _fence_holds(fence):
            raise NotCoordinator(f"{fence.topic}-{fence.partition} is not led at {fence}")
        for pk, group_id in ConsumerGroup.objects.filter(
            offsets_partition__isnull=True
        ).values_list("pk", "group_id"):
            ConsumerGroup.objects.filter(pk=pk).update(offsets_partition=partition_of(group_id))
        rows = list(
            ConsumerGroup.objects.filter(offsets_partition=fence.partition).values_list(
                "pk", "group_id", "snapshot"
            )
        )
        offsets: dict[int, list[OffsetRecord]] = {}
        for group_pk, topic, partition, offset, epoch, text, at in CommittedOffset.objects.filter(
            group__offsets_partition=fence.partition
        ).values_list(
            "group_id", "topic", "partition", "offset", "leader_epoch", "metadata", "committed_at"
        ):
            offsets.setdefault(group_pk, []).append(
                OffsetRecord(topic, partition, offset, epoch, text, int(at.timestamp() * 1000))
            )
        return [
            LoadedGroup(group_id, _snapshot_from_json(snapshot), tuple(offsets.get(pk, ())))
            for pk, group_id, snapshot in rows
        ]


_GROUP_FIELDS = (
    "state",
    "protocol_type",
    "protocol",
    "generation",
    "leader_member",
    "coordinator_id",
    "members",
    "offsets_partition",
    "updated_at",
)


def store_groups(rows: Sequence[GroupRow]) -> set[int]:
    """Upsert ConsumerGroup rows; returns the offsets partitions whose fence no longer holds."""
    close_old_connections()
    with transaction.atomic():
        holds: dict[int, bool] = {}
        with_snapshot: list[ConsumerGroup] = []
        display_only: list[ConsumerGroup] = []
        stored_events: list[ClusterEvent] = []
        for row in rows:
            partition = row.fence.partition
            if partition not in holds:
                holds[partition] = _fence_holds(row.fence)
            if not holds[partition]:
                continue
            group = ConsumerGroup(
                group_id=row.group_id,
                state=row.state,
                protocol_type=row.protocol_type,
                protocol=row.protocol,
                generation=row.generation,
                leader_member=row.leader,
                coordinator_id=row.fence.broker_id,
                members=[m.to_json() for m in row.members],
                offsets_partition=partition,
                snapshot=None if row.snapshot is None else _snapshot_to_json(row.snapshot),
            )
            (display_only if row.snapshot is None else with_snapshot).append(group)
            if row.event:
                stored_events.append(
                    ClusterEvent(
                        kind=ClusterEvent.Kind.GROUP,
                        message=row.event,
                        data={
                            "group": row.group_id,
                            "state": row.state,
                            "generation": row.generation,
                            "members": len(row.members),
                        },
                        actor=f"broker {row.fence.broker_id}",
                    )
                )
        for objs, fields in (
            (display_only, _GROUP_FIELDS),
            (with_snapshot, (*_GROUP_FIELDS, "snapshot")),
        ):
            if objs:
                ConsumerGroup.objects.bulk_create(
                    objs,
                    update_conflicts=True,
                    unique_fields=["group_id"],
                    update_fields=list(fields),
                )
        if stored_events:
            created = ClusterEvent.objects.bulk_create(stored_events)
            transaction.on_commit(lambda: events.publish_stored(created))
        return {p for p, ok in holds.items() if not ok}


def commit_offsets(commits: Sequence[GroupCommit]) -> list[bool]:
    """Store committed offsets durably, several commits in one transaction.

    Returns, per commit, whether it was stored: False where its coordinator is fenced. The
    coordinator answers a client only after this returns.
    """
    close_old_connections()
    with transaction.atomic():
        holds: dict[CoordinatorFence, bool] = {}
        for commit in commits:
            if commit.fence not in holds:
                holds[commit.fence] = _fence_holds(commit.fence)
        accepted = [c for c in commits if holds[c.fence]]
        if accepted:
            names = {c.group_id: c.fence for c in accepted}
            groups = dict(
                ConsumerGroup.objects.filter(group_id__in=list(names)).values_list("group_id", "pk")
            )
            missing = [name for name in names if name not in groups]
            if missing:
                ConsumerGroup.objects.bulk_create(
                    [
                        ConsumerGroup(
                            group_id=name,
                            offsets_partition=names[name].partition,
                            coordinator_id=names[name].broker_id,
                        )
                        for name in missing
                    ],
                    ignore_conflicts=True,
                )
                groups.update(
                    ConsumerGroup.objects.filter(group_id__in=missing).values_list("group_id", "pk")
                )
            # The latest commit of a partition wins; one statement may not touch a row twice.
            rows: dict[tuple[int, str, int], CommittedOffset] = {}
            for commit in accepted:
                for o in commit.offsets:
                    rows[(groups[commit.group_id], o.topic, o.partition)] = CommittedOffset(
                        group_id=groups[commit.group_id],
                        topic=o.topic,
                        partition=o.partition,
                        offset=o.offset,
                        leader_epoch=o.leader_epoch,
                        metadata=o.metadata,
                        committed_at=datetime.datetime.fromtimestamp(
                            o.commit_timestamp_ms / 1000, datetime.UTC
                        ),
                    )
            CommittedOffset.objects.bulk_create(
                list(rows.values()),
                update_conflicts=True,
                unique_fields=["group", "topic", "partition"],
                update_fields=["offset", "leader_epoch", "metadata", "committed_at"],
            )
        return [holds[c.fence] for c in commits]


def delete_offsets(
    fence: CoordinatorFence, group_id: str, partitions: Sequence[tuple[str, int]]
) -> None:
    close_old_connections()
    with transaction.atomic():
        if not _fence_holds(fence):
            raise NotCoordinator(f"{fence.topic}-{fence.partition} is not led at {fence}")
        for topic, partition in partitions:
            CommittedOffset.objects.filter(
                group__group_id=group_id, topic=topic, partition=partition
            ).delete()


def delete_groups(fence: CoordinatorFence, group_ids: Sequence[str]) -> None:
    """Remove groups and their committed offsets (DeleteGroups, or expiry of empty groups)."""
    close_old_connections()
    with transaction.atomic():
        if not _fence_holds(fence):
            raise NotCoordinator(f"{fence.topic}-{fence.partition} is not led at {fence}")
        ConsumerGroup.objects.filter(group_id__in=list(group_ids)).delete()


# Transactions (the transaction coordinator's storage) ------------------------------------------


def _require_fence(fence: CoordinatorFence) -> None:
    if not _fence_holds(fence):
        raise NotCoordinator(f"{fence.topic}-{fence.partition} is not led at {fence}")


def load_transactions(fence: CoordinatorFence) -> list[TxnRecord]:
    """The transactional ids one offsets partition's leader coordinates."""
    close_old_connections()
    with transaction.atomic():
        _require_fence(fence)
        return [
            TxnRecord(
                row.transactional_id,
                row.producer_id,
                row.producer_epoch,
                row.timeout_ms,
                row.state,
                tuple((str(t), int(p)) for t, p in row.partitions),
                row.started_ms,
                int(row.updated_at.timestamp() * 1000),
            )
            for row in Transaction.objects.filter(coordinator_partition=fence.partition)
        ]


def load_transaction(transactional_id: str) -> TxnRecord | None:
    """One transactional id's stored state (a partition leader checking a Produce)."""
    close_old_connections()
    row = Transaction.objects.filter(transactional_id=transactional_id).first()
    if row is None:
        return None
    return TxnRecord(
        row.transactional_id,
        row.producer_id,
        row.producer_epoch,
        row.timeout_ms,
        row.state,
        tuple((str(t), int(p)) for t, p in row.partitions),
        row.started_ms,
        int(row.updated_at.timestamp() * 1000),
    )


def store_transaction(fence: CoordinatorFence, record: TxnRecord) -> None:
    """Write a transactional id's state; raises NotCoordinator if the fence no longer holds."""
    close_old_connections()
    with transaction.atomic():
        _require_fence(fence)
        Transaction.objects.update_or_create(
            transactional_id=record.transactional_id,
            defaults={
                "producer_id": record.producer_id,
                "producer_epoch": record.producer_epoch,
                "timeout_ms": record.timeout_ms,
                "state": record.state,
                "partitions": [list(p) for p in record.partitions],
                "started_ms": record.started_ms,
                "coordinator_partition": fence.partition,
                "coordinator_id": fence.broker_id,
            },
        )


def delete_transaction(fence: CoordinatorFence, transactional_id: str) -> None:
    """transactional.id.expiration.ms: forget an id that has not been used for that long."""
    close_old_connections()
    with transaction.atomic():
        _require_fence(fence)
        Transaction.objects.filter(transactional_id=transactional_id).delete()


def _group_pks(fence: CoordinatorFence, group_ids: Iterable[str]) -> dict[str, int]:
    names = list(dict.fromkeys(group_ids))
    groups = dict(ConsumerGroup.objects.filter(group_id__in=names).values_list("group_id", "pk"))
    missing = [name for name in names if name not in groups]
    if missing:
        ConsumerGroup.objects.bulk_create(
            [
                ConsumerGroup(
                    group_id=name, offsets_partition=fence.partition, coordinator_id=fence.broker_id
                )
                for name in missing
            ],
            ignore_conflicts=True,
        )
        groups.update(
            ConsumerGroup.objects.filter(group_id__in=missing).values_list("group_id", "pk")
        )
    return groups


def _at(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)


def stage_txn_offsets(fence: CoordinatorFence, pending: Sequence[PendingOffset]) -> None:
    """Store a TxnOffsetCommit's offsets until their transaction ends."""
    close_old_connections()
    with transaction.atomic():
        _require_fence(fence)
        groups = _group_pks(fence, [p.group_id for p in pending])
        rows: dict[tuple[int, int, str, int], PendingTxnOffset] = {}
        for p in pending:
            o = p.offset
            rows[(groups[p.group_id], p.producer_id, o.topic, o.partition)] = PendingTxnOffset(
                group_id=groups[p.group_id],
                producer_id=p.producer_id,
                topic=o.topic,
                partition=o.partition,
                offset=o.offset,
                leader_epoch=o.leader_epoch,
                metadata=o.metadata,
                committed_at=_at(o.commit_timestamp_ms),
            )
        PendingTxnOffset.objects.bulk_create(
            list(rows.values()),
            update_conflicts=True,
            unique_fields=["group", "producer_id", "topic", "partition"],
            update_fields=["offset", "leader_epoch", "metadata", "committed_at"],
        )


def _pending_rows(fence: CoordinatorFence, producer_id: int | None) -> Any:
    rows = PendingTxnOffset.objects.filter(group__offsets_partition=fence.partition)
    return rows if producer_id is None else rows.filter(producer_id=producer_id)


def _pending_offsets(rows: Any) -> list[PendingOffset]:
    return [
        PendingOffset(
            group_id,
            producer_id,
            OffsetRecord(topic, partition, offset, epoch, text, int(at.timestamp() * 1000)),
        )
        for group_id, producer_id, topic, partition, offset, epoch, text, at in rows.values_list(
            "group__group_id",
            "producer_id",
            "topic",
            "partition",
            "offset",
            "leader_epoch",
            "metadata",
            "committed_at",
        )
    ]


def load_pending_txn_offsets(fence: CoordinatorFence) -> list[PendingOffset]:
    close_old_connections()
    with transaction.atomic():
        _require_fence(fence)
        return _pending_offsets(_pending_rows(fence, None))


def complete_txn_offsets(
    fence: CoordinatorFence, producer_id: int, commit: bool
) -> list[PendingOffset]:
    """A transaction marker reached the offsets partition: commit or drop the producer's
    pending offsets there. Returns those that became committed offsets."""
    close_old_connections()
    with transaction.atomic():
        _require_fence(fence)
        rows = _pending_rows(fence, producer_id)
        pending = _pending_offsets(rows) if commit else []
        if pending:
            groups = _group_pks(fence, [p.group_id for p in pending])
            CommittedOffset.objects.bulk_create(
                [
                    CommittedOffset(
                        group_id=groups[p.group_id],
                        topic=p.offset.topic,
                        partition=p.offset.partition,
                        offset=p.offset.offset,
                        leader_epoch=p.offset.leader_epoch,
                        metadata=p.offset.metadata,
                        committed_at=_at(p.offset.commit_timestamp_ms),
                    )
                    for p in pending
                ],
                update_conflicts=True,
                unique_fields=["group", "topic", "partition"],
                update_fields=["offset", "leader_epoch", "metadata", "committed_at"],
            )
        rows.delete()
        return pending
