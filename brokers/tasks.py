"""Celery tasks: metadata deltas and message scans for brokers, controller requests."""

from __future__ import annotations

import functools
from typing import Any

import redis
from celery import shared_task
from kio.schema.errors import ErrorCode

from brokers import control, controller, node, scan
from kafkaweb import env

CONTROLLER_REQUESTS = (
    "create_topics",
    "delete_topics",
    "create_partitions",
    "alter_configs",
    "elect_leaders",
    "alter_partition",
    "controlled_shutdown",
    "reassign_partitions",
    "list_reassignments",
    "decommission_broker",
)


@shared_task(name="brokers.apply_metadata", ignore_result=True)
def apply_metadata(delta: dict[str, Any]) -> None:
    """A metadata delta from the controller; the broker refuses it if its epoch is stale."""
    if node.NODE is not None:
        node.NODE.submit_delta(delta)


@shared_task(name="brokers.scan", ignore_result=True)
def scan_partitions(request: dict[str, Any]) -> None:
    """Search partitions this broker holds (brokers/scan.py); results go to the named stream."""
    if node.NODE is not None:
        scan.start(node.NODE, request, env.REDIS_URL)


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(env.REDIS_URL)


def _controller_request(name: str) -> Any:
    def run(payload: dict[str, Any], reply_to: str) -> None:
        active = controller.CONTROLLER
        if active is None:
            result = {
                "error_code": int(ErrorCode.not_controller),
                "error_message": "not a controller",
            }
        else:
            result = active.handle(name, payload)
        control.reply(_redis(), reply_to, result)

    run.__name__ = name
    run.__qualname__ = name
    return shared_task(name=f"controller.{name}", ignore_result=True)(run)


controller_requests = {name: _controller_request(name) for name in CONTROLLER_REQUESTS}
