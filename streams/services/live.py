"""Cluster stats for the UI: the brokers' counters read from Redis each second, sent as rates.

`manage.py monitor` calls `cluster_stats_publish` once per cycle; the message it sends to the
Channels group events.STATS_GROUP is described in streams/events.py.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from django.conf import settings

from brokers import control
from streams import events, selectors

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Counters:
    """Cumulative traffic counters as a broker published them at `at` (unix ms)."""

    at: int
    bytes_in: int
    messages_in: int
    bytes_out: int

    @classmethod
    def of(cls, data: dict[str, Any]) -> Counters:
        return cls(
            int(data.get("at", 0)),
            int(data.get("bytes_in", 0)),
            int(data.get("messages_in", 0)),
            int(data.get("bytes_out", 0)),
        )

    def rates(self, previous: Counters | None) -> tuple[float, float, float]:
        """(bytes in, messages in, bytes out) per second since `previous`; 0 after a restart."""
        if previous is None or self.at <= previous.at:
            return 0.0, 0.0, 0.0
        seconds = (self.at - previous.at) / 1000
        deltas = (
            self.bytes_in - previous.bytes_in,
            self.messages_in - previous.messages_in,
            self.bytes_out - previous.bytes_out,
        )
        if min(deltas) < 0:
            return 0.0, 0.0, 0.0
        return (
            round(deltas[0] / seconds, 1),
            round(deltas[1] / seconds, 1),
            round(deltas[2] / seconds, 1),
        )


class StatsPublisher:
    """Keeps the previous counters of each broker and topic, to turn them into rates."""

    def __init__(self) -> None:
        self.totals_at = 0.0
        self.brokers: dict[int, Counters] = {}
        self.topics: dict[tuple[int, str], Counters] = {}
        self.rates: dict[int, tuple[float, float, float]] = {}
        self.topic_rates: dict[tuple[int, str], tuple[float, float, float]] = {}

    async def snapshot(self, client: aioredis.Redis) -> dict[str, Any]:
        ids = sorted(int(i) for i in await client.smembers(control.BROKER_IDS_KEY))
        pipe = client.pipeline(transaction=False)
        pipe.get(control.CONTROLLER_KEY)
        for broker in ids:
            pipe.get(control.stats_key(broker))
            pipe.exists(control.broker_key(broker))
            pipe.hgetall(control.traffic_key(broker))
        replies = await pipe.execute()
        lease = control.parse_lease(replies[0])
        brokers = []
        totals = {
            "bytes_in_per_s": 0.0,
            "bytes_out_per_s": 0.0,
            "messages_in_per_s": 0.0,
            "disk_bytes": 0,
            "under_replicated": 0,
            "connections": 0,
        }
        topics: dict[str, list[float]] = {}
        for i, broker in enumerate(ids):
            raw_stats, alive, traffic = replies[1 + 3 * i : 4 + 3 * i]
            stats = json.loads(raw_stats) if raw_stats else None
            row: dict[str, Any] = {"id": broker, "alive": bool(alive) and stats is not None}
            if stats is not None:
                counters = Counters.of(stats)
                # A sample not newer than the last keeps the last rates (brokers publish
                # every second, and so do we: the two clocks drift).
                if counters.at != getattr(self.brokers.get(broker), "at", None):
                    self.rates[broker] = counters.rates(self.brokers.get(broker))
                    self.brokers[broker] = counters
                bytes_in, messages_in, bytes_out = self.rates.get(broker, (0.0, 0.0, 0.0))
                row.update(
                    partitions=stats.get("partitions", 0),
                    leaders=stats.get("leaders", 0),
                    under_replicated=stats.get("under_replicated", 0),
                    disk_bytes=stats.get("disk_bytes", 0),
                    connections=stats.get("connections", 0),
                    bytes_in_per_s=bytes_in,
                    bytes_out_per_s=bytes_out,
                    messages_in_per_s=messages_in,
                )
                totals["bytes_in_per_s"] += bytes_in
                totals["bytes_out_per_s"] += bytes_out
                totals["messages_in_per_s"] += messages_in
                totals["disk_bytes"] += row["disk_bytes"]
                totals["under_replicated"] += row["under_replicated"]
                totals["connections"] += row["connections"]
            else:
                self.brokers.pop(broker, None)
                self.rates.pop(broker, None)
            brokers.append(row)
            for name, raw in (traffic or {}).items():
                topic = name.decode()
                key = (broker, topic)
                counters = Counters.of(json.loads(raw))
                if counters.at != getattr(self.topics.get(key), "at", None):
                    self.topic_rates[key] = counters.rates(self.topics.get(key))
                    self.topics[key] = counters
                rates = self.topic_rates.get(key, (0.0, 0.0, 0.0))
                if any(rates):
                    summed = topics.setdefault(topic, [0.0, 0.0, 0.0])
                    for j in range(3):
                        summed[j] = round(summed[j] + rates[j], 1)
        return {
            "type": events.STATS_UPDATE,
            "at": int(time.time() * 1000),
            "controller": None
            if lease is None or lease[1] == 0
            else {"id": lease[0], "epoch": lease[1]},
            "brokers": brokers,
            "totals": {k: round(v, 1) for k, v in totals.items()},
            "topics": topics,
        }

    async def publish(self, client: aioredis.Redis) -> dict[str, Any]:
        message = await self.snapshot(client)
        totals = message["totals"]
        keep = events.STATS_HISTORY_SECONDS
        pipe = client.pipeline(transaction=False)
        pipe.set(events.STATS_LATEST_KEY, json.dumps(message, separators=(",", ":")), ex=keep)
        pipe.lpush(
            events.STATS_HISTORY_KEY,
            f"{message['at']} {totals['bytes_in_per_s']} {totals['bytes_out_per_s']} "
            f"{totals['messages_in_per_s']}",
        )
        pipe.ltrim(events.STATS_HISTORY_KEY, 0, keep - 1)
        pipe.expire(events.STATS_HISTORY_KEY, keep)
        await pipe.execute()
        layer = get_channel_layer()
        if layer is not None:
            await layer.group_send(events.STATS_GROUP, message)
        if time.monotonic() - self.totals_at >= events.TOPIC_TOTALS_SECONDS:
            self.totals_at = time.monotonic()
            await publish_topic_totals(client)
        return message


async def publish_topic_totals(client: aioredis.Redis) -> None:
    """Sum every topic's size and messages over its partitions for the topic list's sorting."""
    ids = sorted(int(i) for i in await client.smembers(control.BROKER_IDS_KEY))
    pipe = client.pipeline(transaction=False)
    for broker in ids:
        pipe.hgetall(control.partitions_key(broker))
    totals = await asyncio.to_thread(selectors.topic_totals, await pipe.execute())
    await client.set(
        events.TOPIC_TOTALS_KEY,
        json.dumps({name: list(v) for name, v in totals.items()}, separators=(",", ":")),
        ex=events.TOPIC_TOTALS_SECONDS * 4,
    )


@functools.cache
def _publisher() -> StatsPublisher:
    return StatsPublisher()


@functools.cache
def _client() -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.REDIS_URL)


async def cluster_stats_publish() -> None:
    """One cycle: read every broker's stats, push rates to the UI. Never raises."""
    try:
        await _publisher().publish(_client())
    except Exception:  # Redis may be restarting; the next cycle tries again
        log.warning("cluster stats cycle failed", exc_info=True)
