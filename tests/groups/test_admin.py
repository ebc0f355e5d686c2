"""Administering groups: Describe/List/DeleteGroups, the group rows the UI reads, the CLI."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupState, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka.admin import KafkaAdminClient

from kafkaweb import env
from kafkaweb.cluster import PYTHON, Cluster
from tests.groups.conftest import (
    ConfluentMember,
    Member,
    balanced,
    group_id,
    produce,
    wait_until,
)
from tests.groups.test_offsets import assign_consumer

pytestmark = pytest.mark.cluster


def manage(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=env.BASE_DIR,
        env=cluster.spec.environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def describe_json(cluster: Cluster, group: str) -> dict[str, Any]:
    return json.loads(manage(cluster, "groups", "describe", group, "--json").stdout)


def test_describe_and_list_groups_with_two_clients(
    bootstrap: str, admin: AdminClient, new_topic: Callable[..., str], members: list[Member]
) -> None:
    topic = new_topic(4)
    group = group_id()
    for _ in range(2):
        members.append(ConfluentMember(bootstrap, group, topic, **{"client.id": "reader"}).start())
    wait_until(lambda: balanced(members, topic, 4), what="two members balanced")

    description = admin.describe_consumer_groups([group])[group].result(30)
    assert description.state == ConsumerGroupState.STABLE
    assert description.partition_assignor == "range"
    assert sorted(len(m.assignment.topic_partitions) for m in description.members) == [2, 2]
    assert {m.client_id for m in description.members} == {"reader"}
    assert {m.host for m in description.members} == {"/127.0.0.1"}

    stable = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(30)
    assert group in {g.group_id for g in stable.valid}
    empty = admin.list_consumer_groups(states={ConsumerGroupState.EMPTY}).result(30)
    assert group not in {g.group_id for g in empty.valid}

    kp_admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        kp_description = kp_admin.describe_groups([group])[group]
        listed = kp_admin.list_groups(states_filter=["Stable"], types_filter=["classic"])
    finally:
        kp_admin.close()
    assert kp_description["group_state"] == "Stable"
    assert kp_description["protocol_type"] == "consumer"
    assert len(kp_description["members"]) == 2
    assert group in {g["group_id"] for g in listed}


def test_group_rows_show_members_for_the_ui(
    groups_cluster: Cluster, bootstrap: str, new_topic: Callable[..., str], members: list[Member]
) -> None:
    topic = new_topic(3)
    group = group_id()
    produce(bootstrap, topic, 30, 3)
    member = ConfluentMember(
        bootstrap, group, topic, **{"client.id": "ui-shown", "enable.auto.commit": False}
    )
    members.append(member.start())
    wait_until(lambda: len(member.values) == 30, what="all records read")
    member.commit()

    def stable_row() -> dict[str, Any] | None:
        row = describe_json(groups_cluster, group)
        return row if row["state"] == "Stable" and row["member_details"] else None

    row = wait_until(stable_row, what="the group row says Stable")
    assert row["protocol_type"] == "consumer"
    assert row["protocol"] == "range"
    assert row["generation"] >= 1
    [shown] = row["member_details"]
    assert shown["client_id"] == "ui-shown"
    assert shown["client_host"] == "/127.0.0.1"
    assert shown["subscription"] == [topic]
    assert shown["assignment"] == [{"topic": topic, "partitions": [0, 1, 2]}]
    assert [(p["partition"], p["committed"]) for p in row["partitions"]] == [
        (0, 10),
        (1, 10),
        (2, 10),
    ]
    listed = json.loads(
        manage(groups_cluster, "groups", "list", "--state", "Stable", "--json").stdout
    )
    assert group in {g["group"] for g in listed}


def test_delete_groups_follows_kafkas_rules(
    groups_cluster: Cluster,
    bootstrap: str,
    admin: AdminClient,
    new_topic: Callable[..., str],
    members: list[Member],
) -> None:
    topic = new_topic(1)
    active, idle = group_id(), group_id()
    members.append(ConfluentMember(bootstrap, active, topic).start())
    wait_until(lambda: balanced(members, topic, 1), what="the active group is stable")
    outsider = assign_consumer(bootstrap, idle)
    try:
        outsider.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
    finally:
        outsider.close()

    with pytest.raises(KafkaException) as raised:
        admin.delete_consumer_groups([active])[active].result(30)
    assert raised.value.args[0].code() == KafkaError.NON_EMPTY_GROUP
    with pytest.raises(KafkaException) as raised:
        admin.delete_consumer_groups(["never-existed"])["never-existed"].result(30)
    assert raised.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND

    failed = manage(groups_cluster, "groups", "delete", active, check=False)
    assert failed.returncode != 0
    assert "active members" in failed.stderr

    manage(groups_cluster, "groups", "delete", idle)
    listed = admin.list_consumer_groups().result(30)
    assert idle not in {g.group_id for g in listed.valid}
    assert active in {g.group_id for g in listed.valid}


def test_reset_offsets_then_the_consumer_resumes_exactly_there(
    groups_cluster: Cluster, bootstrap: str, new_topic: Callable[..., str], members: list[Member]
) -> None:
    topic = new_topic(2)
    group = group_id()
    produce(bootstrap, topic, 40, 2)
    first = ConfluentMember(bootstrap, group, topic, **{"enable.auto.commit": False})
    members.append(first.start())
    wait_until(lambda: len(first.values) == 40, what="the first run reads everything")
    first.commit()

    # Kafka refuses to move the offsets of a group that has members.
    refused = manage(
        groups_cluster, "groups", "reset-offsets", group, "--topic", topic, "--to-offset", "5",
        "--execute", check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "stop its consumers" in refused.stderr
    first.close()
    members.remove(first)

    plan = json.loads(
        manage(
            groups_cluster, "groups", "reset-offsets", group, "--topic", topic,
            "--shift-by", "-15", "--json",
        ).stdout
    )  # fmt: skip
    assert not plan["executed"]
    assert [(o["partition"], o["current"], o["new"]) for o in plan["offsets"]] == [
        (0, 20, 5),
        (1, 20, 5),
    ]
    manage(
        groups_cluster, "groups", "reset-offsets", group, "--topic", topic, "--to-offset", "12",
        "--execute",
    )  # fmt: skip

    second = ConfluentMember(bootstrap, group, topic)
    members.append(second.start())
    # Partition p holds records p, p+2, p+4, ...: offset 12 is record 24 + p.
    expected = sorted([*range(24, 40, 2), *range(25, 40, 2)])
    wait_until(lambda: len(second.values) >= len(expected), what="the resumed run")
    assert sorted(int(v) for v in second.values) == expected
