"""View and API tests: a database and a Redis of their own, users of both roles, no brokers.

Services that would talk to Kafka are replaced per test (`fake_services`), so these tests
see exactly what a view passes on, and that nothing is passed on when input is bad.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from kafkaweb.cluster import private_redis
from streams import selectors, services
from streams.models import Broker, ClusterEvent, ConsumerGroup, Partition, Replica, Topic

PASSWORD = "a-long-test-password"


@pytest.fixture(scope="session")
def django_db_modify_db_settings(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A test database per run, so runs in parallel never share one."""
    from django.conf import settings

    name = tmp_path_factory.mktemp("web-db") / "test.sqlite3"
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(name)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_redis(tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(autouse=True)
def isolated(settings: Any, redis_url: str) -> Iterator[None]:
    """Point Redis reads at the private Redis, and Channels at memory."""
    from channels.layers import channel_layers

    settings.REDIS_URL = redis_url
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    selectors._redis.cache_clear()
    selectors.redis_client().flushdb()
    yield
    channel_layers.backends.clear()
    selectors._redis.cache_clear()


@pytest.fixture
def staff(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("alice", password=PASSWORD, is_staff=True)


@pytest.fixture
def viewer(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("victor", password=PASSWORD)


@pytest.fixture
def staff_client(staff: Any) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def viewer_client(viewer: Any) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


class Calls:
    """Fake services: each records its calls; one told to fail raises what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.errors: dict[str, Exception] = {}
        self.results: dict[str, Any] = {}

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def make(self, name: str) -> Callable[..., Any]:
        def fake(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            if name in self.errors:
                raise self.errors[name]
            return self.results.get(name)

        return fake


MUTATIONS = (
    "topic_create",
    "topic_delete",
    "topic_partitions_create",
    "topic_configs_alter",
    "message_produce",
    "group_offsets_reset",
    "group_delete",
)


@pytest.fixture
def fake_services(monkeypatch: pytest.MonkeyPatch) -> Calls:
    calls = Calls()
    for name in (*MUTATIONS, "topic_configs_describe", "message_get", "scan_run"):
        monkeypatch.setattr(services, name, calls.make(name))
    calls.results["topic_configs_describe"] = []
    calls.results["message_produce"] = []
    calls.results["group_offsets_reset"] = []
    return calls


def make_cluster(topics: int = 3, partitions: int = 3, brokers: int = 3) -> list[str]:
    """Metadata rows as the controller writes them: brokers, topics, partitions, replicas."""
    ids = list(range(1, brokers + 1))
    Broker.objects.bulk_create(
        Broker(id=i, host="127.0.0.1", port=9091 + i, state=Broker.State.UP) for i in ids
    )
    names = [f"topic-{n:05d}" for n in range(topics)]
    created = Topic.objects.bulk_create(Topic(name=name) for name in names)
    rows = Partition.objects.bulk_create(
        Partition(topic=t, index=p, leader_id=ids[p % brokers])
        for t in created
        for p in range(partitions)
    )
    Replica.objects.bulk_create(
        Replica(partition=row, broker_id=ids[(row.index + k) % brokers], position=k)
        for row in rows
        for k in range(min(3, brokers))
    )
    return names


@pytest.fixture
def cluster_rows(db: Any) -> list[str]:
    names = make_cluster()
    ConsumerGroup.objects.create(group_id="billing", state="Empty")
    ClusterEvent.objects.create(
        kind="leader", message="topic-00000-0: leader 1 → 2", topic="topic-00000", partition=0
    )
    return names
