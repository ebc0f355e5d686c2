"""Reads of cluster metadata for the UI, the API and the CLI."""

from __future__ import annotations

import datetime
import functools
import json
import math
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from brokers import control
from streams import events
from streams.models import (
    Broker,
    ClusterEvent,
    CommittedOffset,
    ConsumerGroup,
    Partition,
    Replica,
    Topic,
    TopicConfig,
)


def broker_list() -> QuerySet[Broker]:
    return Broker.objects.all()


# Consumer groups and lag ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionOffsets:
    """What a partition's leader publishes each second (brokers/control.py partitions_key)."""

    log_start: int
    high_watermark: int
    log_end: int


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int
    log_end: int | None
    lag: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "log_end": self.log_end,
            "lag": self.lag,
        }


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    state: str
    members: int
    partitions: tuple[PartitionLag, ...]

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions if p.lag is not None)

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "state": self.state,
            "members": self.members,
            "total_lag": self.total_lag,
            "partitions": [p.to_json() for p in self.partitions],
        }


@dataclass(frozen=True, slots=True)
class LagSnapshot:
    at: datetime.datetime
    groups: tuple[GroupLag, ...]

    def to_message(self) -> dict[str, Any]:
        """The `lag.update` message documented in streams/events.py."""
        return {
            "type": events.LAG_UPDATE,
            "at": self.at.isoformat(),
            "groups": [g.to_json() for g in self.groups],
        }


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def group_list() -> QuerySet[ConsumerGroup]:
    return ConsumerGroup.objects.all()


def group_get(group_id: str) -> ConsumerGroup | None:
    return ConsumerGroup.objects.filter(group_id=group_id).first()


def group_offsets(group_id: str) -> QuerySet[CommittedOffset]:
    return CommittedOffset.objects.filter(group__group_id=group_id).order_by("topic", "partition")


def partition_offsets() -> dict[tuple[str, int], PartitionOffsets]:
    """Every partition's offsets as its leader last published them (missing: no live leader)."""
    client = _redis()
    ids = sorted(int(i) for i in client.smembers(control.BROKER_IDS_KEY))
    if not ids:
        return {}
    pipe = client.pipeline(transaction=False)
    for broker_id in ids:
        pipe.hgetall(control.partitions_key(broker_id))
    out: dict[tuple[str, int], PartitionOffsets] = {}
    for published in pipe.execute():
        for key, raw in published.items():
            topic, _, index = key.decode().rpartition("/")
            data = json.loads(raw)
            out[(topic, int(index))] = PartitionOffsets(
                data["log_start"], data["high_watermark"], data["log_end"]
            )
    return out


def group_lag_snapshot(group_id: str | None = None) -> LagSnapshot:
    """Lag (high watermark minus committed offset) of every group, or of one group."""
    at = timezone.now()
    offsets = partition_offsets()
    groups = ConsumerGroup.objects.all()
    committed = CommittedOffset.objects.all()
    if group_id is not None:
        groups = groups.filter(group_id=group_id)
        committed = committed.filter(group__group_id=group_id)
    by_group: dict[str, list[PartitionLag]] = {}
    for name, topic, partition, offset in committed.values_list(
        "group__group_id", "topic", "partition", "offset"
    ).order_by("group__group_id", "topic", "partition"):
        published = offsets.get((topic, partition))
        log_end = None if published is None else published.high_watermark
        lag = None if log_end is None else max(0, log_end - offset)
        by_group.setdefault(name, []).append(PartitionLag(topic, partition, offset, log_end, lag))
    return LagSnapshot(
        at=at,
        groups=tuple(
            GroupLag(name, state, len(members or ()), tuple(by_group.get(name, ())))
            for name, state, members in groups.values_list("group_id", "state", "members").order_by(
                "group_id"
            )
        ),
    )


def group_lag_history(group_id: str) -> list[tuple[datetime.datetime, int]]:
    """The group's total lag over the last few minutes, oldest first."""
    entries = _redis().lrange(events.lag_history_key(group_id), 0, -1)
    out = []
    for entry in reversed(entries):
        at_ms, _, total = entry.decode().partition(" ")
        out.append((datetime.datetime.fromtimestamp(int(at_ms) / 1000, datetime.UTC), int(total)))
    return out


