"""Produce: append record batches on partition leaders, with acks 0, 1 and all."""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from brokers.protocol import wire
from brokers.protocol.dispatch import Dispatcher, InvalidRequest, RequestContext
from brokers.protocol.handlers.common import timeout_seconds
from brokers.replication.replica_manager import AppendResult

if TYPE_CHECKING:
    from brokers.node import BrokerNode

API_KEY = 0
# v3 is the first with record batches (magic 2); v10 adds KIP-951 leader hints.
MIN_VERSION, MAX_VERSION = 3, 10
# Like Kafka 4 (KAFKA-18659), ApiVersions shows Produce from v0 although v0-2 requests are
# refused: older librdkafka (2.0 in kcat, for one) sends gzip, snappy and lz4 batches
# uncompressed to a broker whose Produce range does not include v0 (librdkafka issue 4956).
ADVERTISED_MIN_VERSION = 0

_BASE_OFFSET = struct.Struct(">q")
_BATCH_LENGTH = struct.Struct(">i")
LOG_OVERHEAD = 12  # base offset and batch length: the bytes a batch length does not count
MAGIC_OFFSET = 16
ATTRIBUTES_OFFSET = 21
MIN_RECORD_OVERHEAD = 14  # the smallest legal batch length (a magic 0 record)
ZSTD = 4
ZSTD_MIN_VERSION = 7
TXN = 0x10  # the transactional bit of the batch attributes' low byte
PRODUCER_OFFSET = 43
RECORD_BATCH_OVERHEAD = 61
_PRODUCER = struct.Struct(">qh")


class CorruptBatch(Exception):
    """A batch whose length or magic Kafka calls corrupt (CORRUPT_MESSAGE)."""


def _batch_size(records: bytes, position: int) -> int | None:
    """Kafka's next batch size at position (headers included); None when no whole batch is there."""
    remaining = len(records) - position
    if remaining < LOG_OVERHEAD:
        return None
    (length,) = _BATCH_LENGTH.unpack_from(records, position + 8)
    if length < MIN_RECORD_OVERHEAD:
        raise CorruptBatch(
            f"Record size {length} is less than the minimum record overhead ({MIN_RECORD_OVERHEAD})"
        )
    if remaining <= MAGIC_OFFSET:
        return None
    magic = records[position + MAGIC_OFFSET]
    if magic > 2:
        raise CorruptBatch(
            f"Invalid magic found in record: {magic - 256 if magic > 127 else magic}"
        )
    size = LOG_OVERHEAD + length
    return size if size <= remaining else None


def check_records(version: int, records: bytes | None) -> tuple[ErrorCode, str] | bytes:
    """Kafka's checks of one partition's Produce records (ProduceRequest.validateRecords).

    One whole magic 2 batch at base offset 0, zstd only from v7: the records to append, or the
    error to answer. The log validates the batch itself (CRC, sizes, sequence numbers).
    """
    if records is None:
        return ErrorCode.invalid_record, "Produce request has no record batch"
    try:
        size = _batch_size(records, 0)
        if size is None:
            return (
                ErrorCode.invalid_record,
                f"Produce requests with version {version} must have at least one record batch "
                "per partition",
            )
        if records[MAGIC_OFFSET] != 2:
            return (
                ErrorCode.invalid_record,
                f"Produce requests with version {version} are only allowed to contain record "
                "batches with magic version 2",
            )
        if version < ZSTD_MIN_VERSION and records[ATTRIBUTES_OFFSET + 1] & 0x07 == ZSTD:
            return (
                ErrorCode.unsupported_compression_type,
                f"Produce requests with version {version} are not allowed to use ZStandard "
                "compression",
            )
        if _batch_size(records, size) is not None:
            return (
                ErrorCode.invalid_record,
                f"Produce requests with version {version} are only allowed to contain exactly "
                "one record batch per partition",
            )
    except CorruptBatch as exc:
        return ErrorCode.corrupt_message, str(exc)
    (base_offset,) = _BASE_OFFSET.unpack_from(records)
    if base_offset != 0:
        return (
            ErrorCode.invalid_record,
            f"The baseOffset of the record batch should be 0, but it is {base_offset}",
        )
    # Like Kafka, trailing bytes that do not make a whole batch are dropped.
    return records if len(records) == size else records[:size]


