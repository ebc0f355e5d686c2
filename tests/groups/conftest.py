"""Consumer group fixtures: a cluster with short group timeouts, and consumers that run themselves.

Each consumer polls in a thread of its own (aiokafka on its own event loop), so a test only
watches what the members were assigned and what they received.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from brokers.coordinator.offsets_topic import OFFSETS_TOPIC
from kafkaweb import env
from kafkaweb.cluster import Cluster
from tests.conftest import running_cluster

# Kafka's group defaults, shortened so rebalances and expiries take seconds, not minutes.
GROUP_CONFIG = ",".join(
    [
        "group.initial.rebalance.delay.ms=300",
        "group.min.session.timeout.ms=1000",
        "group.max.size=8",
    ]
)
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 500
DEADLINE_S = 60.0

TopicPartitions = frozenset[tuple[str, int]]


def wait_until(
    condition: Callable[[], Any], timeout_s: float = DEADLINE_S, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"{what} not reached in {timeout_s:.0f} s")


def wait_for_offsets_topic(cluster: Cluster) -> None:
    """Until the controller has created __consumer_offsets and every partition has a leader."""
    admin = AdminClient({"bootstrap.servers": cluster.spec.bootstrap_servers})

    def ready() -> bool:
        topic = admin.list_topics(OFFSETS_TOPIC, timeout=5).topics.get(OFFSETS_TOPIC)
        return (
            topic is not None
            and topic.error is None
            and len(topic.partitions) > 0
            and all(p.leader >= 0 for p in topic.partitions.values())
        )

    wait_until(ready, what=OFFSETS_TOPIC)


@pytest.fixture(scope="package")
def groups_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("groups"), broker_config=GROUP_CONFIG) as c:
        wait_for_offsets_topic(c)
        yield c


@pytest.fixture(scope="package")
def bootstrap(groups_cluster: Cluster) -> str:
    return groups_cluster.spec.bootstrap_servers


@pytest.fixture(scope="package")
def admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(admin: AdminClient, partitions: int, name: str | None = None) -> str:
    name = name or f"g-{uuid.uuid4().hex[:10]}"
    for attempt in range(3):
        try:
            future = admin.create_topics([NewTopic(name, partitions, -1)], operation_timeout=30)
            future[name].result(60)
            break
        except KafkaException as exc:
            # A fresh client may lose its first request when it swaps bootstrap connections.
            if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                break
            if attempt == 2:
                raise

    def ready() -> bool:
        topic = admin.list_topics(name, timeout=5).topics.get(name)
        return (
            topic is not None
            and topic.error is None
            and len(topic.partitions) == partitions
            and all(p.leader >= 0 for p in topic.partitions.values())
        )

    wait_until(ready, what=f"leaders for {name}")
    return name


@pytest.fixture
def new_topic(admin: AdminClient) -> Callable[..., str]:
    def make(partitions: int = 6) -> str:
        return create_topic(admin, partitions)

    return make


def produce(bootstrap: str, topic: str, count: int, partitions: int, start: int = 0) -> None:
    """Records "0", "1", ... round-robin over the partitions."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + count):
        producer.produce(topic, str(i).encode(), partition=i % partitions)
    assert producer.flush(60) == 0


def group_id() -> str:
    return f"grp-{uuid.uuid4().hex[:10]}"


# Consumers that poll in the background ----------------------------------------------------


class Member:
    """A group member consuming in the background: what it holds and what it has read."""

    name = "member"

    def __init__(self) -> None:
        self.assigned: TopicPartitions = frozenset()
        self.values: list[str] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._commit_wanted = threading.Event()
        self._committed = threading.Event()
        self._thread = threading.Thread(target=self._guarded, daemon=True)

    def start(self) -> Member:
        self._thread.start()
        return self

    def _guarded(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # surfaced by close()
            self.error = exc

    def run(self) -> None:
        raise NotImplementedError

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def commit(self, timeout_s: float = DEADLINE_S) -> None:
        """Commit what was read, from the polling thread (clients are not thread-safe)."""
        self._committed.clear()
        self._commit_wanted.set()
        if not self._committed.wait(timeout_s):
            raise TimeoutError("the member did not commit")

    def _commit_if_asked(self, commit: Callable[[], None]) -> None:
        if self._commit_wanted.is_set():
            self._commit_wanted.clear()
            commit()
            self._committed.set()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)
        if self.error is not None:
            raise self.error


