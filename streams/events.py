"""Publishing cluster events: stored as ClusterEvent rows and pushed to the UI's Channels groups."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from streams.models import ClusterEvent

__all__ = ("CLUSTER_GROUP", "ClusterEvent", "publish", "publish_stored", "record")

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
