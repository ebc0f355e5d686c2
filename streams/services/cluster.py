"""Cluster changes that are not topic or group changes: moving replicas off a broker, leaders."""

from __future__ import annotations

import functools
from typing import Any

import redis
from django.conf import settings

from brokers import control
from streams import events


class ClusterServiceError(Exception):
    """The controller refused or could not be reached; the message says why."""


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def _ask(name: str, payload: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
    try:
        reply = control.call(_redis(), name, payload, timeout_s)
    except control.ControllerUnavailable as exc:
        raise ClusterServiceError(str(exc)) from exc
    if reply.get("error_code"):
        raise ClusterServiceError(reply.get("error_message") or f"error code {reply['error_code']}")
    return reply


def broker_decommission(broker_id: int, *, actor: str) -> list[str]:
    """Move every replica off `broker_id` (add elsewhere, catch up, switch, drop).

    Returns the partitions being moved; the moves complete as the new replicas catch up.
    """
    reply = _ask("decommission_broker", {"broker_id": broker_id, "actor": actor})
    moved = [f"{p['topic']}-{p['partition']}" for p in reply.get("partitions", [])]
    events.record(
        "admin",
        f"broker {broker_id} decommissioned: {len(moved)} partitions moving off it",
        actor=actor,
        broker_id=broker_id,
        data={"partitions": moved},
    )
    return moved


def leaders_elect_preferred(
    *, actor: str, partitions: list[tuple[str, int]] | None = None
) -> dict[str, int]:
    """Move leadership back to each partition's preferred (first) replica where possible.

    Returns "topic-partition" → Kafka error code (0 moved, 84 not needed, 80 not available).
    """
    reply = _ask(
        "elect_leaders",
        {
            "partitions": None if partitions is None else [list(p) for p in partitions],
            "election_type": 0,
            "actor": actor,
        },
    )
    return {f"{t}-{p}": code for t, p, code in reply.get("partitions", [])}
