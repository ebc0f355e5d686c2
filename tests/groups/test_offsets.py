"""Committed offsets: metadata kept, Kafka's rules on who may commit, deleting offsets."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import GroupSubscribedToTopicError, NoError
from kafka.structs import OffsetAndMetadata

from tests.groups.conftest import (
    ConfluentMember,
    Member,
    balanced,
    group_id,
    produce,
    wait_until,
)

pytestmark = pytest.mark.cluster


def assign_consumer(bootstrap: str, group: str) -> Consumer:
    """A consumer that uses assign(), not subscribe(): it commits without joining the group."""
    return Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )


def test_committed_offsets_keep_their_metadata(
    bootstrap: str, new_topic: Callable[..., str]
) -> None:
    topic = new_topic(2)
    produce(bootstrap, topic, 20, 2)
    group = group_id()
    consumer = assign_consumer(bootstrap, group)
    try:
        consumer.commit(
            offsets=[
                TopicPartition(topic, 0, 7, "checkpoint 7"),
                TopicPartition(topic, 1, 3, '{"batch": 3}'),
            ],
            asynchronous=False,
        )
        committed = consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], 30)
    finally:
        consumer.close()
    assert [(tp.offset, tp.metadata) for tp in committed] == [
        (7, "checkpoint 7"),
        (3, '{"batch": 3}'),
    ]

    reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        reader.commit({KpTopicPartition(topic, 1): OffsetAndMetadata(9, "kafka-python", -1)})
        seen = reader.committed(KpTopicPartition(topic, 1), metadata=True)
    finally:
        reader.close()
    assert (seen.offset, seen.metadata) == (9, "kafka-python")


def test_commits_without_membership_only_while_the_group_is_empty(
    bootstrap: str, new_topic: Callable[..., str], members: list[Member]
) -> None:
    topic = new_topic(2)
    group = group_id()
    outsider = assign_consumer(bootstrap, group)
    try:
        # An unknown or empty group takes commits from a consumer outside it (generation -1).
        outsider.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)

        members.append(ConfluentMember(bootstrap, group, topic).start())
        wait_until(lambda: balanced(members, topic, 2), what="one member with both partitions")
        with pytest.raises(KafkaException) as raised:
            outsider.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)
        assert raised.value.args[0].code() == KafkaError.UNKNOWN_MEMBER_ID
        assert outsider.committed([TopicPartition(topic, 0)], 30)[0].offset == 1
    finally:
        outsider.close()


def test_offset_delete_refuses_topics_the_group_consumes(
    bootstrap: str, new_topic: Callable[..., str], members: list[Member]
) -> None:
    consumed, other = new_topic(1), new_topic(1)
    group = group_id()
    outsider = assign_consumer(bootstrap, group)
    try:
        outsider.commit(
            offsets=[TopicPartition(consumed, 0, 0), TopicPartition(other, 0, 5)],
            asynchronous=False,
        )
    finally:
        outsider.close()
    members.append(ConfluentMember(bootstrap, group, consumed).start())
    wait_until(lambda: balanced(members, consumed, 1), what="the member holds its partition")

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        results = admin.delete_group_offsets(
            group, [KpTopicPartition(consumed, 0), KpTopicPartition(other, 0)]
        )
        assert results[KpTopicPartition(consumed, 0)] is GroupSubscribedToTopicError
        assert results[KpTopicPartition(other, 0)] is NoError
        offsets = admin.list_group_offsets({group: None})[group]
    finally:
        admin.close()
    assert KpTopicPartition(other, 0) not in offsets
    assert KpTopicPartition(consumed, 0) in offsets