def group_lag_latest() -> dict[str, Any] | None:
    """The last `lag.update` message the monitor sent, if it is running."""
    raw = _redis().get(events.LAG_LATEST_KEY)
    return None if raw is None else json.loads(raw)


# The admin UI: cluster, topics, groups and events pages -----------------------------------

PAGE_SIZES = (25, 50, 100, 200)
TOPIC_SORTS = ("name", "partitions", "size", "messages", "rate")
GROUP_SORTS = ("group", "state", "members", "lag")

_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis:
    """A Redis client for the configured URL (one per URL, shared by threads)."""
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=2
        )
    return client


@dataclass(frozen=True, slots=True)
class Pagination:
    page: int
    pages: int
    total: int
    page_size: int

    @classmethod
    def of(cls, total: int, page: int, page_size: int) -> Pagination:
        pages = max(1, math.ceil(total / page_size))
        return cls(min(max(1, page), pages), pages, total, page_size)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    @property
    def first(self) -> int:
        return min(self.total, self.offset + 1)

    @property
    def last(self) -> int:
        return min(self.total, self.offset + self.page_size)


def stats_latest() -> dict[str, Any] | None:
    """The last `cluster.stats` message the monitor sent (streams/events.py), if any."""
    try:
        raw = redis_client().get(events.STATS_LATEST_KEY)
    except redis.RedisError:
        return None
    return None if raw is None else json.loads(raw)


def stats_history() -> list[tuple[int, float, float, float]]:
    """(unix ms, bytes in/s, bytes out/s, messages in/s), oldest first."""
    try:
        entries = redis_client().lrange(events.STATS_HISTORY_KEY, 0, -1)
    except redis.RedisError:
        return []
    out = []
    for entry in reversed(entries):
        at, bytes_in, bytes_out, messages_in = entry.decode().split()
        out.append((int(at), float(bytes_in), float(bytes_out), float(messages_in)))
    return out


@dataclass(frozen=True, slots=True)
class BrokerRow:
    id: int
    host: str
    port: int
    rack: str
    state: str
    stats: dict[str, Any] | None  # the broker's entry of the latest stats message

    @property
    def alive(self) -> bool:
        return self.stats is not None and bool(self.stats.get("alive"))


@dataclass(frozen=True, slots=True)
class ClusterOverview:
    brokers: tuple[BrokerRow, ...]
    controller: dict[str, int] | None
    totals: dict[str, float]
    topics: int
    partitions: int
    offline_partitions: int
    under_replicated: int
    groups: int

    @property
    def brokers_up(self) -> int:
        return sum(1 for b in self.brokers if b.alive)


def cluster_overview() -> ClusterOverview:
    stats = stats_latest() or {}
    by_id = {b["id"]: b for b in stats.get("brokers", [])}
    brokers = tuple(
        BrokerRow(id, host, port, rack, state, by_id.get(id))
        for id, host, port, rack, state in Broker.objects.values_list(
            "id", "host", "port", "rack", "state"
        )
    )
    return ClusterOverview(
        brokers=brokers,
        controller=stats.get("controller"),
        totals=stats.get("totals", {}),
        topics=Topic.objects.count(),
        partitions=Partition.objects.count(),
        offline_partitions=Partition.objects.filter(leader__isnull=True).count(),
        under_replicated=Partition.objects.filter(replicas__in_sync=False).distinct().count(),
        groups=ConsumerGroup.objects.count(),
    )


# Partition offsets as leaders publish them -------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublishedPartition:
    """A partition's offsets and size from its leader's last stats (brokers/control.py)."""

    broker: int
    log_start: int
    high_watermark: int
    log_end: int
    size: int
    leader_epoch: int
    isr: tuple[int, ...]

    @property
    def messages(self) -> int:
        return max(0, self.high_watermark - self.log_start)

    def to_json(self) -> dict[str, Any]:
        return {
            "log_start": self.log_start,
            "high_watermark": self.high_watermark,
            "log_end": self.log_end,
            "size": self.size,
        }


