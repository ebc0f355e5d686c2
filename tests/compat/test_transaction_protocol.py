"""The transaction APIs' rules at the wire, where client libraries would hide them."""

from __future__ import annotations

import datetime
import time
import uuid
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient
from kio.schema.errors import ErrorCode
from kio.static.primitive import i8, i16, i32, i64

from brokers.log.batch import Record, build_batch
from brokers.protocol import schema
from kafkaweb.cluster import Cluster
from tests.compat.confluent import TopicFactory
from tests.protocol.raw import RawClient, build_request

pytestmark = pytest.mark.cluster

PRODUCE, OFFSET_FETCH, FIND_COORDINATOR, INIT_PRODUCER_ID = 0, 9, 10, 22
ADD_PARTITIONS, END_TXN, WRITE_TXN_MARKERS, TXN_OFFSET_COMMIT = 24, 26, 27, 28
GROUP_KEY, TRANSACTION_KEY = 0, 1


class Session:
    """Raw requests to whichever broker each one must reach."""

    def __init__(self, cluster: Cluster, admin: AdminClient) -> None:
        self.cluster = cluster
        self.admin = admin

    def to(self, node_id: int, api_key: int, version: int, **fields: Any) -> Any:
        with RawClient(self.cluster.spec.broker_address(node_id)) as client:
            return client.request(api_key, version, build_request(api_key, version, **fields))

    def coordinator(self, key: str, key_type: int) -> int:
        deadline = time.monotonic() + 30
        while True:
            found = self.to(1, FIND_COORDINATOR, 3, key=key, key_type=i8(key_type))
            if found.error_code == ErrorCode.none:
                return int(found.node_id)
            assert time.monotonic() < deadline, found
            time.sleep(0.1)

    def leader(self, topic: str, index: int) -> int:
        return int(self.admin.list_topics(topic, timeout=10).topics[topic].partitions[index].leader)

    def produce(
        self, topic: str, index: int, transactional_id: str, pid: int, epoch: int, seq: int
    ) -> ErrorCode:
        records = build_batch(
            [Record(0, int(time.time() * 1000), None, b"raw")],
            producer_id=pid,
            producer_epoch=epoch,
            base_sequence=seq,
            transactional=True,
        )
        module = schema.request_module(PRODUCE, 9)
        response = self.to(
            self.leader(topic, index),
            PRODUCE,
            9,
            transactional_id=transactional_id,
            acks=i16(-1),
            timeout=datetime.timedelta(seconds=10),
            topic_data=(
                module.TopicProduceData(
                    name=topic,
                    partition_data=(
                        module.PartitionProduceData(index=i32(index), records=records),
                    ),
                ),
            ),
        )
        return ErrorCode(response.responses[0].partition_responses[0].error_code)

    def offset_fetch(self, group: str, topic: str, index: int) -> tuple[ErrorCode, int]:
        module = schema.request_module(OFFSET_FETCH, 8)
        response = self.to(
            self.coordinator(group, GROUP_KEY),
            OFFSET_FETCH,
            8,
            groups=(
                module.OffsetFetchRequestGroup(
                    group_id=group,
                    topics=(
                        module.OffsetFetchRequestTopics(
                            name=topic, partition_indexes=(i32(index),)
                        ),
                    ),
                ),
            ),
            require_stable=True,
        )
        partition = response.groups[0].topics[0].partitions[0]
        return ErrorCode(partition.error_code), int(partition.committed_offset)


@pytest.fixture
def session(cluster: Cluster, admin: AdminClient) -> Session:
    return Session(cluster, admin)


