"""Fetch: consumers and followers read record batches, long-polling until there is enough."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from brokers.protocol import wire
from brokers.protocol.dispatch import Dispatcher, RequestContext
from brokers.protocol.framing import FileRegion, Response
from brokers.replication.replica_manager import FetchRequestPartition, FetchResult

if TYPE_CHECKING:
    import uuid

    from brokers.node import BrokerNode

API_KEY = 1
# v4 is the first that returns record batches (magic 2) with last stable offsets.
MIN_VERSION, MAX_VERSION = 4, 16
READ_COMMITTED = 1


def register(dispatcher: Dispatcher, node: BrokerNode) -> None:
    replicas = node.replicas

    def handle(ctx: RequestContext, request: Any) -> Any:
        version = ctx.api_version
        if getattr(request, "session_id", 0) != 0:  # fetch sessions came with v7
            # This broker never hands out fetch sessions (KIP-227); clients fall back to full fetches.
            return wire.fetch_response(version, [], error_code=ErrorCode.fetch_session_id_not_found)
        replica_id = request.replica_state.replica_id if version >= 15 else request.replica_id
        image = node.image
        wanted: list[FetchRequestPartition] = []
        unknown: list[tuple[str, uuid.UUID | None, int]] = []
        ids: dict[str, uuid.UUID | None] = {}
        for topic in request.topics:
            if version >= 13:
                info = image.topics_by_id.get(topic.topic_id)
                if info is None:
                    unknown.extend(
                        (str(topic.topic_id), topic.topic_id, p.partition) for p in topic.partitions
                    )
                    continue
                name = info.name
                ids[name] = topic.topic_id
            else:
                name = topic.topic
            for p in topic.partitions:
                wanted.append(
                    FetchRequestPartition(
                        topic=name,
                        index=p.partition,
                        fetch_offset=p.fetch_offset,
                        max_bytes=p.partition_max_bytes,
                        current_leader_epoch=getattr(p, "current_leader_epoch", -1),
                        last_fetched_epoch=getattr(p, "last_fetched_epoch", -1),
                        log_start_offset=getattr(p, "log_start_offset", -1),
                    )
                )
        read_committed = request.isolation_level == READ_COMMITTED
        max_wait_ms = int(request.max_wait.total_seconds() * 1000)
        if unknown:
            # An unknown topic id is an error to report now, not to wait on.
            max_wait_ms = 0

        def respond(results: list[FetchResult]) -> Response:
            if replica_id < 0:
                replicas.record_consumed(results)
            by_topic: dict[str, list[wire.FetchPartitionResult]] = {}
            leaders: set[int] = set()
            for r in results:
                if r.current_leader is not None and r.current_leader[0] >= 0:
                    leaders.add(r.current_leader[0])
                by_topic.setdefault(r.topic, []).append(
                    wire.FetchPartitionResult(
                        index=r.index,
                        error_code=r.error,
                        high_watermark=r.high_watermark,
                        last_stable_offset=r.last_stable_offset,
                        log_start_offset=r.log_start_offset,
                        aborted_transactions=r.aborted_transactions,
                        records=b""
                        if r.records is None
                        else FileRegion(r.records.fd, r.records.position, r.records.length),
                        diverging_epoch=r.diverging_epoch,
                        current_leader=r.current_leader,
                    )
                )
            topics = [
                wire.FetchTopicResult(name, ids.get(name), partitions)
                for name, partitions in by_topic.items()
            ]
            for name, topic_id, index in unknown:
                topics.append(
                    wire.FetchTopicResult(
                        name,
                        topic_id,
                        [wire.FetchPartitionResult(index, ErrorCode.unknown_topic_id)],
                    )
                )
            endpoints = [node.endpoint(b) for b in sorted(leaders)] if version >= 16 else []
            return wire.fetch_response(
                version, topics, node_endpoints=[e for e in endpoints if e is not None]
            )

        outcome = replicas.fetch(
            wanted,
            replica_id=replica_id,
            max_wait_ms=max_wait_ms,
            min_bytes=request.min_bytes,
            max_bytes=request.max_bytes,
            read_committed=read_committed and replica_id < 0,
        )
        if isinstance(outcome, list):
            return respond(outcome)
        return _later(outcome, respond)

    async def _later(
        pending: Awaitable[list[FetchResult]], respond: Callable[[list[FetchResult]], Response]
    ) -> Response:
        return respond(await pending)

    dispatcher.register(API_KEY, MIN_VERSION, MAX_VERSION, handle)