def _published(broker: int, raw: bytes) -> PublishedPartition:
    data = json.loads(raw)
    return PublishedPartition(
        broker,
        data["log_start"],
        data["high_watermark"],
        data["log_end"],
        data["size"],
        data.get("leader_epoch", -1),
        tuple(data.get("isr", ())),
    )


def _broker_ids() -> list[int]:
    return sorted(int(i) for i in redis_client().smembers(control.BROKER_IDS_KEY))


def published_partitions(
    partitions: list[tuple[str, int]],
) -> dict[tuple[str, int], PublishedPartition]:
    """The named partitions' published offsets; a dead leader's stale entry loses to its
    successor's by leader epoch."""
    if not partitions:
        return {}
    try:
        ids = _broker_ids()
        fields = [f"{t}/{p}" for t, p in partitions]
        pipe = redis_client().pipeline(transaction=False)
        for broker in ids:
            pipe.hmget(control.partitions_key(broker), fields)
        replies = pipe.execute()
    except redis.RedisError:
        return {}
    out: dict[tuple[str, int], PublishedPartition] = {}
    for broker, values in zip(ids, replies, strict=True):
        for key, raw in zip(partitions, values, strict=True):
            if raw is None:
                continue
            found = _published(broker, raw)
            current = out.get(key)
            if current is None or found.leader_epoch > current.leader_epoch:
                out[key] = found
    return out


def topic_totals(published: list[dict[bytes, bytes]]) -> dict[str, tuple[int, int]]:
    """(size, messages) of every topic from the leaders' partition hashes (brokers/control.py)."""
    best: dict[bytes, tuple[int, int, int]] = {}
    for entries in published:
        if not entries:
            continue
        # One parse of a JSON array costs half as much as one parse per partition.
        values = json.loads(b"[" + b",".join(entries.values()) + b"]")
        for key, data in zip(entries, values, strict=True):
            epoch = data.get("leader_epoch", -1)
            current = best.get(key)
            if current is None or epoch > current[0]:
                best[key] = (epoch, data["size"], data["high_watermark"] - data["log_start"])
    totals: dict[str, tuple[int, int]] = {}
    for key, (_, size, messages) in best.items():
        topic = key.decode().rpartition("/")[0]
        size_sum, messages_sum = totals.get(topic, (0, 0))
        totals[topic] = (size_sum + size, messages_sum + max(0, messages))
    return totals


def _topic_totals_all() -> dict[str, tuple[int, int]]:
    """Every topic's (size, messages): as the monitor last summed them, else summed now."""
    try:
        stored = redis_client().get(events.TOPIC_TOTALS_KEY)
        if stored is not None:
            return {name: (v[0], v[1]) for name, v in json.loads(stored).items()}
        ids = _broker_ids()
        pipe = redis_client().pipeline(transaction=False)
        for broker in ids:
            pipe.hgetall(control.partitions_key(broker))
        return topic_totals(pipe.execute())
    except redis.RedisError:
        return {}


# Topics ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicRow:
    name: str
    internal: bool
    partitions: int
    replication_factor: int
    under_replicated: int
    offline: int
    size: int | None
    messages: int | None
    rates: tuple[float, float, float]  # bytes in, messages in, bytes out per second


@dataclass(frozen=True, slots=True)
class TopicPage:
    rows: tuple[TopicRow, ...]
    pagination: Pagination
    search: str
    sort: str
    descending: bool
    internal: bool


def _topic_rates() -> dict[str, tuple[float, float, float]]:
    stats = stats_latest() or {}
    return {name: (r[0], r[1], r[2]) for name, r in stats.get("topics", {}).items()}


