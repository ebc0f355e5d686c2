"""Publishing cluster events: stored as ClusterEvent rows and pushed to the UI's Channels groups."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from streams.models import ClusterEvent

__all__ = (
    "CLUSTER_GROUP",
    "LAG_GROUP",
    "LAG_HISTORY_SECONDS",
    "LAG_LATEST_KEY",
    "LAG_UPDATE",
    "STATS_GROUP",
    "STATS_HISTORY_KEY",
    "STATS_HISTORY_SECONDS",
    "STATS_LATEST_KEY",
    "STATS_UPDATE",
    "TOPIC_TOTALS_KEY",
    "TOPIC_TOTALS_SECONDS",
    "ClusterEvent",
    "lag_history_key",
    "publish",
    "publish_stored",
    "record",
)

log = logging.getLogger(__name__)

CLUSTER_GROUP = "cluster"


def event_payload(event: ClusterEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "at": event.created_at.isoformat(),
        "kind": event.kind,
        "broker": event.broker_id,
        "topic": event.topic,
        "partition": event.partition,
        "message": event.message,
        "data": event.data,
        "actor": event.actor,
    }


def publish(group: str, message_type: str, payload: dict[str, Any]) -> None:
    """Push to a Channels group; a missing or unreachable layer never fails the caller."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": message_type, **payload})
    except Exception:  # the event is stored; the live push is best effort
        log.warning("could not publish %s to %s", message_type, group, exc_info=True)


def publish_stored(stored: list[ClusterEvent]) -> None:
    """Push events already saved (in a transaction that has committed)."""
    for event in stored:
        publish(CLUSTER_GROUP, "cluster.event", {"event": event_payload(event)})


def record(
    kind: str,
    message: str,
    *,
    actor: str = "",
    broker_id: int | None = None,
    topic: str = "",
    partition: int | None = None,
    data: dict[str, Any] | None = None,
) -> ClusterEvent:
    """Store a ClusterEvent and push it to everyone watching the cluster."""
    event = ClusterEvent.objects.create(
        kind=kind,
        message=message,
        actor=actor,
        broker_id=broker_id,
        topic=topic,
        partition=partition,
        data=data or {},
    )
    publish(CLUSTER_GROUP, "cluster.event", {"event": event_payload(event)})
    return event


# Consumer lag ------------------------------------------------------------------------------
#
# `manage.py monitor` computes every group's lag once a second and sends it to the Channels
# group LAG_GROUP (a consumer's `lag_update` method receives it):
#
#   {"type": "lag.update",
#    "at": "2026-11-28T17:50:17.250000+00:00",       # when offsets were read, UTC, ISO 8601
#    "groups": [                                      # every known group, sorted by id
#      {"group": "orders",
#       "state": "Stable",                            # Empty, PreparingRebalance,
#                                                     # CompletingRebalance, Stable, Dead
#       "members": 3,
#       "total_lag": 42,                              # sum of the known partition lags
#       "partitions": [                               # committed partitions, by topic, index
#         {"topic": "payments", "partition": 0,
#          "committed": 100,                          # the group's committed offset
#          "log_end": 142,                            # the partition's high watermark
#          "lag": 42}]}]}                             # max(0, log_end - committed)
#
# "log_end" and "lag" are null while no live leader publishes the partition's offsets; such a
# partition does not count in "total_lag". The last LAG_HISTORY_SECONDS of each group's total
# lag are kept in Redis (lag_history_key) for charts, and the latest message under
# LAG_LATEST_KEY, so a page can draw before the next push.

LAG_GROUP = "lag"
LAG_UPDATE = "lag.update"
LAG_HISTORY_SECONDS = 600
LAG_LATEST_KEY = "kafkaweb:lag:latest"


def lag_history_key(group_id: str) -> str:
    """A Redis list of "<unix ms> <total lag>" entries, newest first."""
    return f"kafkaweb:lag:history:{group_id}"


# Cluster stats -----------------------------------------------------------------------------
#
# `manage.py monitor` also turns the brokers' cumulative counters (brokers/control.py) into
# rates once a second and sends them to the Channels group STATS_GROUP (`cluster_stats`):
#
#   {"type": "cluster.stats",
#    "at": 1796147417250,                             # unix ms
#    "controller": {"id": 1, "epoch": 4},             # the active controller, or null
#    "brokers": [{"id": 1, "alive": true, "partitions": 12, "leaders": 6,
#                 "under_replicated": 0, "disk_bytes": 1048576, "connections": 3,
#                 "bytes_in_per_s": 1200.0, "bytes_out_per_s": 800.0,
#                 "messages_in_per_s": 12.0}],
#    "totals": {"bytes_in_per_s": ..., "bytes_out_per_s": ..., "messages_in_per_s": ...,
#               "disk_bytes": ..., "under_replicated": ..., "connections": ...},
#    "topics": {"orders": [bytes_in_per_s, messages_in_per_s, bytes_out_per_s]}}
#                                                     # topics with traffic only
#
# The latest message is kept under STATS_LATEST_KEY; STATS_HISTORY_KEY is a Redis list of
# "<unix ms> <bytes in/s> <bytes out/s> <messages in/s>", newest first, for charts.
# Every TOPIC_TOTALS_SECONDS the monitor also sums each topic's size and messages (high
# watermark minus log start) over its partitions, under TOPIC_TOTALS_KEY as
# {"<topic>": [size bytes, messages]}: sorting 10,000 topics by size reads one key.

STATS_GROUP = "stats"
STATS_UPDATE = "cluster.stats"
STATS_LATEST_KEY = "kafkaweb:stats:latest"
STATS_HISTORY_KEY = "kafkaweb:stats:history"
STATS_HISTORY_SECONDS = 300
TOPIC_TOTALS_KEY = "kafkaweb:stats:topic-totals"
TOPIC_TOTALS_SECONDS = 5
