"""Fixtures that start real Kafkaweb processes: Redis, controllers, brokers (and the web app)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kafkaweb.cluster import Cluster, ClusterSpec


def make_spec(
    tmp: Path,
    *,
    brokers: int = 3,
    controllers: int = 1,
    broker_config: str = "",
    session_timeout_ms: int | None = None,
) -> ClusterSpec:
    if session_timeout_ms is None:
        session_timeout_ms = int(os.environ.get("KAFKAWEB_TEST_SESSION_TIMEOUT_MS", "1500"))
    return ClusterSpec.isolated(
        tmp,
        brokers=brokers,
        controllers=controllers,
        broker_config=broker_config,
        session_timeout_ms=session_timeout_ms,
    )


@contextlib.contextmanager
def running_cluster(tmp: Path, **kwargs: object) -> Iterator[Cluster]:
    cluster = Cluster(make_spec(tmp, **kwargs))  # type: ignore[arg-type]
    # Its data dies with the test run: no clean shutdown to wait for.
    with cluster.running(web=False, keep=False):
        wait_until_ready(cluster)
        yield cluster


def wait_until_ready(cluster: Cluster, timeout_s: float = 60.0) -> None:
    cluster.wait_until_ready(timeout_s)


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