def topic_page(
    *,
    search: str = "",
    sort: str = "name",
    descending: bool = False,
    page: int = 1,
    page_size: int = 50,
    internal: bool = True,
) -> TopicPage:
    """One page of topics, searched and sorted on the server; a few queries whatever the count."""
    sort = sort if sort in TOPIC_SORTS else "name"
    topics = Topic.objects.all()
    if search:
        topics = topics.filter(name__icontains=search)
    if not internal:
        topics = topics.filter(internal=False)
    pagination = Pagination.of(topics.count(), page, page_size)
    window = slice(pagination.offset, pagination.offset + page_size)
    rates = _topic_rates()
    totals: dict[str, tuple[int, int]] | None = None
    if sort == "name":
        chosen = list(
            topics.order_by("-name" if descending else "name").values_list(
                "id", "name", "internal"
            )[window]
        )
    elif sort == "partitions":
        chosen = list(
            topics.annotate(count=Count("partitions"))
            .order_by("-count" if descending else "count", "name")
            .values_list("id", "name", "internal")[window]
        )
    else:
        everything = list(topics.order_by("name").values_list("id", "name", "internal"))
        if sort == "rate":
            everything.sort(key=lambda t: rates.get(t[1], (0.0, 0.0, 0.0))[0], reverse=descending)
        else:
            all_totals = totals = _topic_totals_all()
            column = 0 if sort == "size" else 1
            everything.sort(
                key=lambda t: all_totals.get(t[1], (-1, -1))[column], reverse=descending
            )
        chosen = everything[window]
    ids = [t[0] for t in chosen]
    partitions: dict[int, list[tuple[int, int | None]]] = {}
    topic_of: dict[int, int] = {}
    for partition_id, topic_id, index, leader in Partition.objects.filter(
        topic_id__in=ids
    ).values_list("id", "topic_id", "index", "leader_id"):
        partitions.setdefault(topic_id, []).append((index, leader))
        topic_of[partition_id] = topic_id
    replicas: dict[int, int] = {}
    lagging: dict[int, set[int]] = {}
    for partition_id, in_sync in Replica.objects.filter(partition_id__in=topic_of).values_list(
        "partition_id", "in_sync"
    ):
        replicas[partition_id] = replicas.get(partition_id, 0) + 1
        if not in_sync:
            lagging.setdefault(topic_of[partition_id], set()).add(partition_id)
    rf_by_topic: dict[int, int] = {}
    for partition_id, count in replicas.items():
        topic_id = topic_of[partition_id]
        rf_by_topic[topic_id] = max(rf_by_topic.get(topic_id, 0), count)
    if totals is None:
        published = published_partitions(
            [
                (name, index)
                for topic_id, name, _ in chosen
                for index, _ in partitions.get(topic_id, ())
            ]
        )
        totals = {}
        for (name, _), found in published.items():
            size, messages = totals.get(name, (0, 0))
            totals[name] = (size + found.size, messages + found.messages)
    rows = tuple(
        TopicRow(
            name=name,
            internal=is_internal,
            partitions=len(partitions.get(topic_id, ())),
            replication_factor=rf_by_topic.get(topic_id, 0),
            under_replicated=len(lagging.get(topic_id, ())),
            offline=sum(1 for _, leader in partitions.get(topic_id, ()) if leader is None),
            size=totals[name][0] if name in totals else None,
            messages=totals[name][1] if name in totals else None,
            rates=rates.get(name, (0.0, 0.0, 0.0)),
        )
        for topic_id, name, is_internal in chosen
    )
    return TopicPage(rows, pagination, search, sort, descending, internal)


@dataclass(frozen=True, slots=True)
class PartitionRow:
    index: int
    leader: int | None
    leader_epoch: int
    replicas: tuple[tuple[int, bool], ...]  # (broker, in sync), preferred leader first
    published: PublishedPartition | None

    @property
    def isr(self) -> tuple[int, ...]:
        return tuple(b for b, in_sync in self.replicas if in_sync)

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.index,
            "leader": self.leader,
            "leader_epoch": self.leader_epoch,
            "replicas": [b for b, _ in self.replicas],
            "isr": list(self.isr),
            **(self.published.to_json() if self.published is not None else {}),
        }


