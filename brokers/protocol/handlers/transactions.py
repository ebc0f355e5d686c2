"""Transactions: AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit, WriteTxnMarkers,
DescribeTransactions and ListTransactions.

The transaction coordinator (brokers.coordinator.transaction_coordinator) holds the rules for
the transaction APIs; TxnOffsetCommit goes to the group coordinator, WriteTxnMarkers to the
partition leaders (brokers.coordinator.markers).
"""

from __future__ import annotations

import datetime
import time
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i16, i32, i64

from brokers.coordinator.group_coordinator import CommitRequest
from brokers.coordinator.markers import Marker
from brokers.coordinator.records import OffsetRecord
from brokers.coordinator.transaction import TxnState
from brokers.protocol import schema
from brokers.protocol.dispatch import Dispatcher, RequestContext
from brokers.protocol.handlers.common import NO_THROTTLE, response_schema

if TYPE_CHECKING:
    from brokers.node import BrokerNode

ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN, WRITE_TXN_MARKERS, TXN_OFFSET_COMMIT = (
    24,
    25,
    26,
    27,
    28,
)
# AddPartitionsToTxn v4+ is the broker-to-broker batch form (KIP-890), not served here.
ADD_PARTITIONS_VERSIONS = (0, 3)
ADD_OFFSETS_VERSIONS = (0, 3)
# EndTxn v4 adds TRANSACTION_ABORTABLE and v5 the per-transaction epoch bump (KIP-890).
END_TXN_VERSIONS = (0, 3)
WRITE_TXN_MARKERS_VERSIONS = (1, 1)
TXN_OFFSET_COMMIT_VERSIONS = (0, 3)
DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS = 65, 66
DESCRIBE_TRANSACTIONS_VERSIONS = (0, 0)
LIST_TRANSACTIONS_VERSIONS = (0, 0)
TXN_STATES = frozenset(s.value for s in TxnState)


def _started(ms: int) -> datetime.datetime:
    """Kafka's start time, -1 when no transaction is open."""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)


def _fenced_code(code: ErrorCode, version: int, first_with_fenced: int) -> ErrorCode:
    """PRODUCER_FENCED (KIP-588) is INVALID_PRODUCER_EPOCH to clients of older versions."""
    if code == ErrorCode.producer_fenced and version < first_with_fenced:
        return ErrorCode.invalid_producer_epoch
    return code


