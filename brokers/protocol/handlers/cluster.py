"""DescribeCluster and ElectLeaders: the cluster as a whole."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i32

from brokers.control import ControllerUnavailable
from brokers.protocol import schema
from brokers.protocol.dispatch import Dispatcher, RequestContext
from brokers.protocol.handlers.common import NO_THROTTLE, response_schema, timeout_seconds
from brokers.protocol.handlers.metadata import (
    CLUSTER_OPERATIONS,
    NO_OPERATIONS,
    controller_for_clients,
)

if TYPE_CHECKING:
    from brokers.node import BrokerNode

DESCRIBE_CLUSTER, ELECT_LEADERS = 60, 43
ALTER_PARTITION_REASSIGNMENTS, LIST_PARTITION_REASSIGNMENTS = 45, 46
BROKER_ENDPOINTS = 1


def register(dispatcher: Dispatcher, node: BrokerNode) -> None:
    def describe_cluster(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        image = node.image
        endpoint_type = getattr(request, "endpoint_type", BROKER_ENDPOINTS)
        if endpoint_type != BROKER_ENDPOINTS:
            return schema.build(
                module.DescribeClusterResponse,
                throttle_time=NO_THROTTLE,
                error_code=ErrorCode.unsupported_endpoint_type,
                error_message="Brokers answer only for broker endpoints",
                endpoint_type=endpoint_type,
                cluster_id=image.cluster_id,
                controller_id=i32(-1),
                brokers=(),
                cluster_authorized_operations=i32(NO_OPERATIONS),
            )
        brokers = tuple(
            schema.build(
                module.DescribeClusterBroker,
                broker_id=i32(b.id),
                host=b.host,
                port=i32(b.port),
                rack=b.rack,
            )
            for b in sorted(image.brokers.values(), key=lambda b: b.id)
            if b.alive
        )
        return schema.build(
            module.DescribeClusterResponse,
            throttle_time=NO_THROTTLE,
            error_code=ErrorCode.none,
            error_message=None,
            endpoint_type=endpoint_type,
            cluster_id=image.cluster_id,
            controller_id=i32(controller_for_clients(image)),
            brokers=brokers,
            cluster_authorized_operations=i32(
                CLUSTER_OPERATIONS
                if request.include_cluster_authorized_operations
                else NO_OPERATIONS
            ),
        )

    async def elect_leaders(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        partitions = None
        if request.topic_partitions is not None:
            partitions = [
                [tp.topic, int(p)] for tp in request.topic_partitions for p in tp.partitions
            ]
        election_type = getattr(request, "election_type", 0)
        try:
            reply = await node.controller_call(
                "elect_leaders",
                {
                    "partitions": partitions,
                    "election_type": election_type,
                    "actor": ctx.client_id or "",
                },
                timeout_seconds(request.timeout),
            )
        except ControllerUnavailable:
            return schema.build(
                module.ElectLeadersResponse,
                throttle_time=NO_THROTTLE,
                error_code=ErrorCode.request_timed_out,
                replica_election_results=(),
            )
        if reply.get("version") is not None:
            await node.wait_for_metadata(reply["version"])
        by_topic: dict[str, list[Any]] = {}
        for topic, index, error in reply.get("partitions", []):
            by_topic.setdefault(topic, []).append(
                module.PartitionResult(
                    partition_id=i32(index), error_code=ErrorCode(error), error_message=None
                )
            )
        return schema.build(
            module.ElectLeadersResponse,
            throttle_time=NO_THROTTLE,
            error_code=ErrorCode(reply.get("error_code", 0)),
            replica_election_results=tuple(
                module.ReplicaElectionResult(topic=t, partition_result=tuple(rs))
                for t, rs in sorted(by_topic.items())
            ),
        )

    async def alter_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        moves = [
            [topic.name, p.partition_index, None if p.replicas is None else list(p.replicas)]
            for topic in request.topics
            for p in topic.partitions
        ]
        allow = getattr(request, "allow_replication_factor_change", True)
        try:
            reply = await node.controller_call(
                "reassign_partitions",
                {
                    "partitions": moves,
                    "allow_replication_factor_change": allow,
                    "actor": ctx.client_id or "",
                },
                timeout_seconds(request.timeout),
            )
        except ControllerUnavailable as exc:
            return schema.build(
                module.AlterPartitionReassignmentsResponse,
                throttle_time=NO_THROTTLE,
                allow_replication_factor_change=allow,
                error_code=ErrorCode.request_timed_out,
                error_message=str(exc),
                responses=(),
            )
        if reply.get("version") is not None:
            await node.wait_for_metadata(reply["version"])
        if reply.get("error_code"):
            return schema.build(
                module.AlterPartitionReassignmentsResponse,
                throttle_time=NO_THROTTLE,
                allow_replication_factor_change=allow,
                error_code=ErrorCode(reply["error_code"]),
                error_message=reply.get("error_message"),
                responses=(),
            )
        by_topic: dict[str, list[Any]] = {}
        for r in reply.get("partitions", []):
            by_topic.setdefault(r["topic"], []).append(
                module.ReassignablePartitionResponse(
                    partition_index=i32(r["partition"]),
                    error_code=ErrorCode(r["error_code"]),
                    error_message=r.get("error_message"),
                )
            )
        return schema.build(
            module.AlterPartitionReassignmentsResponse,
            throttle_time=NO_THROTTLE,
            allow_replication_factor_change=allow,
            error_code=ErrorCode.none,
            error_message=None,
            responses=tuple(
                module.ReassignableTopicResponse(name=t, partitions=tuple(ps))
                for t, ps in by_topic.items()
            ),
        )

    async def list_partition_reassignments(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        partitions = None
        if request.topics is not None:
            partitions = [[t.name, int(p)] for t in request.topics for p in t.partition_indexes]
        try:
            reply = await node.controller_call(
                "list_reassignments", {"partitions": partitions}, timeout_seconds(request.timeout)
            )
        except ControllerUnavailable as exc:
            return schema.build(
                module.ListPartitionReassignmentsResponse,
                throttle_time=NO_THROTTLE,
                error_code=ErrorCode.request_timed_out,
                error_message=str(exc),
                topics=(),
            )
        by_topic: dict[str, list[Any]] = {}
        for r in reply.get("reassignments", []):
            by_topic.setdefault(r["topic"], []).append(
                module.OngoingPartitionReassignment(
                    partition_index=i32(r["partition"]),
                    replicas=tuple(i32(b) for b in r["replicas"]),
                    adding_replicas=tuple(i32(b) for b in r["adding"]),
                    removing_replicas=tuple(i32(b) for b in r["removing"]),
                )
            )
        return schema.build(
            module.ListPartitionReassignmentsResponse,
            throttle_time=NO_THROTTLE,
            error_code=ErrorCode.none,
            error_message=None,
            topics=tuple(
                module.OngoingTopicReassignment(name=t, partitions=tuple(ps))
                for t, ps in by_topic.items()
            ),
        )

    dispatcher.register(DESCRIBE_CLUSTER, 0, 1, describe_cluster)
    dispatcher.register(ALTER_PARTITION_REASSIGNMENTS, 0, 1, alter_partition_reassignments)
    dispatcher.register(LIST_PARTITION_REASSIGNMENTS, 0, 0, list_partition_reassignments)
    dispatcher.register(ELECT_LEADERS, 0, 2, elect_leaders)