def test_the_rules_of_one_transaction(session: Session, new_topic: TopicFactory) -> None:
    topic = new_topic(partitions=1)
    tid = f"raw-{uuid.uuid4().hex[:8]}"
    group = f"raw-{uuid.uuid4().hex[:8]}"
    coordinator = session.coordinator(tid, TRANSACTION_KEY)

    def to_coordinator(api_key: int, version: int, **fields: Any) -> Any:
        return session.to(coordinator, api_key, version, **fields)

    init = to_coordinator(
        INIT_PRODUCER_ID,
        4,
        transactional_id=tid,
        transaction_timeout=datetime.timedelta(seconds=60),
        producer_id=i64(-1),
        producer_epoch=i16(-1),
    )
    assert init.error_code == ErrorCode.none
    pid, epoch = int(init.producer_id), int(init.producer_epoch)

    # A partition the producer did not add to its transaction refuses transactional data.
    assert session.produce(topic, 0, tid, pid, epoch, 0) == ErrorCode.invalid_txn_state

    def add_partition(with_epoch: int) -> ErrorCode:
        module = schema.request_module(ADD_PARTITIONS, 3)
        response = to_coordinator(
            ADD_PARTITIONS,
            3,
            v3_and_below_transactional_id=tid,
            v3_and_below_producer_id=i64(pid),
            v3_and_below_producer_epoch=i16(with_epoch),
            v3_and_below_topics=(module.AddPartitionsToTxnTopic(name=topic, partitions=(i32(0),)),),
        )
        return ErrorCode(
            response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
        )

    assert add_partition(epoch - 1) == ErrorCode.producer_fenced
    assert add_partition(epoch) == ErrorCode.none
    assert session.produce(topic, 0, tid, pid, epoch, 0) == ErrorCode.none

    # Offsets a transaction commits stay pending until it commits.
    module = schema.request_module(TXN_OFFSET_COMMIT, 3)
    committed = session.to(
        session.coordinator(group, GROUP_KEY),
        TXN_OFFSET_COMMIT,
        3,
        transactional_id=tid,
        group_id=group,
        producer_id=i64(pid),
        producer_epoch=i16(epoch),
        topics=(
            module.TxnOffsetCommitRequestTopic(
                name=topic,
                partitions=(
                    module.TxnOffsetCommitRequestPartition(
                        partition_index=i32(0),
                        committed_offset=i64(42),
                        committed_leader_epoch=i32(-1),
                        committed_metadata="",
                    ),
                ),
            ),
        ),
    )
    assert committed.topics[0].partitions[0].error_code == ErrorCode.none
    assert session.offset_fetch(group, topic, 0)[0] == ErrorCode.unstable_offset_commit
    # DescribeTransactions shows the open transaction (a closed one has start time -1,
    # which kio, unlike Kafka's clients, does not read).
    (described,) = to_coordinator(65, 0, transactional_ids=(tid,)).transaction_states
    assert (described.error_code, described.transaction_state) == (ErrorCode.none, "Ongoing")
    assert (int(described.producer_id), int(described.producer_epoch)) == (pid, epoch)
    assert [(t.topic, list(t.partitions)) for t in described.topics] == [(topic, [0])]
    # AddOffsetsToTxn puts the group's offsets partition in the transaction: its marker
    # is what makes the offsets committed.
    assert (
        to_coordinator(
            25, 3, transactional_id=tid, producer_id=i64(pid), producer_epoch=i16(epoch),
            group_id=group,
        ).error_code
        == ErrorCode.none
    )  # fmt: skip

    ended = to_coordinator(
        END_TXN, 3, transactional_id=tid, producer_id=i64(pid), producer_epoch=i16(epoch),
        committed=True,
    )  # fmt: skip
    assert ended.error_code == ErrorCode.none
    deadline = time.monotonic() + 30
    while session.offset_fetch(group, topic, 0) != (ErrorCode.none, 42):
        assert time.monotonic() < deadline, session.offset_fetch(group, topic, 0)
        time.sleep(0.05)

    # The transaction is over: another EndTxn commit is a retry (CONCURRENT_TRANSACTIONS
    # until the coordinator has stored CompleteCommit), an abort is a mistake.
    def end(commit: bool) -> ErrorCode:
        response = to_coordinator(
            END_TXN, 3, transactional_id=tid, producer_id=i64(pid), producer_epoch=i16(epoch),
            committed=commit,
        )  # fmt: skip
        return ErrorCode(response.error_code)

    while (retry := end(True)) == ErrorCode.concurrent_transactions:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert retry == ErrorCode.none
    assert end(False) == ErrorCode.invalid_txn_state

    listed = to_coordinator(
        66, 0, state_filters=("CompleteCommit", "Bogus"), producer_id_filters=(i64(pid),)
    )
    assert [t.transactional_id for t in listed.transaction_states] == [tid]
    assert listed.unknown_state_filters == ("Bogus",)


def test_markers_from_an_older_coordinator_epoch_are_fenced(
    session: Session, new_topic: TopicFactory
) -> None:
    """WriteTxnMarkers as a coordinator that lost its partition would send it."""
    topic = new_topic(partitions=1)
    leader = session.leader(topic, 0)
    module = schema.request_module(WRITE_TXN_MARKERS, 1)
    producer_id = 900_000 + int(uuid.uuid4().int % 100_000)

    def marker(coordinator_epoch: int) -> ErrorCode:
        response = session.to(
            leader,
            WRITE_TXN_MARKERS,
            1,
            markers=(
                module.WritableTxnMarker(
                    producer_id=i64(producer_id),
                    producer_epoch=i16(0),
                    transaction_result=False,
                    topics=(
                        module.WritableTxnMarkerTopic(name=topic, partition_indexes=(i32(0),)),
                    ),
                    coordinator_epoch=i32(coordinator_epoch),
                ),
            ),
        )
        return ErrorCode(response.markers[0].topics[0].partitions[0].error_code)

    assert marker(7) == ErrorCode.none
    assert marker(6) == ErrorCode.transaction_coordinator_fenced
    assert marker(7) == ErrorCode.none
    assert marker(8) == ErrorCode.none
    assert marker(7) == ErrorCode.transaction_coordinator_fenced
