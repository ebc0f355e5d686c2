"""The controller: failover to a standby, old epochs refused, and how it tells a broker is gone."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
import uuid

import pytest
import redis
from celery import Celery
from confluent_kafka.admin import AdminClient, NewTopic

from brokers import control
from brokers.image import MetadataDelta, PartitionState, TopicInfo
from brokers.protocol import schema
from kafkaweb.cluster import PYTHON, Cluster
from tests.cluster.test_leadership import events, leaders
from tests.cluster.test_replication import create_topic, wait_for
from tests.conftest import running_cluster
from tests.protocol.raw import RawClient, build_request

pytestmark = pytest.mark.cluster


def lease(cluster: Cluster) -> tuple[int, int] | None:
    client = redis.Redis.from_url(cluster.spec.effective_redis_url)
    return control.parse_lease(client.get(control.CONTROLLER_KEY))


def metadata_version(cluster: Cluster) -> int:
    path = cluster.spec.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return int(db.execute("select metadata_version from streams_clusterstate").fetchone()[0])


def partition_seen_by(cluster: Cluster, broker: int, topic: str) -> tuple[int, int, uuid.UUID]:
    """(leader, leader epoch, topic id) of partition 0 as one particular broker answers Metadata."""
    m = schema.request_module(3, 12)
    request = build_request(
        3,
        12,
        topics=(m.MetadataRequestTopic(topic_id=None, name=topic),),
        allow_auto_topic_creation=False,
        include_topic_authorized_operations=False,
    )
    with RawClient(cluster.spec.broker_address(broker)) as client:
        response = client.request(3, 12, request)
    partition = response.topics[0].partitions[0]
    return int(partition.leader_id), int(partition.leader_epoch), response.topics[0].topic_id


def test_standby_takes_over_and_the_old_epoch_is_refused(tmp_path) -> None:
    with running_cluster(tmp_path, brokers=3, controllers=2) as cluster:
        admin = AdminClient({"bootstrap.servers": cluster.spec.bootstrap_servers})
        admin.create_topics([NewTopic("before", 1, 3)])["before"].result(30)
        first = lease(cluster)
        assert first is not None and first[1] > 0
        cluster.kill(f"controller-{first[0]}")
        wait_for(
            lambda: (
                (now := lease(cluster)) is not None and now[0] != first[0] and now[1] > first[1]
            ),
            30,
            "a standby",
        )
        second = lease(cluster)
        assert second == (3 - first[0], first[1] + 1)

        # The new controller works: topics can be created and brokers follow it.
        admin.create_topics([NewTopic("after", 1, 3)])["after"].result(30)
        wait_for(lambda: "after" in admin.list_topics(timeout=10).topics, 30, "the new topic")

        # A command stamped with the dead controller's epoch, as if it had woken up: broker 1
        # must refuse to move the leadership it names.
        leader, epoch, topic_id = partition_seen_by(cluster, 1, "before")
        other = next(b for b in (1, 2, 3) if b != leader)
        stale = MetadataDelta(
            version=metadata_version(cluster) + 1,
            controller_id=first[0],
            controller_epoch=first[1],
            topics=(
                TopicInfo(
                    name="before",
                    topic_id=topic_id,
                    internal=False,
                    configs={"min.insync.replicas": "2"},
                    partitions=(
                        PartitionState("before", 0, other, epoch + 5, 99, (1, 2, 3), (1, 2, 3)),
                    ),
                ),
            ),
        )
        sender = Celery(broker=cluster.spec.effective_redis_url)
        sender.send_task(
            "brokers.apply_metadata", kwargs={"delta": stale.to_json()}, queue="broker.1"
        )
        log = cluster.spec.data_dir / "logs" / "broker-1.log"
        wait_for(
            lambda: "refused metadata from controller epoch" in log.read_text(), 30, "the refusal"
        )
        assert partition_seen_by(cluster, 1, "before") == (leader, epoch, topic_id)

        # The database refuses a commit from the old epoch too.
        script = (
            "import django; django.setup()\n"
            "from brokers import metadata\n"
            f"try:\n    metadata.commit({first[1]}, metadata.load_image())\n"
            "except metadata.NotController: print('fenced')\n"
        )
        out = subprocess.run(
            [PYTHON, "-c", script],
            env=cluster.spec.environment(),
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == "fenced"


def test_a_killed_broker_is_down_at_once_and_a_stopped_one_waits_for_its_session(
    tmp_path,
) -> None:
    """With a session timeout of a minute, only a process that is gone loses its leadership early.

    A killed broker's Redis connections close with its process and nothing listens on its
    port any more: the controller moves its leadership without waiting out the session. A
    SIGSTOPped broker still holds its connections and its port: it is left alone.
    """
    with running_cluster(tmp_path, brokers=3, session_timeout_ms=60_000) as cluster:
        admin = create_topic(cluster, "gone", 1)
        leader = leaders(admin, "gone")[0]
        paused = next(b for b in (1, 2, 3) if b != leader)

        cluster.send_signal(f"broker-{paused}", signal.SIGSTOP)
        try:
            time.sleep(3)
            assert events(cluster, "broker_down") == []
        finally:
            cluster.send_signal(f"broker-{paused}", signal.SIGCONT)

        cluster.kill(f"broker-{leader}")
        wait_for(lambda: leaders(admin, "gone")[0] not in (leader, -1), 30, "a new leader")
        assert events(cluster, "broker_down") == [f"broker {leader} is down"]
