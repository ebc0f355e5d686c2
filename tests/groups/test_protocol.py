"""The group APIs on the wire: Kafka's error codes for bad input, and a broker that stays up."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from kio.schema.errors import ErrorCode
from kio.static.primitive import i32, i32Timedelta

from brokers.coordinator.offsets_topic import OFFSETS_TOPIC, partition_for
from brokers.protocol import schema
from kafkaweb.cluster import Cluster
from tests.protocol.raw import RawClient, build_request

pytestmark = pytest.mark.cluster
FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, SYNC_GROUP, OFFSET_COMMIT = 10, 11, 12, 14, 8


def ms(value: int) -> i32Timedelta:
    return i32Timedelta.parse(datetime.timedelta(milliseconds=value))


def find(cluster: Cluster, key: str, key_type: int = 0, version: int = 3) -> Any:
    with RawClient(cluster.spec.broker_address(1)) as client:
        return client.request(
            FIND_COORDINATOR,
            version,
            build_request(FIND_COORDINATOR, version, key=key, key_type=key_type),
        )


def coordinator_of(cluster: Cluster, group: str) -> RawClient:
    response = find(cluster, group)
    assert response.error_code == ErrorCode.none
    return RawClient((response.host, int(response.port)))


def join_request(group: str, member_id: str = "", **values: Any) -> Any:
    module = schema.request_module(JOIN_GROUP, 5)
    fields = {
        "group_id": group,
        "session_timeout": ms(6000),
        "rebalance_timeout": ms(10000),
        "member_id": member_id,
        "group_instance_id": None,
        "protocol_type": "consumer",
        "protocols": (module.JoinGroupRequestProtocol(name="range", metadata=b"\x00\x00"),),
        **values,
    }
    return build_request(JOIN_GROUP, 5, **fields)


def test_find_coordinator_names_the_leader_of_the_groups_offsets_partition(
    groups_cluster: Cluster,
) -> None:
    from confluent_kafka.admin import AdminClient

    group = f"find-{uuid.uuid4().hex[:8]}"
    metadata = AdminClient({"bootstrap.servers": groups_cluster.spec.bootstrap_servers})
    topic = metadata.list_topics(OFFSETS_TOPIC, timeout=10).topics[OFFSETS_TOPIC]
    leader = topic.partitions[partition_for(group, len(topic.partitions))].leader
    assert len(topic.partitions) == 12
    # Three brokers: offsets.topic.replication.factor is 3, and the topic waited for them all.
    assert {len(p.replicas) for p in topic.partitions.values()} == {3}
    assert find(groups_cluster, group).node_id == leader

    with RawClient(groups_cluster.spec.broker_address(2)) as client:
        batched = client.request(
            FIND_COORDINATOR,
            6,
            build_request(FIND_COORDINATOR, 6, key_type=0, coordinator_keys=(group, "other")),
        )
    assert [c.key for c in batched.coordinators] == [group, "other"]
    assert batched.coordinators[0].node_id == leader
    assert all(c.error_code == ErrorCode.none for c in batched.coordinators)

    # A transactional id is coordinated by the leader of its offsets partition too.
    txn_leader = topic.partitions[partition_for("txn", 12)].leader
    assert find(groups_cluster, "txn", key_type=1).node_id == txn_leader
    assert find(groups_cluster, "share", key_type=2).error_code == ErrorCode.invalid_request


def test_join_errors(groups_cluster: Cluster) -> None:
    group = f"raw-{uuid.uuid4().hex[:8]}"
    with coordinator_of(groups_cluster, group) as client:
        first = client.request(JOIN_GROUP, 5, join_request(group))
        assert first.error_code == ErrorCode.member_id_required
        assert first.member_id.startswith("raw-test-")

        too_short = client.request(JOIN_GROUP, 5, join_request(group, session_timeout=ms(10)))
        assert too_short.error_code == ErrorCode.invalid_session_timeout
        nameless = client.request(JOIN_GROUP, 5, join_request(""))
        assert nameless.error_code == ErrorCode.invalid_group_id
        stranger = client.request(JOIN_GROUP, 5, join_request(group, member_id="who"))
        assert stranger.error_code == ErrorCode.unknown_member_id

        joined = client.request(JOIN_GROUP, 5, join_request(group, first.member_id))
        assert joined.error_code == ErrorCode.none
        assert joined.leader == first.member_id
        generation = int(joined.generation_id)

        heartbeat = schema.request_module(HEARTBEAT, 3).HeartbeatRequest
        wrong = client.request(
            HEARTBEAT,
            3,
            heartbeat(
                group_id=group,
                generation_id=i32(generation + 5),
                member_id=first.member_id,
                group_instance_id=None,
            ),
        )
        assert wrong.error_code == ErrorCode.illegal_generation

        other = schema.request_module(JOIN_GROUP, 5).JoinGroupRequestProtocol
        mismatch = client.request(
            JOIN_GROUP,
            5,
            join_request(group, protocols=(other(name="roundrobin", metadata=b""),)),
        )
        assert mismatch.error_code == ErrorCode.inconsistent_group_protocol

    # Other brokers send the client back to FindCoordinator.
    coordinator = int(find(groups_cluster, group).node_id)
    for broker in (b for b in (1, 2, 3) if b != coordinator):
        with RawClient(groups_cluster.spec.broker_address(broker)) as elsewhere:
            refused = elsewhere.request(JOIN_GROUP, 5, join_request(group))
        assert refused.error_code == ErrorCode.not_coordinator


def test_a_stale_static_member_is_fenced(groups_cluster: Cluster) -> None:
    group = f"static-{uuid.uuid4().hex[:8]}"
    with coordinator_of(groups_cluster, group) as client:
        first = client.request(JOIN_GROUP, 5, join_request(group, group_instance_id="pod-0"))
        assert first.error_code == ErrorCode.none
        # The instance id belongs to another member id now: this one is a zombie.
        fenced = client.request(
            JOIN_GROUP, 5, join_request(group, "pod-0-stale", group_instance_id="pod-0")
        )
        assert fenced.error_code == ErrorCode.fenced_instance_id
        heartbeat = schema.request_module(HEARTBEAT, 3).HeartbeatRequest
        beat = client.request(
            HEARTBEAT,
            3,
            heartbeat(
                group_id=group,
                generation_id=first.generation_id,
                member_id="pod-0-stale",
                group_instance_id="pod-0",
            ),
        )
        assert beat.error_code == ErrorCode.fenced_instance_id


def test_offset_commit_errors(groups_cluster: Cluster) -> None:
    group = f"commit-{uuid.uuid4().hex[:8]}"
    module = schema.request_module(OFFSET_COMMIT, 9)
    with coordinator_of(groups_cluster, group) as client:

        def commit(topic: str, generation: int, member: str) -> Any:
            return (
                client.request(
                    OFFSET_COMMIT,
                    9,
                    build_request(
                        OFFSET_COMMIT,
                        9,
                        group_id=group,
                        generation_id_or_member_epoch=i32(generation),
                        member_id=member,
                        group_instance_id=None,
                        topics=(
                            module.OffsetCommitRequestTopic(
                                name=topic,
                                partitions=(
                                    module.OffsetCommitRequestPartition(
                                        partition_index=i32(0),
                                        committed_offset=0,
                                        committed_leader_epoch=i32(-1),
                                        committed_metadata=None,
                                    ),
                                ),
                            ),
                        ),
                    ),
                )
                .topics[0]
                .partitions[0]
                .error_code
            )

        assert commit("no-such-topic", -1, "") == ErrorCode.unknown_topic_or_partition
        # v9: a generation for a group that does not exist.
        assert commit(OFFSETS_TOPIC, 3, "m") == ErrorCode.group_id_not_found


def test_garbage_closes_only_that_connection(groups_cluster: Cluster) -> None:
    group = f"junk-{uuid.uuid4().hex[:8]}"
    address = (find(groups_cluster, group).host, int(find(groups_cluster, group).port))
    with RawClient(address) as bad:
        # A JoinGroup v5 frame cut short after its header.
        frame = b"\x00\x0b\x00\x05\x00\x00\x00\x07\x00\x03abc\xff\xff"
        bad.send_bytes(len(frame).to_bytes(4, "big") + frame)
        assert bad.is_closed()
    with RawClient(address) as good:
        assert good.request(JOIN_GROUP, 5, join_request(group)).error_code == (
            ErrorCode.member_id_required
        )