@dataclass(frozen=True, slots=True)
class TopicDetail:
    name: str
    topic_id: str
    internal: bool
    created_at: datetime.datetime
    partitions: tuple[PartitionRow, ...]
    overrides: dict[str, str]

    @property
    def size(self) -> int:
        return sum(p.published.size for p in self.partitions if p.published is not None)

    @property
    def messages(self) -> int:
        return sum(p.published.messages for p in self.partitions if p.published is not None)

    @property
    def replication_factor(self) -> int:
        return max((len(p.replicas) for p in self.partitions), default=0)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "topic_id": self.topic_id,
            "internal": self.internal,
            "created_at": self.created_at.isoformat(),
            "replication_factor": self.replication_factor,
            "configs": self.overrides,
            "partitions": [p.to_json() for p in self.partitions],
        }


def topic_partitions(name: str) -> tuple[PartitionRow, ...]:
    """Leaders, replicas and ISR from the metadata DB; offsets from the leaders' stats."""
    rows = list(
        Partition.objects.filter(topic__name=name)
        .order_by("index")
        .values_list("id", "index", "leader_id", "leader_epoch")
    )
    replicas: dict[int, list[tuple[int, bool]]] = {}
    for partition_id, broker, in_sync in (
        Replica.objects.filter(partition__topic__name=name)
        .order_by("partition_id", "position")
        .values_list("partition_id", "broker_id", "in_sync")
    ):
        replicas.setdefault(partition_id, []).append((broker, in_sync))
    published = published_partitions([(name, index) for _, index, _, _ in rows])
    return tuple(
        PartitionRow(
            index, leader, epoch, tuple(replicas.get(pid, ())), published.get((name, index))
        )
        for pid, index, leader, epoch in rows
    )


def topic_detail(name: str) -> TopicDetail | None:
    found = Topic.objects.filter(name=name).values_list("id", "topic_id", "internal", "created_at")
    if not found:
        return None
    topic_id, uuid, internal, created_at = found[0]
    overrides = dict(
        TopicConfig.objects.filter(topic_id=topic_id).order_by("name").values_list("name", "value")
    )
    return TopicDetail(name, str(uuid), internal, created_at, topic_partitions(name), overrides)


@dataclass(frozen=True, slots=True)
class ReplicaMapRow:
    topic: str
    partition: int
    leader: int | None
    roles: tuple[str, ...]  # per broker: "leader", "follower", "out" (not in ISR) or ""


def replica_map(
    broker_ids: list[int], *, search: str = "", limit: int = 60
) -> tuple[tuple[ReplicaMapRow, ...], int]:
    """Partitions (of topics matching `search`) × brokers, and how many partitions matched."""
    partitions = Partition.objects.filter(topic__internal=False)
    if search:
        partitions = partitions.filter(topic__name__icontains=search)
    total = partitions.count()
    rows = list(
        partitions.order_by("topic__name", "index").values_list(
            "id", "topic__name", "index", "leader_id"
        )[:limit]
    )
    members: dict[int, dict[int, bool]] = {}
    for partition_id, broker, in_sync in Replica.objects.filter(
        partition_id__in=[r[0] for r in rows]
    ).values_list("partition_id", "broker_id", "in_sync"):
        members.setdefault(partition_id, {})[broker] = in_sync
    out = []
    for partition_id, topic, index, leader in rows:
        held = members.get(partition_id, {})
        roles = tuple(
            "" if b not in held else "leader" if b == leader else "follower" if held[b] else "out"
            for b in broker_ids
        )
        out.append(ReplicaMapRow(topic, index, leader, roles))
    return tuple(out), total


# Consumer groups (pages) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GroupRow:
    group_id: str
    state: str
    members: int
    protocol: str
    coordinator: int | None
    total_lag: int | None


@dataclass(frozen=True, slots=True)
class GroupPage:
    rows: tuple[GroupRow, ...]
    pagination: Pagination
    search: str
    sort: str
    descending: bool


def _latest_lag_by_group() -> dict[str, dict[str, Any]]:
    try:
        latest = group_lag_latest() or {}
    except redis.RedisError:
        return {}
    return {g["group"]: g for g in latest.get("groups", [])}


