"""Consumer group changes: resetting committed offsets, deleting groups, publishing lag.

Offsets are looked up and committed through a real Kafka client against the brokers, exactly
as `kafka-consumer-groups.sh --reset-offsets` does, so the group coordinator applies its own
rules (a reset is only possible while the group has no members).
"""

from __future__ import annotations

import datetime
import enum
import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from confluent_kafka import (
    ConsumerGroupState,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec
from django.conf import settings

from kafkaweb import env
from streams import events
from streams.selectors import LagSnapshot

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0
INACTIVE_STATES = (ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD)


class GroupServiceError(Exception):
    """A group change that cannot be made; the message says why, for the UI and the CLI."""


class GroupNotEmpty(GroupServiceError):
    """The group has members; Kafka only resets or deletes inactive groups."""


class ResetStrategy(enum.Enum):
    EARLIEST = "earliest"
    LATEST = "latest"
    TIMESTAMP = "timestamp"
    OFFSET = "offset"
    SHIFT = "shift"


@dataclass(frozen=True, slots=True)
class OffsetReset:
    topic: str
    partition: int
    current: int | None
    target: int


def _admin(bootstrap_servers: str | None) -> AdminClient:
    return AdminClient(
        {
            "bootstrap.servers": bootstrap_servers or env.bootstrap_servers(),
            "client.id": "kafkaweb-admin",
        }
    )


def _result(future: Any, what: str) -> Any:
    try:
        return future.result(timeout=TIMEOUT_S)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError.NON_EMPTY_GROUP:
            raise GroupNotEmpty(f"{what}: the group has active members") from exc
        raise GroupServiceError(f"{what}: {error.str() if error else exc}") from exc
    except TimeoutError as exc:
        raise GroupServiceError(f"{what}: the brokers did not answer in time") from exc


def _check_inactive(admin: AdminClient, group_id: str) -> None:
    description = _result(
        admin.describe_consumer_groups([group_id], request_timeout=TIMEOUT_S)[group_id],
        f"describing group {group_id}",
    )
    if description.state not in INACTIVE_STATES:
        raise GroupNotEmpty(
            f"group {group_id} is {description.state.name.lower().replace('_', ' ')} with "
            f"{len(description.members)} members; stop its consumers first"
        )


def _offsets(
    admin: AdminClient, partitions: Sequence[tuple[str, int]], spec: OffsetSpec
) -> dict[tuple[str, int], int]:
    if not partitions:
        return {}
    futures = admin.list_offsets(
        {TopicPartition(t, p): spec for t, p in partitions}, request_timeout=TIMEOUT_S
    )
    return {
        (tp.topic, tp.partition): _result(f, f"listing offsets of {tp.topic}-{tp.partition}").offset
        for tp, f in futures.items()
    }


def group_offsets_reset(
    group_id: str,
    *,
    strategy: ResetStrategy,
    value: int | datetime.datetime | None = None,
    topics: Sequence[str] | None = None,
    execute: bool = False,
    actor: str = "",
    bootstrap_servers: str | None = None,
) -> list[OffsetReset]:
    """Plan (and with `execute`, commit) new offsets for an inactive group.

    `topics` None means the partitions the group has committed offsets for. OFFSET takes an
    offset, SHIFT a signed count, TIMESTAMP a datetime (the first record at or after it, else
    the end); targets are kept within each partition's earliest and latest offsets.
    """
    admin = _admin(bootstrap_servers)
    _check_inactive(admin, group_id)
    listed = _result(
        admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group_id)], request_timeout=TIMEOUT_S
        )[group_id],
        f"fetching the committed offsets of {group_id}",
    )
    current = {
        (tp.topic, tp.partition): tp.offset for tp in listed.topic_partitions if tp.offset >= 0
    }
    if topics is None:
        partitions = sorted(current)
    else:
        metadata = admin.list_topics(timeout=TIMEOUT_S)
        partitions = []
        for name in topics:
            topic = metadata.topics.get(name)
            if topic is None or topic.error is not None:
                raise GroupServiceError(f"topic {name} does not exist")
            partitions += [(name, p) for p in sorted(topic.partitions)]
    if not partitions:
        raise GroupServiceError(f"group {group_id} has no committed offsets; name the topics")
    earliest = _offsets(admin, partitions, OffsetSpec.earliest())
    latest = _offsets(admin, partitions, OffsetSpec.latest())

    def clamp(key: tuple[str, int], offset: int) -> int:
        return max(earliest[key], min(latest[key], offset))

    targets: dict[tuple[str, int], int] = {}
    if strategy is ResetStrategy.EARLIEST:
        targets = {k: earliest[k] for k in partitions}
    elif strategy is ResetStrategy.LATEST:
        targets = {k: latest[k] for k in partitions}
    elif strategy is ResetStrategy.OFFSET:
        if not isinstance(value, int):
            raise GroupServiceError("an offset reset needs an offset")
        targets = {k: clamp(k, value) for k in partitions}
    elif strategy is ResetStrategy.SHIFT:
        if not isinstance(value, int):
            raise GroupServiceError("a shift needs a number of records")
        missing = [f"{t}-{p}" for t, p in partitions if (t, p) not in current]
        if missing:
            raise GroupServiceError(f"no committed offset to shift from for {', '.join(missing)}")
        targets = {k: clamp(k, current[k] + value) for k in partitions}
    elif strategy is ResetStrategy.TIMESTAMP:
        if not isinstance(value, datetime.datetime):
            raise GroupServiceError("a timestamp reset needs a date and time")
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        found = _offsets(
            admin, partitions, OffsetSpec.for_timestamp(int(moment.timestamp() * 1000))
        )
        targets = {k: latest[k] if found[k] < 0 else clamp(k, found[k]) for k in partitions}
    plan = [OffsetReset(t, p, current.get((t, p)), targets[(t, p)]) for t, p in partitions]
    if not execute:
        return plan
    committed = _result(
        admin.alter_consumer_group_offsets(
            [
                ConsumerGroupTopicPartitions(
                    group_id, [TopicPartition(r.topic, r.partition, r.target) for r in plan]
                )
            ],
            request_timeout=TIMEOUT_S,
        )[group_id],
        f"committing new offsets for {group_id}",
    )
    failed = [tp for tp in committed.topic_partitions if tp.error is not None]
    if failed:
        tp = failed[0]
        if tp.error.code() in (KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS):
            raise GroupNotEmpty(f"group {group_id} got members while resetting; try again")
        raise GroupServiceError(f"{tp.topic}-{tp.partition}: {tp.error.str()}")
    described = strategy.value if value is None else f"{strategy.value} {value}"
    events.record(
        "admin",
        f"group {group_id}: offsets reset ({described}) on {len(plan)} partitions",
        actor=actor,
        data={
            "group": group_id,
            "strategy": strategy.value,
            "offsets": [
                {"topic": r.topic, "partition": r.partition, "from": r.current, "to": r.target}
                for r in plan
            ],
        },
    )
    return plan


