"""Live pushes: rates from the brokers' counters, and what each websocket forwards to whom."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from brokers import control
from streams import events, selectors
from streams.routing import websocket_urlpatterns
from streams.services.live import StatsPublisher

pytestmark = pytest.mark.django_db


def stats(at: int, bytes_in: int, messages_in: int, bytes_out: int, **extra: Any) -> str:
    return json.dumps(
        {
            "at": at,
            "bytes_in": bytes_in,
            "messages_in": messages_in,
            "bytes_out": bytes_out,
            "partitions": 4,
            "leaders": 2,
            "under_replicated": 0,
            "disk_bytes": 100,
            "connections": 1,
            **extra,
        }
    )


def test_rates_come_from_two_samples_of_cumulative_counters(redis_url: str) -> None:
    client = selectors.redis_client()
    client.sadd(control.BROKER_IDS_KEY, 1, 2)
    client.set(control.CONTROLLER_KEY, "1:4")
    client.set(control.broker_key(1), "{}")
    client.set(control.stats_key(1), stats(1000, 5000, 50, 100))
    client.hset(
        control.traffic_key(1),
        "orders",
        json.dumps({"at": 1000, "bytes_in": 5000, "messages_in": 50, "bytes_out": 100}),
    )
    publisher = StatsPublisher()

    async def run() -> tuple[dict[str, Any], dict[str, Any]]:
        aclient = aioredis.Redis.from_url(redis_url)
        try:
            first = await publisher.snapshot(aclient)
            client.set(control.stats_key(1), stats(3000, 9000, 90, 2100))
            client.hset(
                control.traffic_key(1),
                "orders",
                json.dumps({"at": 3000, "bytes_in": 9000, "messages_in": 90, "bytes_out": 2100}),
            )
            second = await publisher.publish(aclient)
            return first, second
        finally:
            await aclient.aclose()

    first, second = asyncio.run(run())
    assert first["brokers"][0]["bytes_in_per_s"] == 0
    one, two = second["brokers"]
    assert (one["bytes_in_per_s"], one["messages_in_per_s"], one["bytes_out_per_s"]) == (
        2000,
        20,
        1000,
    )
    assert one["alive"] is True
    assert two == {"id": 2, "alive": False}
    assert second["controller"] == {"id": 1, "epoch": 4}
    assert second["topics"] == {"orders": [2000, 20, 1000]}
    assert second["totals"]["bytes_in_per_s"] == 2000
    assert json.loads(client.get(events.STATS_LATEST_KEY)) == second
    assert selectors.stats_history()[-1][1:] == (2000.0, 1000.0, 20.0)


def test_a_restarted_broker_does_not_show_negative_rates(redis_url: str) -> None:
    client = selectors.redis_client()
    client.sadd(control.BROKER_IDS_KEY, 1)
    client.set(control.broker_key(1), "{}")
    client.set(control.stats_key(1), stats(1000, 5000, 50, 100))
    publisher = StatsPublisher()

    async def run() -> dict[str, Any]:
        aclient = aioredis.Redis.from_url(redis_url)
        try:
            await publisher.snapshot(aclient)
            client.set(control.stats_key(1), stats(2000, 10, 1, 0))
            return await publisher.snapshot(aclient)
        finally:
            await aclient.aclose()

    assert asyncio.run(run())["brokers"][0]["bytes_in_per_s"] == 0


def communicator(path: str, user: Any) -> WebsocketCommunicator:
    app = URLRouter(websocket_urlpatterns)
    connection = WebsocketCommunicator(app, path)
    connection.scope["user"] = user
    return connection


def test_sockets_refuse_strangers() -> None:
    async def run() -> tuple[bool, int | None]:
        connection = communicator("/ws/live/", AnonymousUser())
        connected, code = await connection.connect()
        await connection.disconnect()
        return connected, code

    assert asyncio.run(run()) == (False, 4401)


def test_the_live_socket_forwards_what_a_page_subscribed_to(viewer: Any) -> None:
    selectors.redis_client().set(
        events.STATS_LATEST_KEY, json.dumps({"type": "cluster.stats", "at": 1, "brokers": []})
    )
    lag = {
        "type": events.LAG_UPDATE,
        "at": "2026-11-28T17:50:17+00:00",
        "groups": [
            {
                "group": "a",
                "state": "Stable",
                "members": 2,
                "total_lag": 7,
                "partitions": [{"lag": 7}],
            },
            {"group": "b", "state": "Empty", "members": 0, "total_lag": 0, "partitions": []},
        ],
    }

    async def run() -> list[dict[str, Any]]:
        layer = get_channel_layer()
        everything = communicator("/ws/live/", viewer)
        one_group = communicator("/ws/live/", viewer)
        assert (await everything.connect())[0] and (await one_group.connect())[0]
        await everything.send_json_to({"subscribe": ["stats", "lag", "events"]})
        await one_group.send_json_to({"subscribe": ["lag"], "group": "a"})
        received = [await everything.receive_json_from(2)]
        await asyncio.sleep(0.1)
        await layer.group_send(events.LAG_GROUP, lag)
        await layer.group_send(
            events.CLUSTER_GROUP, {"type": "cluster.event", "event": {"kind": "leader"}}
        )
        received += [await everything.receive_json_from(2), await everything.receive_json_from(2)]
        received.append(await one_group.receive_json_from(2))
        assert await one_group.receive_nothing(0.2)
        await everything.disconnect()
        await one_group.disconnect()
        return received

    stats_message, lag_summary, event, lag_detail = asyncio.run(run())
    assert stats_message == {"type": "stats", "at": 1, "brokers": []}
    assert lag_summary["groups"] == {"a": ["Stable", 2, 7], "b": ["Empty", 0, 0]}
    assert event == {"type": "event", "event": {"kind": "leader"}}
    assert lag_detail["group"]["group"] == "a" and lag_detail["group"]["partitions"] == [{"lag": 7}]


def test_a_scan_with_bad_input_answers_with_field_errors(viewer: Any) -> None:
    async def run() -> dict[str, Any]:
        connection = communicator("/ws/scan/", viewer)
        await connection.connect()
        await connection.send_json_to(
            {
                "action": "start",
                "topic": "t",
                "query": {"seek": "offset", "value": "(", "value_mode": "regex"},
            }
        )
        answer = await connection.receive_json_from(2)
        await connection.disconnect()
        return answer

    answer = asyncio.run(run())
    assert answer["type"] == "invalid"
    assert set(answer["errors"]) == {"offset", "value"}