def register(dispatcher: Dispatcher, node: BrokerNode) -> None:
    def coordinator() -> Any:
        return node.txn_coordinator

    # AddPartitionsToTxn -----------------------------------------------------------------------

    async def add_partitions(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        image = node.image
        wanted: list[tuple[str, int]] = []
        unknown: set[tuple[str, int]] = set()
        for topic in request.v3_and_below_topics:
            for index in topic.partitions:
                key = (topic.name, int(index))
                if image.partition(*key) is None:
                    unknown.add(key)
                else:
                    wanted.append(key)
        if unknown:
            # Kafka adds nothing when a partition is unknown: the rest are not attempted.
            error = ErrorCode.none
        else:
            error = await coordinator().add_partitions(
                request.v3_and_below_transactional_id,
                int(request.v3_and_below_producer_id),
                int(request.v3_and_below_producer_epoch),
                wanted,
            )
            error = _fenced_code(error, ctx.api_version, 2)
        topics = []
        for topic in request.v3_and_below_topics:
            results = []
            for index in topic.partitions:
                key = (topic.name, int(index))
                if unknown:
                    code = (
                        ErrorCode.unknown_topic_or_partition
                        if key in unknown
                        else ErrorCode.operation_not_attempted
                    )
                else:
                    code = error
                results.append(
                    module.AddPartitionsToTxnPartitionResult(
                        partition_index=i32(index), partition_error_code=code
                    )
                )
            topics.append(
                module.AddPartitionsToTxnTopicResult(
                    name=topic.name, results_by_partition=tuple(results)
                )
            )
        return schema.build(
            module.AddPartitionsToTxnResponse,
            throttle_time=NO_THROTTLE,
            results_by_topic_v3_and_below=tuple(topics),
        )

    # AddOffsetsToTxn, EndTxn ------------------------------------------------------------------

    async def add_offsets(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        error = await coordinator().add_offsets(
            request.transactional_id,
            int(request.producer_id),
            int(request.producer_epoch),
            request.group_id,
        )
        return schema.build(
            module.AddOffsetsToTxnResponse,
            throttle_time=NO_THROTTLE,
            error_code=_fenced_code(error, ctx.api_version, 2),
        )

    async def end_txn(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        error = await coordinator().end_transaction(
            request.transactional_id,
            int(request.producer_id),
            int(request.producer_epoch),
            bool(request.committed),
        )
        return schema.build(
            module.EndTxnResponse,
            throttle_time=NO_THROTTLE,
            error_code=_fenced_code(error, ctx.api_version, 2),
        )

    # TxnOffsetCommit --------------------------------------------------------------------------

    async def txn_offset_commit(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        now_ms = int(time.time() * 1000)
        offsets = tuple(
            OffsetRecord(
                topic.name,
                int(p.partition_index),
                int(p.committed_offset),
                int(getattr(p, "committed_leader_epoch", -1)),
                p.committed_metadata or "",
                now_ms,
            )
            for topic in request.topics
            for p in topic.partitions
        )
        error, errors = await node.group_coordinator.txn_commit_offsets(
            CommitRequest(
                group_id=request.group_id,
                generation_id=int(getattr(request, "generation_id", -1)),
                member_id=getattr(request, "member_id", ""),
                group_instance_id=getattr(request, "group_instance_id", None),
                offsets=offsets,
            ),
            int(request.producer_id),
        )
        topics = []
        for topic in request.topics:
            partitions = tuple(
                module.TxnOffsetCommitResponsePartition(
                    partition_index=p.partition_index,
                    error_code=error
                    if error != ErrorCode.none
                    else errors.get((topic.name, int(p.partition_index)), ErrorCode.none),
                )
                for p in topic.partitions
            )
            topics.append(
                module.TxnOffsetCommitResponseTopic(name=topic.name, partitions=partitions)
            )
        return schema.build(
            module.TxnOffsetCommitResponse, throttle_time=NO_THROTTLE, topics=tuple(topics)
        )

    # WriteTxnMarkers --------------------------------------------------------------------------

    async def write_txn_markers(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        results = []
        for m in request.markers:
            marker = Marker(
                int(m.producer_id),
                int(m.producer_epoch),
                bool(m.transaction_result),
                int(m.coordinator_epoch),
                tuple((t.name, int(i)) for t in m.topics for i in t.partition_indexes),
            )
            written = await node.marker_writer.write(marker)
            results.append(
                module.WritableTxnMarkerResult(
                    producer_id=m.producer_id,
                    topics=tuple(
                        module.WritableTxnMarkerTopicResult(
                            name=t.name,
                            partitions=tuple(
                                module.WritableTxnMarkerPartitionResult(
                                    partition_index=i,
                                    error_code=written.get(
                                        (t.name, int(i)), ErrorCode.unknown_server_error
                                    ),
                                )
                                for i in t.partition_indexes
                            ),
                        )
                        for t in m.topics
                    ),
                )
            )
        return schema.build(module.WriteTxnMarkersResponse, markers=tuple(results))

    # DescribeTransactions, ListTransactions --------------------------------------------------

    def describe_transactions(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        states = []
        for transactional_id in request.transactional_ids:
            error, txn = coordinator().describe(transactional_id)
            topics: dict[str, list[int]] = {}
            for topic, index in txn.partitions if txn is not None else ():
                topics.setdefault(topic, []).append(index)
            states.append(
                module.TransactionState(
                    error_code=error,
                    transactional_id=transactional_id,
                    transaction_state=txn.state if txn is not None else "",
                    transaction_timeout=datetime.timedelta(
                        milliseconds=txn.timeout_ms if txn is not None else 0
                    ),
                    transaction_start_time=_started(txn.started_ms if txn is not None else -1),
                    producer_id=i64(txn.producer_id if txn is not None else -1),
                    producer_epoch=i16(txn.producer_epoch if txn is not None else -1),
                    topics=tuple(
                        module.TopicData(topic=t, partitions=tuple(i32(i) for i in ps))
                        for t, ps in topics.items()
                    ),
                )
            )
        return schema.build(
            module.DescribeTransactionsResponse,
            throttle_time=NO_THROTTLE,
            transaction_states=tuple(states),
        )

    def list_transactions(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        wanted = set(request.state_filters)
        unknown = tuple(sorted(wanted - TXN_STATES))
        error, listed = coordinator().list_transactions(
            wanted & TXN_STATES if wanted else (), [int(p) for p in request.producer_id_filters]
        )
        if wanted and not wanted & TXN_STATES:
            listed = []
        return schema.build(
            module.ListTransactionsResponse,
            throttle_time=NO_THROTTLE,
            error_code=error,
            unknown_state_filters=unknown,
            transaction_states=tuple(
                module.TransactionState(
                    transactional_id=t.transactional_id,
                    producer_id=i64(t.producer_id),
                    transaction_state=t.state,
                )
                for t in listed
            ),
        )

    dispatcher.register(ADD_PARTITIONS_TO_TXN, *ADD_PARTITIONS_VERSIONS, add_partitions)
    dispatcher.register(ADD_OFFSETS_TO_TXN, *ADD_OFFSETS_VERSIONS, add_offsets)
    dispatcher.register(END_TXN, *END_TXN_VERSIONS, end_txn)
    dispatcher.register(WRITE_TXN_MARKERS, *WRITE_TXN_MARKERS_VERSIONS, write_txn_markers)
    dispatcher.register(TXN_OFFSET_COMMIT, *TXN_OFFSET_COMMIT_VERSIONS, txn_offset_commit)
    dispatcher.register(
        DESCRIBE_TRANSACTIONS, *DESCRIBE_TRANSACTIONS_VERSIONS, describe_transactions
    )
    dispatcher.register(LIST_TRANSACTIONS, *LIST_TRANSACTIONS_VERSIONS, list_transactions)
