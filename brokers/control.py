"""Control-plane plumbing: the Redis keys of liveness and leadership, and controller requests.

Brokers heartbeat by refreshing a key that expires after the session timeout; the active
controller holds a lease key. A request to the controller is a Celery task on the active
controller's own queue; the answer comes back on a Redis list named in the request.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio as aioredis
from kombu.exceptions import OperationalError

from kafkaweb.celery import app

PREFIX = "kafkaweb"
CONTROLLER_KEY = f"{PREFIX}:controller"
BROKER_IDS_KEY = f"{PREFIX}:brokers"
REPLY_TTL_S = 120
SEND_TIMEOUT_S = 5.0


class ControllerUnavailable(Exception):
    """No controller answered in time; the caller maps this to REQUEST_TIMED_OUT / NOT_CONTROLLER."""


def broker_key(node_id: int) -> str:
    return f"{PREFIX}:broker:{node_id}"


def presence_name(node_id: int, incarnation: str) -> str:
    """The client name of a broker's Redis connections, for as long as its process lives.

    The kernel closes a process's sockets when it dies, so Redis drops these connections
    the moment a broker is killed: the controller sees that long before the heartbeat key
    expires.
    """
    return f"{PREFIX}-broker-{node_id}-{incarnation}"


def stats_key(node_id: int) -> str:
    """JSON of one broker's counters and gauges, refreshed every second."""
    return f"{PREFIX}:stats:broker:{node_id}"


def partitions_key(node_id: int) -> str:
    """Hash "topic/partition" → JSON offsets and size, for the partitions a broker leads."""
    return f"{PREFIX}:partitions:{node_id}"


def traffic_key(node_id: int) -> str:
    """Hash topic → JSON cumulative bytes and records in and out through a broker."""
    return f"{PREFIX}:traffic:{node_id}"


def controller_queue(node_id: int) -> str:
    return f"controller.{node_id}"


def broker_queue(node_id: int) -> str:
    return f"broker.{node_id}"


def parse_lease(value: bytes | str | None) -> tuple[int, int] | None:
    """The lease value is "<controller id>:<epoch>"; the epoch is 0 while being claimed."""
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    node, _, epoch = text.partition(":")
    try:
        return int(node), int(epoch or 0)
    except ValueError:
        return None


def _send(
    name: str, payload: dict[str, Any], controller_id: int, reply_to: str, timeout_s: float
) -> None:
    # A connection of its own with bounded socket waits, never one from the worker's pool:
    # a stopping worker tears its pool down, and a send must not wait on that.
    with app.connection_for_write(
        transport_options={
            "socket_timeout": SEND_TIMEOUT_S,
            "socket_connect_timeout": SEND_TIMEOUT_S,
        }
    ) as connection:
        app.send_task(
            f"controller.{name}",
            kwargs={"payload": payload, "reply_to": reply_to},
            queue=controller_queue(controller_id),
            expires=timeout_s,
            ignore_result=True,
            connection=connection,
            retry=False,
        )


def _in_daemon_thread(fn: Callable[..., None], *args: Any) -> asyncio.Future[None]:
    """Run a blocking call off the loop in a daemon thread, which can never hold up exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    def run() -> None:
        try:
            fn(*args)
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, exc)
        else:
            loop.call_soon_threadsafe(settle, None)

    threading.Thread(target=run, name="controller-request", daemon=True).start()
    return future


def call(
    client: redis.Redis, name: str, payload: dict[str, Any], timeout_s: float = 30.0
) -> dict[str, Any]:
    """Ask the active controller to do something and wait for its answer (blocking)."""
    deadline = time.monotonic() + timeout_s
    while True:
        lease = parse_lease(client.get(CONTROLLER_KEY))
        if lease is not None and lease[1] > 0:
            break
        if time.monotonic() >= deadline:
            raise ControllerUnavailable("no active controller")
        time.sleep(0.05)
    reply_to = f"{PREFIX}:reply:{uuid.uuid4().hex}"
    try:
        _send(name, payload, lease[0], reply_to, timeout_s)
    except (OSError, OperationalError) as exc:
        raise ControllerUnavailable(
            f"could not send {name} to controller {lease[0]}: {exc}"
        ) from exc
    remaining = max(0.1, deadline - time.monotonic())
    item = client.blpop([reply_to], timeout=remaining)
    if item is None:
        raise ControllerUnavailable(
            f"controller {lease[0]} did not answer {name} in {timeout_s:.0f} s"
        )
    answer: dict[str, Any] = json.loads(item[1])
    return answer


async def call_async(
    client: aioredis.Redis, name: str, payload: dict[str, Any], timeout_s: float = 30.0
) -> dict[str, Any]:
    """call() for the event loop: sending runs in a thread, waiting does not."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        lease = parse_lease(await client.get(CONTROLLER_KEY))
        if lease is not None and lease[1] > 0:
            break
        if loop.time() >= deadline:
            raise ControllerUnavailable("no active controller")
        await asyncio.sleep(0.05)
    reply_to = f"{PREFIX}:reply:{uuid.uuid4().hex}"
    try:
        await asyncio.wait_for(
            _in_daemon_thread(_send, name, payload, lease[0], reply_to, timeout_s),
            SEND_TIMEOUT_S * 2,
        )
    except (TimeoutError, OSError, OperationalError) as exc:
        raise ControllerUnavailable(
            f"could not send {name} to controller {lease[0]}: {exc}"
        ) from exc
    remaining = max(0.1, deadline - loop.time())
    item = await client.blpop([reply_to], timeout=remaining)
    if item is None:
        raise ControllerUnavailable(
            f"controller {lease[0]} did not answer {name} in {timeout_s:.0f} s"
        )
    answer: dict[str, Any] = json.loads(item[1])
    return answer


def reply(client: redis.Redis, reply_to: str, result: dict[str, Any]) -> None:
    pipe = client.pipeline()
    pipe.rpush(reply_to, json.dumps(result))
    pipe.expire(reply_to, REPLY_TTL_S)
    pipe.execute()