def group_page(
    *,
    search: str = "",
    sort: str = "group",
    descending: bool = False,
    page: int = 1,
    page_size: int = 50,
) -> GroupPage:
    sort = sort if sort in GROUP_SORTS else "group"
    groups = ConsumerGroup.objects.all()
    if search:
        groups = groups.filter(group_id__icontains=search)
    pagination = Pagination.of(groups.count(), page, page_size)
    window = slice(pagination.offset, pagination.offset + page_size)
    lag = _latest_lag_by_group()
    columns = ("group_id", "state", "members", "protocol", "coordinator_id")
    if sort in ("group", "state"):
        field = "group_id" if sort == "group" else "state"
        order = [f"-{field}" if descending else field, "group_id"]
        chosen = list(groups.order_by(*order).values_list(*columns)[window])
    else:
        everything = list(groups.order_by("group_id").values_list(*columns))
        if sort == "members":
            everything.sort(key=lambda g: len(g[2] or ()), reverse=descending)
        else:
            everything.sort(
                key=lambda g: lag.get(g[0], {}).get("total_lag", -1), reverse=descending
            )
        chosen = everything[window]
    rows = tuple(
        GroupRow(
            group_id,
            state,
            len(members or ()),
            protocol,
            coordinator,
            lag[group_id]["total_lag"] if group_id in lag else None,
        )
        for group_id, state, members, protocol, coordinator in chosen
    )
    return GroupPage(rows, pagination, search, sort, descending)


@dataclass(frozen=True, slots=True)
class GroupDetail:
    group: ConsumerGroup
    lag: GroupLag
    history: list[tuple[datetime.datetime, int]]
    owners: dict[tuple[str, int], dict[str, Any]]  # partition → the member it is assigned to

    def to_json(self) -> dict[str, Any]:
        return {
            **self.lag.to_json(),
            "protocol_type": self.group.protocol_type,
            "protocol": self.group.protocol,
            "generation": self.group.generation,
            "coordinator": self.group.coordinator_id,
            "member_details": self.group.members,
        }


def group_detail(group_id: str) -> GroupDetail | None:
    """A group with its lag (from the monitor's latest push, else computed now) and history."""
    group = group_get(group_id)
    if group is None:
        return None
    latest = _latest_lag_by_group().get(group_id)
    if latest is not None:
        lag = GroupLag(
            group_id,
            latest["state"],
            latest["members"],
            tuple(
                PartitionLag(p["topic"], p["partition"], p["committed"], p["log_end"], p["lag"])
                for p in latest["partitions"]
            ),
        )
    else:
        computed = group_lag_snapshot(group_id).groups
        lag = computed[0] if computed else GroupLag(group_id, group.state, 0, ())
    owners: dict[tuple[str, int], dict[str, Any]] = {}
    for member in group.members or ():
        for assigned in member.get("assignment") or ():
            for partition in assigned.get("partitions", ()):
                owners[(assigned["topic"], partition)] = member
    try:
        history = group_lag_history(group_id)
    except redis.RedisError:
        history = []
    return GroupDetail(group, lag, history, owners)


# Events ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventPage:
    events: tuple[ClusterEvent, ...]
    before: int | None  # pass as `before` for the next (older) page
    kind: str
    search: str


def event_page(
    *, kind: str = "", search: str = "", before: int | None = None, limit: int = 50
) -> EventPage:
    """Newest events first, `limit` at a time, keyed by id so live inserts do not shift pages."""
    found = ClusterEvent.objects.all().order_by("-id")
    if kind:
        found = found.filter(kind=kind)
    if search:
        found = found.filter(
            Q(message__icontains=search) | Q(topic__icontains=search) | Q(actor__icontains=search)
        )
    if before is not None:
        found = found.filter(id__lt=before)
    rows = tuple(found[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return EventPage(rows, rows[-1].pk if more and rows else None, kind, search)


def events_recent(limit: int = 12) -> tuple[ClusterEvent, ...]:
    return tuple(ClusterEvent.objects.order_by("-id")[:limit])