def register(dispatcher: Dispatcher, node: BrokerNode) -> None:
    replicas = node.replicas

    def respond(ctx: RequestContext, results: Sequence[AppendResult]) -> bytes:
        by_topic: dict[str, list[wire.ProducePartitionResult]] = {}
        leaders: set[int] = set()
        for r in results:
            info = r.info
            if r.current_leader is not None and r.current_leader[0] >= 0:
                leaders.add(r.current_leader[0])
            by_topic.setdefault(r.topic, []).append(
                wire.ProducePartitionResult(
                    index=r.index,
                    error_code=r.error,
                    base_offset=info.base_offset if info is not None else -1,
                    log_append_time=info.log_append_time if info is not None else -1,
                    log_start_offset=r.log_start_offset,
                    error_message=r.message,
                    current_leader=r.current_leader,
                )
            )
        endpoints = [node.endpoint(b) for b in sorted(leaders)] if ctx.api_version >= 10 else []
        return wire.produce_response(
            ctx.api_version, list(by_topic.items()), [e for e in endpoints if e is not None]
        )

    def handle(ctx: RequestContext, request: Any) -> Any:
        acks = request.acks
        entries = [
            (topic.name, partition.index, partition.records)
            for topic in request.topic_data
            for partition in topic.partition_data
        ]
        if acks not in (-1, 0, 1):
            return respond(
                ctx, [AppendResult(t, i, ErrorCode.invalid_required_acks) for t, i, _ in entries]
            )
        image = node.image
        results = []
        valid = []
        for topic, index, records in entries:
            if image.partition(topic, index) is None:
                valid.append((topic, index, records))  # answered UNKNOWN_TOPIC_OR_PARTITION
                continue
            checked = check_records(ctx.api_version, records)
            if isinstance(checked, tuple):
                results.append(AppendResult(topic, index, checked[0], checked[1]))
            else:
                valid.append((topic, index, checked))
        if request.transactional_id is not None:
            unverified = _unverified(valid)
            if unverified:
                return _verify_then_append(
                    ctx, request, acks, results, valid, unverified, request.transactional_id
                )
        return _append(ctx, request, acks, results, valid)

    def _unverified(
        valid: list[tuple[str, int, bytes]],
    ) -> dict[tuple[str, int], tuple[int, int]]:
        """Transactional batches that would open a transaction on their partition: the leader
        checks with the coordinator that the producer added the partition (else
        INVALID_TXN_STATE, as Kafka answers). Later batches of the same transaction pass."""
        out = {}
        for topic, index, records in valid:
            if (
                not records
                or len(records) < RECORD_BATCH_OVERHEAD
                or not records[ATTRIBUTES_OFFSET + 1] & TXN
            ):
                continue
            producer_id, epoch = _PRODUCER.unpack_from(records, PRODUCER_OFFSET)
            partition = replicas.partition(topic, index)
            if partition is None or not partition.is_leader:
                continue
            if producer_id not in partition.log.producer_state.ongoing:
                out[(topic, index)] = (producer_id, epoch)
        return out

    async def _verify_then_append(
        ctx: RequestContext,
        request: Any,
        acks: int,
        results: list[AppendResult],
        valid: list[tuple[str, int, bytes]],
        unverified: dict[tuple[str, int], tuple[int, int]],
        transactional_id: str,
    ) -> Any:
        by_producer: dict[tuple[int, int], list[tuple[str, int]]] = {}
        for key, producer in unverified.items():
            by_producer.setdefault(producer, []).append(key)
        refused: dict[tuple[str, int], ErrorCode] = {}
        for (producer_id, epoch), keys in by_producer.items():
            try:
                error = await node.txn_coordinator.verify(
                    transactional_id, producer_id, epoch, keys
                )
            except Exception:
                error = ErrorCode.coordinator_not_available
            if error != ErrorCode.none:
                refused.update(dict.fromkeys(keys, error))
        if refused:
            results = results + [AppendResult(t, i, refused[(t, i)]) for t, i in refused]
            valid = [v for v in valid if (v[0], v[1]) not in refused]
        out = _append(ctx, request, acks, results, valid)
        if isinstance(out, Awaitable):
            return await out
        return out

    def _append(
        ctx: RequestContext,
        request: Any,
        acks: int,
        results: list[AppendResult],
        valid: list[tuple[str, int, bytes]],
    ) -> Any:
        results += replicas.append(acks, valid)
        if acks == 0:
            failed = [r for r in results if r.error != ErrorCode.none]
            if failed:
                # Kafka's answer to a failed acks=0 produce: close the connection, so the
                # client refreshes its metadata.
                raise InvalidRequest(f"acks=0 produce failed: {failed[0].error.name}")
            return None
        if acks == -1 and any(r.error == ErrorCode.none for r in results):
            return _await_acks(ctx, results, timeout_seconds(request.timeout))
        return respond(ctx, results)

    async def _await_acks(
        ctx: RequestContext, results: list[AppendResult], timeout_s: float
    ) -> bytes:
        return respond(ctx, await replicas.wait_for_acks(results, timeout_s))

    dispatcher.register(
        API_KEY, MIN_VERSION, MAX_VERSION, handle, advertised_min_version=ADVERTISED_MIN_VERSION
    )
