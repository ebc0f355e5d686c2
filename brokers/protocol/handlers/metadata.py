"""Metadata: brokers, topics, partitions and leaders, from the image; auto-creates topics."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i32

from brokers.image import NO_LEADER, MetadataImage, TopicInfo
from brokers.protocol import schema
from brokers.protocol.dispatch import Dispatcher, RequestContext
from brokers.protocol.handlers.common import NO_THROTTLE, response_schema
from brokers.topic_names import invalid_reason

if TYPE_CHECKING:
    from types import ModuleType

    from brokers.node import BrokerNode

API_KEY = 3
MIN_VERSION, MAX_VERSION = 0, 13
NO_OPERATIONS = -(2**31)
# Without ACLs every operation is allowed: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
# DESCRIBE_CONFIGS, ALTER_CONFIGS for topics; CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
# DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE for the cluster.
TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))
CLUSTER_OPERATIONS = sum(1 << op for op in (5, 7, 8, 9, 10, 11, 12))


def controller_for_clients(image: MetadataImage) -> int:
    """Clients send admin requests to "the controller"; any broker forwards them, so name one."""
    alive = sorted(b.id for b in image.brokers.values() if b.alive)
    return alive[0] if alive else -1


def _partitions(module: ModuleType, image: MetadataImage, topic: TopicInfo) -> tuple[Any, ...]:
    alive = {b.id for b in image.brokers.values() if b.alive}
    out = []
    for state in topic.partitions:
        leader_alive = state.leader != NO_LEADER and state.leader in alive
        out.append(
            schema.build(
                module.MetadataResponsePartition,
                error_code=ErrorCode.none if leader_alive else ErrorCode.leader_not_available,
                partition_index=i32(state.index),
                leader_id=i32(state.leader if leader_alive else NO_LEADER),
                leader_epoch=i32(state.leader_epoch),
                replica_nodes=tuple(i32(r) for r in state.replicas),
                isr_nodes=tuple(i32(r) for r in state.isr),
                offline_replicas=tuple(i32(r) for r in state.replicas if r not in alive),
            )
        )
    return tuple(out)


def register(dispatcher: Dispatcher, node: BrokerNode) -> None:
    cache: dict[tuple[Any, ...], bytes] = {}
    cached_version = [-2]

    def handle(ctx: RequestContext, request: Any) -> Any:
        image = node.image
        if cached_version[0] != image.version:
            cache.clear()
            cached_version[0] = image.version
        version = ctx.api_version
        requested = request.topics
        if version == 0 and not requested:
            requested = None
        key = (
            version,
            None
            if requested is None
            else tuple((t.name, getattr(t, "topic_id", None)) for t in requested),
            getattr(request, "include_cluster_authorized_operations", False),
            getattr(request, "include_topic_authorized_operations", False),
            getattr(request, "allow_auto_topic_creation", True),
        )
        body = cache.get(key)
        if body is not None:
            return body
        module = response_schema(ctx)
        include_topic_ops = getattr(request, "include_topic_authorized_operations", False)
        topics = []
        cacheable = True
        to_create: list[str] = []
        if requested is None:
            wanted: list[tuple[str | None, uuid.UUID | None]] = [
                (name, None) for name in sorted(image.topics)
            ]
        else:
            wanted = [(t.name, getattr(t, "topic_id", None)) for t in requested]
        allow_create = getattr(request, "allow_auto_topic_creation", True) and node.config.flag(
            "auto.create.topics.enable"
        )
        for name, topic_id in wanted:
            info = image.topics.get(name) if name else None
            if info is None and topic_id is not None and topic_id.int != 0 and not name:
                info = image.topics_by_id.get(topic_id)
                if info is None:
                    topics.append(_topic_error(module, None, topic_id, ErrorCode.unknown_topic_id))
                    cacheable = False
                    continue
            if info is None:
                cacheable = False
                if name and invalid_reason(name):
                    topics.append(
                        _topic_error(module, name, None, ErrorCode.invalid_topic_exception)
                    )
                elif name and allow_create:
                    to_create.append(name)
                    topics.append(_topic_error(module, name, None, ErrorCode.leader_not_available))
                else:
                    topics.append(
                        _topic_error(module, name, None, ErrorCode.unknown_topic_or_partition)
                    )
                continue
            topics.append(
                schema.build(
                    module.MetadataResponseTopic,
                    error_code=ErrorCode.none,
                    name=info.name,
                    topic_id=info.topic_id,
                    is_internal=info.internal,
                    partitions=_partitions(module, image, info),
                    topic_authorized_operations=i32(
                        TOPIC_OPERATIONS if include_topic_ops else NO_OPERATIONS
                    ),
                )
            )
        if to_create:
            node.auto_create_topics(to_create)
        brokers = tuple(
            schema.build(
                module.MetadataResponseBroker,
                node_id=i32(b.id),
                host=b.host,
                port=i32(b.port),
                rack=b.rack,
            )
            for b in sorted(image.brokers.values(), key=lambda b: b.id)
            if b.alive
        )
        include_cluster_ops = getattr(request, "include_cluster_authorized_operations", False)
        response = schema.build(
            module.MetadataResponse,
            throttle_time=NO_THROTTLE,
            brokers=brokers,
            cluster_id=image.cluster_id or None,
            controller_id=i32(controller_for_clients(image)),
            topics=tuple(topics),
            cluster_authorized_operations=i32(
                CLUSTER_OPERATIONS if include_cluster_ops else NO_OPERATIONS
            ),
            error_code=ErrorCode.none,
        )
        body = schema.encode(response)
        if cacheable:
            if len(cache) >= 1024:
                cache.clear()
            cache[key] = body
        return body

    dispatcher.register(API_KEY, MIN_VERSION, MAX_VERSION, handle)


def _topic_error(
    module: ModuleType, name: str | None, topic_id: uuid.UUID | None, error: ErrorCode
) -> Any:
    return schema.build(
        module.MetadataResponseTopic,
        error_code=error,
        name=name,
        topic_id=topic_id or uuid.UUID(int=0),
        is_internal=False,
        partitions=(),
        topic_authorized_operations=i32(NO_OPERATIONS),
    )
