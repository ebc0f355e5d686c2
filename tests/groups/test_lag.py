"""`manage.py monitor` pushes every group's lag over Channels each second and keeps its history."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest
import redis
from channels_redis.pubsub import RedisPubSubChannelLayer
from confluent_kafka import TopicPartition

from kafkaweb.cluster import Cluster
from streams import events
from tests.groups.conftest import group_id, produce
from tests.groups.test_offsets import assign_consumer

pytestmark = pytest.mark.cluster


async def first_update_where(
    url: str, accept: Callable[[dict[str, Any]], bool], timeout_s: float = 60
) -> dict[str, Any]:
    layer = RedisPubSubChannelLayer(hosts=[url])
    channel = await layer.new_channel()
    await layer.group_add(events.LAG_GROUP, channel)
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await layer.receive(channel)
                if accept(message):
                    return message
    finally:
        await layer.group_discard(events.LAG_GROUP, channel)
        await layer.flush()


def test_lag_is_pushed_every_second_and_kept_for_the_chart(
    groups_cluster: Cluster, bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(2)
    group = group_id()
    produce(bootstrap, topic, 20, 2)
    consumer = assign_consumer(bootstrap, group)
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, 0, 4), TopicPartition(topic, 1, 10)], asynchronous=False
        )
    finally:
        consumer.close()

    def ours(message: dict[str, Any]) -> bool:
        # Leaders publish their offsets once a second, so the first updates may still show
        # the partitions unknown (None) or as they were before the records arrived.
        return any(
            g["group"] == group
            and len(g["partitions"]) == 2
            and all(p["log_end"] == 10 for p in g["partitions"])
            for g in message["groups"]
        )

    url = groups_cluster.spec.effective_redis_url
    message = asyncio.run(first_update_where(url, ours))
    assert message["type"] == events.LAG_UPDATE
    assert datetime.datetime.fromisoformat(message["at"]).tzinfo is not None
    [entry] = [g for g in message["groups"] if g["group"] == group]
    assert entry["total_lag"] == 6
    assert entry["state"] == "Empty"
    assert entry["members"] == 0
    assert entry["partitions"] == [
        {"topic": topic, "partition": 0, "committed": 4, "log_end": 10, "lag": 6},
        {"topic": topic, "partition": 1, "committed": 10, "log_end": 10, "lag": 0},
    ]

    client = redis.Redis.from_url(url)
    history = client.lrange(events.lag_history_key(group), 0, -1)
    assert history and history[0].decode().endswith(" 6")
    latest = json.loads(client.get(events.LAG_LATEST_KEY))
    assert group in {g["group"] for g in latest["groups"]}