def group_delete(group_id: str, *, actor: str = "", bootstrap_servers: str | None = None) -> None:
    """Delete an inactive group and its committed offsets (Kafka's DeleteGroups)."""
    admin = _admin(bootstrap_servers)
    _result(
        admin.delete_consumer_groups([group_id], request_timeout=TIMEOUT_S)[group_id],
        f"deleting group {group_id}",
    )
    events.record("admin", f"group {group_id} deleted", actor=actor, data={"group": group_id})


@functools.cache
def _async_redis() -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.REDIS_URL)


async def lag_publish(snapshot: LagSnapshot) -> None:
    """Push a lag snapshot to the UI and keep each group's recent total lag for its chart."""
    message = snapshot.to_message()
    at_ms = int(snapshot.at.timestamp() * 1000)
    client = _async_redis()
    pipe = client.pipeline(transaction=False)
    keep = events.LAG_HISTORY_SECONDS
    for group in message["groups"]:
        key = events.lag_history_key(group["group"])
        pipe.lpush(key, f"{at_ms} {group['total_lag']}")
        pipe.ltrim(key, 0, keep - 1)
        pipe.expire(key, keep)
    pipe.set(events.LAG_LATEST_KEY, json.dumps(message, separators=(",", ":")), ex=keep)
    await pipe.execute()
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(events.LAG_GROUP, message)
