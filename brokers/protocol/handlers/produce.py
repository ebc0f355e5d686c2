"""Produce: append record batches on partition leaders, with acks 0, 1 and all."""

from __future__ import annotations

from collections.abc import Sequence
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
        if request.transactional_id is not None:
            return respond(
                ctx,
                [
                    AppendResult(
                        t,
                        i,
                        ErrorCode.transactional_id_authorization_failed,
                        "Transactions are not enabled",
                    )
                    for t, i, _ in entries
                ],
            )
        results = replicas.append(acks, entries)
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

    dispatcher.register(API_KEY, MIN_VERSION, MAX_VERSION, handle)
