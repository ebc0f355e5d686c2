"""Consumer groups: FindCoordinator, Join/Sync/Heartbeat/LeaveGroup, offsets and group admin.

The handlers translate between kio entities and the group coordinator's plain requests; the
coordinator (brokers.coordinator.group_coordinator) holds every rule.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode
from kio.schema.types import BrokerId
from kio.static.primitive import i32, i64

from brokers.coordinator.group import JoinResult, Protocol
from brokers.coordinator.group_coordinator import CommitRequest, JoinRequest, SyncRequest
from brokers.coordinator.offsets_topic import OFFSETS_TOPIC, partition_for
from brokers.coordinator.records import OffsetRecord
from brokers.protocol import schema
from brokers.protocol.dispatch import Dispatcher, RequestContext
from brokers.protocol.handlers.common import NO_THROTTLE, response_schema
from brokers.protocol.wire import NodeEndpoint

if TYPE_CHECKING:
    from brokers.node import BrokerNode

OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 8, 9, 10
JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14
DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS, OFFSET_DELETE = 15, 16, 42, 47

GROUP_KEY, TRANSACTION_KEY, SHARE_KEY = 0, 1, 2
NO_OPERATIONS = -(2**31)
# Without ACLs every group operation is allowed: READ, DELETE, DESCRIBE.
GROUP_OPERATIONS = sum(1 << op for op in (3, 6, 8))
_MS = datetime.timedelta(milliseconds=1)


def _ms(value: datetime.timedelta) -> int:
    return int(value / _MS)


def register(dispatcher: Dispatcher, node: BrokerNode) -> None:
    coordinator = node.group_coordinator

    # FindCoordinator --------------------------------------------------------------------------

    def locate(key_type: int, key: str) -> tuple[ErrorCode, NodeEndpoint | None]:
        # A transactional id is coordinated by the leader of its `__consumer_offsets`
        # partition, found the same way as a group's (brokers.coordinator.transaction_coordinator).
        if key_type not in (GROUP_KEY, TRANSACTION_KEY):
            return ErrorCode.invalid_request, None
        topic = node.image.topics.get(OFFSETS_TOPIC)
        if topic is None or not topic.partitions:
            # The controller creates the offsets topic; until then clients retry.
            return ErrorCode.coordinator_not_available, None
        state = topic.partitions[partition_for(key, len(topic.partitions))]
        broker = node.image.brokers.get(state.leader)
        if broker is None or not broker.alive:
            return ErrorCode.coordinator_not_available, None
        return ErrorCode.none, NodeEndpoint(broker.id, broker.host, broker.port, broker.rack)

    def find_coordinator(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        key_type = int(getattr(request, "key_type", GROUP_KEY))
        if ctx.api_version >= 4:
            coordinators = []
            for key in request.coordinator_keys:
                error, endpoint = locate(key_type, key)
                coordinators.append(
                    module.Coordinator(
                        key=key,
                        node_id=BrokerId(endpoint.node_id if endpoint else -1),
                        host=endpoint.host if endpoint else "",
                        port=i32(endpoint.port if endpoint else -1),
                        error_code=error,
                        error_message=None,
                    )
                )
            return schema.build(
                module.FindCoordinatorResponse,
                throttle_time=NO_THROTTLE,
                coordinators=tuple(coordinators),
            )
        error, endpoint = locate(key_type, request.key)
        return schema.build(
            module.FindCoordinatorResponse,
            throttle_time=NO_THROTTLE,
            error_code=error,
            error_message=None if error == ErrorCode.none else error.name,
            node_id=BrokerId(endpoint.node_id if endpoint else -1),
            host=endpoint.host if endpoint else "",
            port=i32(endpoint.port if endpoint else -1),
        )

    # JoinGroup, SyncGroup, Heartbeat, LeaveGroup ----------------------------------------------

    def join_response(ctx: RequestContext, result: JoinResult) -> Any:
        module = response_schema(ctx)
        nullable = ctx.api_version >= 7
        return schema.build(
            module.JoinGroupResponse,
            throttle_time=NO_THROTTLE,
            error_code=result.error,
            generation_id=i32(result.generation_id),
            protocol_type=result.protocol_type,
            protocol_name=result.protocol_name if nullable else (result.protocol_name or ""),
            leader=result.leader,
            skip_assignment=result.skip_assignment,
            member_id=result.member_id,
            members=tuple(
                schema.build(
                    module.JoinGroupResponseMember,
                    member_id=member_id,
                    group_instance_id=instance_id,
                    metadata=metadata,
                )
                for member_id, instance_id, metadata in result.members
            ),
        )

    async def join_group(ctx: RequestContext, request: Any) -> Any:
        session_ms = _ms(request.session_timeout)
        rebalance = getattr(request, "rebalance_timeout", None)
        result = await coordinator.join_group(
            JoinRequest(
                group_id=request.group_id,
                member_id=request.member_id,
                group_instance_id=getattr(request, "group_instance_id", None),
                protocol_type=request.protocol_type,
                protocols=tuple(Protocol(p.name, bytes(p.metadata)) for p in request.protocols),
                session_timeout_ms=session_ms,
                rebalance_timeout_ms=session_ms if rebalance is None else _ms(rebalance),
                client_id=ctx.client_id or "",
                client_host=f"/{ctx.client_host}",
                require_known_member_id=ctx.api_version >= 4,
                supports_skip_assignment=ctx.api_version >= 9,
                reason=getattr(request, "reason", None),
            )
        )
        return join_response(ctx, result)

    async def sync_group(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        result = await coordinator.sync_group(
            SyncRequest(
                group_id=request.group_id,
                generation_id=int(request.generation_id),
                member_id=request.member_id,
                group_instance_id=getattr(request, "group_instance_id", None),
                protocol_type=getattr(request, "protocol_type", None),
                protocol_name=getattr(request, "protocol_name", None),
                assignments=tuple((a.member_id, bytes(a.assignment)) for a in request.assignments),
            )
        )
        return schema.build(
            module.SyncGroupResponse,
            throttle_time=NO_THROTTLE,
            error_code=result.error,
            protocol_type=result.protocol_type,
            protocol_name=result.protocol_name,
            assignment=result.assignment,
        )

    def heartbeat(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        error = coordinator.heartbeat(
            request.group_id,
            int(request.generation_id),
            request.member_id,
            getattr(request, "group_instance_id", None),
        )
        return schema.build(module.HeartbeatResponse, throttle_time=NO_THROTTLE, error_code=error)

    def leave_group(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        if ctx.api_version >= 3:
            members = [(m.member_id, m.group_instance_id) for m in request.members]
        else:
            members = [(request.member_id, None)]
        error, results = coordinator.leave_group(request.group_id, members)
        if ctx.api_version < 3:
            # One member: its error is the response's error.
            if error == ErrorCode.none and results:
                error = results[0]
            return schema.build(
                module.LeaveGroupResponse, throttle_time=NO_THROTTLE, error_code=error
            )
        return schema.build(
            module.LeaveGroupResponse,
            throttle_time=NO_THROTTLE,
            error_code=error,
            members=tuple(
                module.MemberResponse(
                    member_id=member_id, group_instance_id=instance_id, error_code=code
                )
                for (member_id, instance_id), code in zip(members, results, strict=False)
            ),
        )

    # OffsetCommit, OffsetFetch, OffsetDelete ---------------------------------------------------

    def partition_exists(topic: str, partition: int) -> bool:
        info = node.image.topics.get(topic)
        return info is not None and 0 <= partition < len(info.partitions)

    def partition_results(module: Any, cls: str, results: Iterable[tuple[int, ErrorCode]]) -> Any:
        return tuple(
            getattr(module, cls)(partition_index=i32(index), error_code=code)
            for index, code in results
        )

    async def offset_commit(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        now_ms = int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)
        errors: dict[tuple[str, int], ErrorCode] = {}
        offsets = []
        for topic in request.topics:
            for p in topic.partitions:
                key = (topic.name, int(p.partition_index))
                if not partition_exists(*key):
                    errors[key] = ErrorCode.unknown_topic_or_partition
                    continue
                offsets.append(
                    OffsetRecord(
                        topic=topic.name,
                        partition=key[1],
                        offset=int(p.committed_offset),
                        leader_epoch=int(getattr(p, "committed_leader_epoch", -1)),
                        metadata=p.committed_metadata or "",
                        commit_timestamp_ms=now_ms,
                    )
                )
        if offsets:
            group_error, results = await coordinator.commit_offsets(
                CommitRequest(
                    group_id=request.group_id,
                    generation_id=int(request.generation_id_or_member_epoch),
                    member_id=request.member_id,
                    group_instance_id=getattr(request, "group_instance_id", None),
                    offsets=tuple(offsets),
                    group_id_not_found_error=ctx.api_version >= 9,
                )
            )
            for record in offsets:
                key = (record.topic, record.partition)
                errors[key] = (
                    group_error if group_error != ErrorCode.none else results.get(key, group_error)
                )
        topics = []
        for topic in request.topics:
            results_ = [
                (int(p.partition_index), errors[(topic.name, int(p.partition_index))])
                for p in topic.partitions
            ]
            topics.append(
                module.OffsetCommitResponseTopic(
                    name=topic.name,
                    partitions=partition_results(module, "OffsetCommitResponsePartition", results_),
                )
            )
        return schema.build(
            module.OffsetCommitResponse, throttle_time=NO_THROTTLE, topics=tuple(topics)
        )

    def fetch_group(
        group_id: str, topics: Sequence[Any] | None, require_stable: bool
    ) -> tuple[ErrorCode, list[tuple[str, list[tuple[int, int, int, str, ErrorCode]]]]]:
        wanted = (
            None
            if topics is None
            else [(t.name, [int(p) for p in t.partition_indexes]) for t in topics]
        )
        error, fetched = coordinator.fetch_offsets(group_id, wanted, require_stable)
        by_topic: dict[str, list[tuple[int, int, int, str, ErrorCode]]] = {}
        if error != ErrorCode.none and wanted is not None:
            for name, partitions in wanted:
                by_topic[name] = [(p, -1, -1, "", error) for p in partitions]
        for f in fetched:
            by_topic.setdefault(f.topic, []).append(
                (f.partition, f.offset, f.leader_epoch, f.metadata, f.error)
            )
        return error, list(by_topic.items())

    def offset_fetch(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        version = ctx.api_version
        require_stable = bool(getattr(request, "require_stable", False))
        if version >= 8:
            groups = []
            for g in request.groups:
                error, topics = fetch_group(g.group_id, g.topics, require_stable)
                groups.append(
                    module.OffsetFetchResponseGroup(
                        group_id=g.group_id,
                        topics=fetched_topics(
                            module,
                            "OffsetFetchResponseTopics",
                            "OffsetFetchResponsePartitions",
                            topics,
                            error,
                            per_partition_error=False,
                        ),
                        error_code=error,
                    )
                )
            return schema.build(
                module.OffsetFetchResponse, throttle_time=NO_THROTTLE, groups=tuple(groups)
            )
        error, topics = fetch_group(request.group_id, request.topics, require_stable)
        return schema.build(
            module.OffsetFetchResponse,
            throttle_time=NO_THROTTLE,
            topics=fetched_topics(
                module,
                "OffsetFetchResponseTopic",
                "OffsetFetchResponsePartition",
                topics,
                error,
                per_partition_error=version < 2,
            ),
            error_code=error,
        )

    def fetched_topics(
        module: Any,
        topic_cls: str,
        partition_cls: str,
        topics: list[tuple[str, list[tuple[int, int, int, str, ErrorCode]]]],
        error: ErrorCode,
        *,
        per_partition_error: bool,
    ) -> tuple[Any, ...]:
        # From v2 a group-level error has its own field; v1 reports it on every partition.
        if error != ErrorCode.none and not per_partition_error:
            return ()
        return tuple(
            getattr(module, topic_cls)(
                name=name,
                partitions=tuple(
                    schema.build(
                        getattr(module, partition_cls),
                        partition_index=i32(index),
                        committed_offset=i64(offset),
                        committed_leader_epoch=i32(epoch),
                        metadata=metadata,
                        error_code=code,
                    )
                    for index, offset, epoch, metadata, code in partitions
                ),
            )
            for name, partitions in topics
        )

    async def offset_delete(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        known = []
        unknown: dict[tuple[str, int], ErrorCode] = {}
        for topic in request.topics:
            indexes = [int(p.partition_index) for p in topic.partitions]
            existing = [i for i in indexes if partition_exists(topic.name, i)]
            for i in indexes:
                if i not in existing:
                    unknown[(topic.name, i)] = ErrorCode.unknown_topic_or_partition
            if existing:
                known.append((topic.name, existing))
        error, results = await coordinator.delete_offsets(request.group_id, known)
        codes = {(t, p): code for t, p, code in results}
        codes.update(unknown)
        if error != ErrorCode.none:
            return schema.build(
                module.OffsetDeleteResponse, error_code=error, throttle_time=NO_THROTTLE, topics=()
            )
        return schema.build(
            module.OffsetDeleteResponse,
            error_code=ErrorCode.none,
            throttle_time=NO_THROTTLE,
            topics=tuple(
                module.OffsetDeleteResponseTopic(
                    name=topic.name,
                    partitions=partition_results(
                        module,
                        "OffsetDeleteResponsePartition",
                        [
                            (i, codes.get((topic.name, i), ErrorCode.none))
                            for i in (int(p.partition_index) for p in topic.partitions)
                        ],
                    ),
                )
                for topic in request.topics
            ),
        )

    # DescribeGroups, ListGroups, DeleteGroups -------------------------------------------------

    def describe_groups(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        include_ops = getattr(request, "include_authorized_operations", False)
        groups = []
        for d in coordinator.describe_groups(list(request.groups)):
            groups.append(
                schema.build(
                    module.DescribedGroup,
                    error_code=d.error,
                    error_message=None,
                    group_id=d.group_id,
                    group_state=d.state,
                    protocol_type=d.protocol_type,
                    protocol_data=d.protocol,
                    members=tuple(
                        schema.build(
                            module.DescribedGroupMember,
                            member_id=m.member_id,
                            group_instance_id=m.group_instance_id,
                            client_id=m.client_id,
                            client_host=m.client_host,
                            member_metadata=m.metadata,
                            member_assignment=m.assignment,
                        )
                        for m in d.members
                    ),
                    authorized_operations=i32(
                        GROUP_OPERATIONS
                        if include_ops and d.error == ErrorCode.none
                        else NO_OPERATIONS
                    ),
                )
            )
        return schema.build(
            module.DescribeGroupsResponse, throttle_time=NO_THROTTLE, groups=tuple(groups)
        )

    def list_groups(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        error, groups = coordinator.list_groups(
            tuple(getattr(request, "states_filter", ())),
            tuple(getattr(request, "types_filter", ())),
        )
        return schema.build(
            module.ListGroupsResponse,
            throttle_time=NO_THROTTLE,
            error_code=error,
            groups=tuple(
                schema.build(
                    module.ListedGroup,
                    group_id=g.group_id,
                    protocol_type=g.protocol_type,
                    group_state=g.state,
                    group_type=g.group_type,
                )
                for g in groups
            ),
        )

    async def delete_groups(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        names = list(request.groups_names)
        results = await coordinator.delete_groups(names)
        return schema.build(
            module.DeleteGroupsResponse,
            throttle_time=NO_THROTTLE,
            results=tuple(
                module.DeletableGroupResult(group_id=name, error_code=results[name])
                for name in dict.fromkeys(names)
            ),
        )

    dispatcher.register(FIND_COORDINATOR, 0, 6, find_coordinator)
    dispatcher.register(JOIN_GROUP, 0, 9, join_group)
    dispatcher.register(SYNC_GROUP, 0, 5, sync_group)
    dispatcher.register(HEARTBEAT, 0, 4, heartbeat)
    dispatcher.register(LEAVE_GROUP, 0, 5, leave_group)
    dispatcher.register(OFFSET_COMMIT, 2, 9, offset_commit)
    dispatcher.register(OFFSET_FETCH, 1, 9, offset_fetch)
    dispatcher.register(OFFSET_DELETE, 0, 0, offset_delete)
    dispatcher.register(DESCRIBE_GROUPS, 0, 6, describe_groups)
    dispatcher.register(LIST_GROUPS, 0, 5, list_groups)
    dispatcher.register(DELETE_GROUPS, 0, 2, delete_groups)
