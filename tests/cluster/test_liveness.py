"""How the controller tells a broker whose process is gone from one that is only slow."""

from __future__ import annotations

import socket
from typing import Any

import redis

from brokers import control
from brokers.controller import Controller, ControllerSettings
from brokers.image import BrokerInfo, MetadataImage


class FakeRedis:
    """The few Redis calls _departed makes, recorded."""

    def __init__(self, names: list[str] | None) -> None:
        self.names = names
        self.evals: list[tuple[Any, ...]] = []

    def register_script(self, script: str) -> object:
        return object()

    def client_list(self, _type: str) -> list[dict[str, str]]:
        if self.names is None:
            raise redis.ResponseError("NOPERM this user has no permissions to run 'client|list'")
        return [{"name": name} for name in self.names]

    def eval(self, *args: Any) -> int:
        self.evals.append(args)
        return 1


def controller_with(client: FakeRedis, port: int) -> tuple[Controller, dict[int, dict[str, Any]]]:
    controller = Controller(1, client, ControllerSettings(1500, {}))  # type: ignore[arg-type]
    broker = BrokerInfo(7, "127.0.0.1", port, None, alive=True, epoch=1, incarnation="abc")
    controller.image = MetadataImage.build(
        version=1, cluster_id="c", controller_id=1, controller_epoch=1, brokers=(broker,), topics=()
    )
    return controller, {7: {"host": "127.0.0.1", "port": port, "incarnation": "abc"}}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_broker_with_its_connections_is_not_probed() -> None:
    client = FakeRedis([control.presence_name(7, "abc"), "other"])
    controller, beats = controller_with(client, closed_port())
    assert controller._departed(beats) == set()
    assert client.evals == []


def test_no_connections_and_a_refusing_port_is_a_dead_broker() -> None:
    client = FakeRedis([control.presence_name(7, "an-older-incarnation")])
    controller, beats = controller_with(client, closed_port())
    assert controller._departed(beats) == {7}
    # Its heartbeat goes too, but only if it is still this incarnation's.
    assert client.evals[0][2:] == (control.broker_key(7), "abc")


def test_a_port_that_still_accepts_leaves_it_to_the_session_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = FakeRedis([])
        controller, beats = controller_with(client, listener.getsockname()[1])
        assert controller._departed(beats) == set()
    assert client.evals == []


def test_a_redis_that_refuses_client_list_leaves_it_to_the_session_timeout() -> None:
    controller, beats = controller_with(FakeRedis(None), closed_port())
    assert controller._departed(beats) == set()
    assert controller._departed(beats) == set()