class ConfluentMember(Member):
    name = "confluent-kafka"

    def __init__(self, bootstrap: str, group: str, topic: str, **config: Any) -> None:
        super().__init__()
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": HEARTBEAT_MS,
                **config,
            }
        )
        self.consumer.subscribe([topic])

    def run(self) -> None:
        next_look = 0.0
        try:
            while not self.stopping:
                message = self.consumer.poll(0.1)
                if message is not None and message.error() is None:
                    self.values.append(message.value().decode())
                self._commit_if_asked(lambda: self.consumer.commit(asynchronous=False))
                if time.monotonic() >= next_look:
                    next_look = time.monotonic() + 0.3
                    self.assigned = frozenset(
                        (tp.topic, tp.partition) for tp in self.consumer.assignment()
                    )
        finally:
            self.consumer.close()


class KafkaPythonMember(Member):
    name = "kafka-python"

    def __init__(self, bootstrap: str, group: str, topic: str, **config: Any) -> None:
        super().__init__()
        from kafka import KafkaConsumer

        self.consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
            **config,
        )

    def run(self) -> None:
        try:
            while not self.stopping:
                for records in self.consumer.poll(timeout_ms=100).values():
                    self.values += [r.value.decode() for r in records]
                self.assigned = frozenset(
                    (tp.topic, tp.partition) for tp in self.consumer.assignment()
                )
        finally:
            self.consumer.close()


class AiokafkaMember(Member):
    name = "aiokafka"

    def __init__(self, bootstrap: str, group: str, topic: str, **config: Any) -> None:
        super().__init__()
        self.args = (bootstrap, group, topic, config)

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer

        bootstrap, group, topic, config = self.args
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
            **config,
        )
        await consumer.start()
        try:
            while not self.stopping:
                batches = await consumer.getmany(timeout_ms=100)
                for records in batches.values():
                    self.values += [r.value.decode() for r in records]
                self.assigned = frozenset((tp.topic, tp.partition) for tp in consumer.assignment())
        finally:
            await consumer.stop()


CLIENTS: dict[str, type[Member]] = {
    "confluent": ConfluentMember,
    "kafka-python": KafkaPythonMember,
    "aiokafka": AiokafkaMember,
}


def balanced(members: list[Member], topic: str, partitions: int) -> bool:
    """Every partition held by exactly one member, and the members' shares differ by at most 1."""
    held = [m.assigned for m in members]
    union = frozenset().union(*held)
    return (
        sum(len(h) for h in held) == partitions
        and union == {(topic, p) for p in range(partitions)}
        and max(len(h) for h in held) - min(len(h) for h in held) <= 1
    )


@pytest.fixture
def members() -> Iterator[list[Member]]:
    """Members a test starts; all are closed at the end, even when the test fails."""
    started: list[Member] = []
    yield started
    errors = []
    for member in started:
        try:
            member.close()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


# A consumer in its own process, to be killed ------------------------------------------------


class Worker:
    """tests/groups/worker.py in a subprocess; its JSON lines are read as they come."""

    def __init__(self, *args: str) -> None:
        self.lines: list[dict[str, Any]] = []
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("worker.py")), *args],
            cwd=env.BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(json.loads(line))

    def last(self, key: str) -> Any:
        for line in reversed(self.lines):
            if key in line:
                return line[key]
        return None

    def values(self, key: str) -> list[Any]:
        return [line[key] for line in self.lines if key in line]

    def wait(self, timeout_s: float = DEADLINE_S) -> int:
        code = self.process.wait(timeout_s)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait()
