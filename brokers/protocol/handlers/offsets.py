"""ListOffsets, OffsetForLeaderEpoch and DeleteRecords: questions about a partition's offsets."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i32, i64

from brokers.log.errors import LogError
from brokers.protocol import schema
from brokers.protocol.dispatch import Dispatcher, RequestContext
from brokers.protocol.handlers.common import NO_THROTTLE, response_schema, timeout_seconds
from brokers.replication.partition import Partition, PartitionError

if TYPE_CHECKING:
    from brokers.node import BrokerNode

LIST_OFFSETS, OFFSET_FOR_LEADER_EPOCH, DELETE_RECORDS = 2, 23, 21
LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED, EARLIEST_PENDING_UPLOAD = (
    -1,
    -2,
    -3,
    -4,
    -5,
    -6,
)
CONSUMER_REPLICA_ID = -1
READ_COMMITTED = 1
READ_COMMITTED = 1


def register(dispatcher: Dispatcher, node: BrokerNode) -> None:
    replicas = node.replicas

    def lookup(
        partition: Partition, timestamp: int, replica_id: int, isolation: int
    ) -> tuple[int, int, int]:
        """(timestamp, offset, leader epoch) for one ListOffsets query, as Kafka answers it."""
        plog = partition.log
        client = replica_id in (CONSUMER_REPLICA_ID,)
        if not client:
            last_fetchable = plog.log_end_offset
        elif isolation == READ_COMMITTED:
            last_fetchable = plog.last_stable_offset
        else:
            last_fetchable = plog.high_watermark
        lagging = client and partition.leader_epoch_start_offset > plog.high_watermark
        if timestamp == LATEST:
            if lagging:
                raise PartitionError(ErrorCode.offset_not_available)
            return -1, last_fetchable, partition.leader_epoch
        if timestamp in (EARLIEST, EARLIEST_LOCAL):
            # Like Kafka, with the epoch that wrote the first offset when it is known.
            epoch = plog.epoch_cache.epoch_for_offset(plog.log_start_offset)
            return -1, plog.log_start_offset, -1 if epoch is None else epoch
        if timestamp in (LATEST_TIERED, EARLIEST_PENDING_UPLOAD):
            return -1, -1, -1  # no tiered storage: nothing is remote
        if lagging:
            raise PartitionError(ErrorCode.offset_not_available)
        found = (
            plog.max_timestamp()
            if timestamp == MAX_TIMESTAMP
            else plog.offset_for_timestamp(timestamp)
        )
        if found is None:
            return -1, -1, -1
        offset, ts = found
        if offset < 0 or offset >= last_fetchable:
            return -1, -1, -1
        return ts, offset, -1

    def list_offsets(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        replica_id = request.replica_id
        isolation = getattr(request, "isolation_level", 0)
        topics = []
        for topic in request.topics:
            partitions = []
            for p in topic.partitions:
                values: dict[str, Any] = {"partition_index": p.partition_index}
                try:
                    partition = replicas.leader_partition(
                        topic.name, p.partition_index, getattr(p, "current_leader_epoch", -1)
                    )
                    ts, offset, epoch = lookup(partition, p.timestamp, replica_id, isolation)
                    values.update(
                        error_code=ErrorCode.none,
                        timestamp=i64(ts),
                        offset=i64(offset),
                        leader_epoch=i32(epoch),
                    )
                except PartitionError as exc:
                    values.update(
                        error_code=exc.code, timestamp=i64(-1), offset=i64(-1), leader_epoch=i32(-1)
                    )
                except LogError as exc:
                    values.update(
                        error_code=ErrorCode(exc.error_code), timestamp=i64(-1), offset=i64(-1)
                    )
                if ctx.api_version == 0:
                    values["old_style_offsets"] = (
                        () if values["offset"] < 0 else (values["offset"],)
                    )
                partitions.append(schema.build(module.ListOffsetsPartitionResponse, **values))
            topics.append(
                schema.build(
                    module.ListOffsetsTopicResponse, name=topic.name, partitions=tuple(partitions)
                )
            )
        return schema.build(
            module.ListOffsetsResponse, throttle_time=NO_THROTTLE, topics=tuple(topics)
        )

    def offset_for_leader_epoch(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        topics = []
        for topic in request.topics:
            results = []
            for p in topic.partitions:
                values: dict[str, Any] = {
                    "partition": p.partition,
                    "leader_epoch": i32(-1),
                    "end_offset": i64(-1),
                }
                try:
                    partition = replicas.leader_partition(
                        topic.topic, p.partition, getattr(p, "current_leader_epoch", -1)
                    )
                    epoch, end_offset = partition.log.end_offset_for_epoch(p.leader_epoch)
                    values.update(
                        error_code=ErrorCode.none,
                        leader_epoch=i32(epoch),
                        end_offset=i64(end_offset),
                    )
                except PartitionError as exc:
                    values["error_code"] = exc.code
                results.append(schema.build(module.EpochEndOffset, **values))
            topics.append(
                schema.build(
                    module.OffsetForLeaderTopicResult, topic=topic.topic, partitions=tuple(results)
                )
            )
        return schema.build(
            module.OffsetForLeaderEpochResponse, throttle_time=NO_THROTTLE, topics=tuple(topics)
        )

    def delete_records(ctx: RequestContext, request: Any) -> Any:
        """Move each partition's log start offset; answer once the in-sync replicas follow."""
        answers: list[tuple[str, list[dict[str, Any]]]] = []
        waits: list[tuple[dict[str, Any], Partition, asyncio.Future[ErrorCode]]] = []
        for topic in request.topics:
            results: list[dict[str, Any]] = []
            for p in topic.partitions:
                values: dict[str, Any] = {
                    "partition_index": p.partition_index,
                    "low_watermark": i64(-1),
                }
                results.append(values)
                try:
                    partition = replicas.leader_partition(topic.name, p.partition_index)
                    plog = partition.log
                    offset = plog.high_watermark if p.offset == -1 else p.offset
                    if offset < 0 or offset > plog.high_watermark:
                        raise PartitionError(ErrorCode.offset_out_of_range)
                    plog.delete_records_before(offset)
                    values["error_code"] = ErrorCode.none
                    waits.append((values, partition, partition.wait_for_low_watermark(offset)))
                except PartitionError as exc:
                    values["error_code"] = exc.code
                except LogError as exc:
                    values["error_code"] = ErrorCode(exc.error_code)
            answers.append((topic.name, results))
        if waits:
            # Followers see the new log start in their next fetch response.
            for _, partition, _ in waits:
                partition.wake_replicas(answer_now=True)
            return _await_low_watermarks(ctx, answers, waits, timeout_seconds(request.timeout))
        return _delete_records_response(ctx, answers)

    async def _await_low_watermarks(
        ctx: RequestContext,
        answers: list[tuple[str, list[dict[str, Any]]]],
        waits: list[tuple[dict[str, Any], Partition, asyncio.Future[ErrorCode]]],
        timeout_s: float,
    ) -> Any:
        pending = {future for _, _, future in waits if not future.done()}
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
        for values, partition, future in waits:
            if future.done():
                values["error_code"] = future.result()
            else:
                future.cancel()
                values["error_code"] = ErrorCode.request_timed_out
            if values["error_code"] == ErrorCode.none:
                values["low_watermark"] = i64(partition.low_watermark)
        return _delete_records_response(ctx, answers)

    def _delete_records_response(
        ctx: RequestContext, answers: list[tuple[str, list[dict[str, Any]]]]
    ) -> Any:
        module = response_schema(ctx)
        topics = tuple(
            schema.build(
                module.DeleteRecordsTopicResult,
                name=name,
                partitions=tuple(
                    schema.build(module.DeleteRecordsPartitionResult, **values)
                    for values in results
                ),
            )
            for name, results in answers
        )
        return schema.build(module.DeleteRecordsResponse, throttle_time=NO_THROTTLE, topics=topics)

    dispatcher.register(LIST_OFFSETS, 1, 11, list_offsets)
    dispatcher.register(OFFSET_FOR_LEADER_EPOCH, 2, 4, offset_for_leader_epoch)
    dispatcher.register(DELETE_RECORDS, 0, 2, delete_records)
