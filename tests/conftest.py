"""Fixtures that start real Kafkaweb processes: Redis, controllers, brokers (and the web app)."""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kafkaweb.cluster import Cluster, ClusterSpec, free_port


def _consecutive_free_ports(count: int) -> int:
    for _ in range(200):
        base = free_port()
        if base + count >= 65535:
            continue
        ok = True
        for port in range(base, base + count):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no run of free ports")


def make_spec(
    tmp: Path, *, brokers: int = 3, controllers: int = 1, broker_config: str = ""
) -> ClusterSpec:
    return ClusterSpec(
        data_dir=tmp,
        host="127.0.0.1",
        brokers=brokers,
        broker_port=_consecutive_free_ports(brokers),
        controllers=controllers,
        web_port=free_port(),
        redis_url="",
        redis_port=free_port(),
        database_url=f"sqlite:///{tmp / 'metadata.sqlite3'}",
        session_timeout_ms=int(os.environ.get("KAFKAWEB_TEST_SESSION_TIMEOUT_MS", "1500")),
        broker_config=broker_config,
    )


@contextlib.contextmanager
def running_cluster(tmp: Path, **kwargs: object) -> Iterator[Cluster]:
    cluster = Cluster(make_spec(tmp, **kwargs))  # type: ignore[arg-type]
    with cluster.running(web=False):
        wait_until_ready(cluster)
        yield cluster


def wait_until_ready(cluster: Cluster, timeout_s: float = 60.0) -> None:
    """Until every broker is registered and answers Metadata with all brokers alive."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": cluster.spec.bootstrap_servers})
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            metadata = admin.list_topics(timeout=2)
            if len(metadata.brokers) == cluster.spec.brokers:
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise TimeoutError("cluster did not become ready")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A shared three-broker cluster for tests that do not stop brokers."""
    with running_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture
def bootstrap(cluster: Cluster) -> str:
    return cluster.spec.bootstrap_servers


@pytest.fixture
def topic_name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"
