"""Members of a group share a topic's partitions as in Kafka; groups read independently."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kafkaweb.cluster import Cluster
from tests.groups.conftest import (
    CLIENTS,
    AiokafkaMember,
    ConfluentMember,
    KafkaPythonMember,
    Member,
    Worker,
    balanced,
    group_id,
    produce,
    wait_until,
)

pytestmark = pytest.mark.cluster
PARTITIONS = 6


def shares(members: list[Member]) -> list[int]:
    return sorted(len(m.assigned) for m in members)


def test_three_consumers_get_two_partitions_each_and_a_seventh_stays_idle(
    bootstrap: str, new_topic: Callable[..., str], members: list[Member]
) -> None:
    topic = new_topic(PARTITIONS)
    group = group_id()
    for _ in range(3):
        members.append(ConfluentMember(bootstrap, group, topic).start())
    wait_until(lambda: balanced(members, topic, PARTITIONS), what="three members balanced")
    assert shares(members) == [2, 2, 2]

    for _ in range(4):
        members.append(ConfluentMember(bootstrap, group, topic).start())
    wait_until(lambda: balanced(members, topic, PARTITIONS), what="seven members balanced")
    assert shares(members) == [0, 1, 1, 1, 1, 1, 1]


def test_a_killed_members_partitions_go_to_the_others(
    bootstrap: str, new_topic: Callable[..., str], members: list[Member]
) -> None:
    topic = new_topic(PARTITIONS)
    group = group_id()
    # Kafka's minimum session timeout is lowered on this cluster, so expiry takes seconds.
    session = {"session.timeout.ms": 3000}
    for _ in range(2):
        members.append(ConfluentMember(bootstrap, group, topic, **session).start())
    worker = Worker(
        "--bootstrap", bootstrap, "--topic", topic, "--group", group, "--mode", "member",
        "--session-timeout-ms", "3000",
    )  # fmt: skip
    try:
        wait_until(
            lambda: shares(members) == [2, 2] and len(worker.last("assigned") or []) == 2,
            what="three members with two partitions each",
        )
    finally:
        worker.kill()
    # No LeaveGroup came: the coordinator notices only when the session times out.
    wait_until(lambda: balanced(members, topic, PARTITIONS), what="survivors take over")
    assert shares(members) == [3, 3]


@pytest.mark.parametrize("client", ["kafka-python", "aiokafka"])
def test_each_client_library_shares_partitions(
    client: str, bootstrap: str, new_topic: Callable[..., str], members: list[Member]
) -> None:
    topic = new_topic(PARTITIONS)
    group = group_id()
    produce(bootstrap, topic, 60, PARTITIONS)
    for _ in range(3):
        members.append(CLIENTS[client](bootstrap, group, topic).start())
    wait_until(lambda: balanced(members, topic, PARTITIONS), what=f"{client} members balanced")
    assert shares(members) == [2, 2, 2]
    wait_until(lambda: sum(len(m.values) for m in members) >= 60, what="all records read")
    assert sorted(int(v) for m in members for v in m.values) == list(range(60))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (ConfluentMember, KafkaPythonMember),
        (ConfluentMember, AiokafkaMember),
    ],
)
def test_a_group_can_mix_client_libraries(
    first: type[Member],
    second: type[Member],
    bootstrap: str,
    new_topic: Callable[..., str],
    members: list[Member],
) -> None:
    topic = new_topic(PARTITIONS)
    group = group_id()
    # They must share a protocol: librdkafka and kafka-python both offer range first;
    # aiokafka offers only roundrobin.
    config = {"partition.assignment.strategy": "roundrobin"} if second is AiokafkaMember else {}
    members.append(first(bootstrap, group, topic, **config).start())  # type: ignore[call-arg]
    members.append(second(bootstrap, group, topic).start())  # type: ignore[call-arg]
    wait_until(lambda: balanced(members, topic, PARTITIONS), what="mixed group balanced")
    assert shares(members) == [3, 3]


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "cooperative-sticky"])
def test_assignors_computed_by_the_leader_pass_through(
    strategy: str, bootstrap: str, new_topic: Callable[..., str], members: list[Member]
) -> None:
    topic = new_topic(PARTITIONS)
    group = group_id()
    config = {"partition.assignment.strategy": strategy}
    for _ in range(2):
        members.append(ConfluentMember(bootstrap, group, topic, **config).start())
    wait_until(lambda: balanced(members, topic, PARTITIONS), what="two members balanced")
    members.append(ConfluentMember(bootstrap, group, topic, **config).start())
    wait_until(lambda: balanced(members, topic, PARTITIONS), what="three members balanced")
    assert shares(members) == [2, 2, 2]


def test_kafka_python_sticky_assignor(
    bootstrap: str, new_topic: Callable[..., str], members: list[Member]
) -> None:
    from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor

    topic = new_topic(PARTITIONS)
    group = group_id()
    config = {"partition_assignment_strategy": (StickyPartitionAssignor,)}
    for _ in range(3):
        members.append(KafkaPythonMember(bootstrap, group, topic, **config).start())
    wait_until(lambda: balanced(members, topic, PARTITIONS), what="sticky members balanced")
    assert shares(members) == [2, 2, 2]


def test_two_groups_each_read_every_record(
    bootstrap: str, new_topic: Callable[..., str], members: list[Member]
) -> None:
    topic = new_topic(PARTITIONS)
    produce(bootstrap, topic, 300, PARTITIONS)
    groups = {group_id(): [], group_id(): []}  # type: dict[str, list[Member]]
    for group, own in groups.items():
        for _ in range(2):
            member = ConfluentMember(bootstrap, group, topic).start()
            own.append(member)
            members.append(member)
    for own in groups.values():
        wait_until(lambda own=own: sum(len(m.values) for m in own) >= 300, what="group read all")
        assert sorted(int(v) for m in own for v in m.values) == list(range(300))


def test_a_static_member_restarting_within_its_session_keeps_its_partitions(
    groups_cluster: Cluster, bootstrap: str, new_topic: Callable[..., str], members: list[Member]
) -> None:
    from tests.groups.test_admin import describe_json

    topic = new_topic(PARTITIONS)
    group = group_id()
    static = {"session.timeout.ms": 10000}
    first = ConfluentMember(bootstrap, group, topic, **{**static, "group.instance.id": "a"})
    other = ConfluentMember(bootstrap, group, topic, **{**static, "group.instance.id": "b"})
    members += [first.start(), other.start()]
    wait_until(lambda: balanced(members, topic, PARTITIONS), what="two static members")
    held, generation = first.assigned, describe_json(groups_cluster, group)["generation"]

    # A static member does not leave the group when it stops (KIP-345).
    first.close()
    members.remove(first)
    again = ConfluentMember(bootstrap, group, topic, **{**static, "group.instance.id": "a"})
    members.append(again.start())
    wait_until(lambda: again.assigned == held, what="the restarted member gets its partitions")
    assert describe_json(groups_cluster, group)["generation"] == generation
    assert balanced(members, topic, PARTITIONS)
