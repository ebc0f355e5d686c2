"""CreateTopics, DeleteTopics and CreatePartitions, forwarded to the active controller."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i8, i16, i32

from brokers.control import ControllerUnavailable
from brokers.protocol import schema
from brokers.protocol.dispatch import Dispatcher, RequestContext
from brokers.protocol.handlers.common import NO_THROTTLE, response_schema, timeout_seconds
from brokers.protocol.handlers.configs import describe_topic

if TYPE_CHECKING:
    from brokers.node import BrokerNode

CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 19, 20, 37


def register(dispatcher: Dispatcher, node: BrokerNode) -> None:
    async def create_topics(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        counts = Counter(t.name for t in request.topics)
        specs, early = [], {}
        for topic in request.topics:
            if counts[topic.name] > 1:
                early[topic.name] = (
                    ErrorCode.invalid_request,
                    "Create topics request from client contains multiple topics with the same name",
                )
                continue
            null_configs = [c.name for c in topic.configs if c.value is None]
            if null_configs:
                early[topic.name] = (
                    ErrorCode.invalid_config,
                    f"Null value not supported for topic configs: {', '.join(null_configs)}",
                )
                continue
            specs.append(
                {
                    "name": topic.name,
                    "num_partitions": topic.num_partitions,
                    "replication_factor": topic.replication_factor,
                    "assignments": {
                        a.partition_index: list(a.broker_ids) for a in topic.assignments
                    },
                    "configs": {c.name: c.value for c in topic.configs},
                }
            )
        answers: dict[str, dict[str, Any]] = {}
        if specs:
            try:
                reply = await node.controller_call(
                    "create_topics",
                    {
                        "topics": specs,
                        "validate_only": request.validate_only,
                        "actor": ctx.client_id or "",
                    },
                    timeout_seconds(request.timeout),
                )
            except ControllerUnavailable as exc:
                reply = {
                    "topics": [
                        {
                            "name": s["name"],
                            "error_code": int(ErrorCode.request_timed_out),
                            "error_message": str(exc),
                        }
                        for s in specs
                    ]
                }
            answers = {t["name"]: t for t in reply.get("topics", [])}
            if reply.get("version") is not None:
                await node.wait_for_metadata(reply["version"])
        results = []
        for topic in request.topics:
            if topic.name in early:
                error, message = early[topic.name]
                answer: dict[str, Any] = {"error_code": int(error), "error_message": message}
            else:
                answer = answers.get(topic.name) or {
                    "error_code": int(ErrorCode.unknown_server_error),
                    "error_message": "no answer",
                }
            ok = answer["error_code"] == 0
            configs = None
            if ok and "configs" in answer and hasattr(module, "CreatableTopicConfigs"):
                configs = tuple(
                    module.CreatableTopicConfigs(
                        name=entry.name,
                        value=entry.value,
                        read_only=entry.read_only,
                        config_source=i8(entry.source),
                        is_sensitive=False,
                    )
                    for entry in describe_topic(answer["configs"], node.config.values)
                )
            results.append(
                schema.build(
                    module.CreatableTopicResult,
                    name=topic.name,
                    topic_id=uuid.UUID(answer["topic_id"])
                    if ok and answer.get("topic_id")
                    else uuid.UUID(int=0),
                    error_code=ErrorCode(answer["error_code"]),
                    error_message=answer.get("error_message"),
                    num_partitions=i32(answer.get("num_partitions", -1) if ok else -1),
                    replication_factor=i16(answer.get("replication_factor", -1) if ok else -1),
                    configs=configs,
                )
            )
        return schema.build(
            module.CreateTopicsResponse, throttle_time=NO_THROTTLE, topics=tuple(results)
        )

    async def delete_topics(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        items, answers = _deletion_targets(ctx.api_version, request)
        if items:
            try:
                reply = await node.controller_call(
                    "delete_topics",
                    {"topics": items, "actor": ctx.client_id or ""},
                    timeout_seconds(request.timeout),
                )
                answers = reply.get("topics", []) + answers
                if reply.get("version") is not None:
                    await node.wait_for_metadata(reply["version"])
            except ControllerUnavailable as exc:
                answers = [
                    {
                        **i,
                        "error_code": int(ErrorCode.request_timed_out),
                        "error_message": str(exc),
                    }
                    for i in items
                ] + answers
        results = tuple(
            schema.build(
                module.DeletableTopicResult,
                name=a.get("name"),
                topic_id=uuid.UUID(a["topic_id"]) if a.get("topic_id") else uuid.UUID(int=0),
                error_code=ErrorCode(a["error_code"]),
                error_message=a.get("error_message"),
            )
            for a in answers
        )
        return schema.build(
            module.DeleteTopicsResponse, throttle_time=NO_THROTTLE, responses=results
        )

    async def create_partitions(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        specs = [
            {
                "name": t.name,
                "count": t.count,
                "assignments": [list(a.broker_ids) for a in t.assignments]
                if t.assignments
                else None,
            }
            for t in request.topics
        ]
        try:
            reply = await node.controller_call(
                "create_partitions",
                {
                    "topics": specs,
                    "validate_only": request.validate_only,
                    "actor": ctx.client_id or "",
                },
                timeout_seconds(request.timeout),
            )
            answers = reply.get("topics", [])
            if reply.get("version") is not None:
                await node.wait_for_metadata(reply["version"])
        except ControllerUnavailable as exc:
            answers = [
                {
                    "name": s["name"],
                    "error_code": int(ErrorCode.request_timed_out),
                    "error_message": str(exc),
                }
                for s in specs
            ]
        results = tuple(
            schema.build(
                module.CreatePartitionsTopicResult,
                name=a["name"],
                error_code=ErrorCode(a["error_code"]),
                error_message=a.get("error_message"),
            )
            for a in answers
        )
        return schema.build(
            module.CreatePartitionsResponse, throttle_time=NO_THROTTLE, results=results
        )

    dispatcher.register(CREATE_TOPICS, 2, 7, create_topics)
    dispatcher.register(DELETE_TOPICS, 1, 6, delete_topics)
    dispatcher.register(CREATE_PARTITIONS, 0, 3, create_partitions)


def _deletion_targets(
    version: int, request: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The topics to delete, and the answers for entries Kafka refuses without deleting anything.

    As Kafka: a name or id given twice is deleted neither time and answered once with
    INVALID_REQUEST; so is an entry with both a name and an id, or with neither.
    """
    refused: list[dict[str, Any]] = []
    names: dict[str, int] = {}
    ids: dict[uuid.UUID, int] = {}
    if version >= 6:
        for topic in request.topics:
            has_id = topic.topic_id is not None and topic.topic_id.int != 0
            if topic.name is None and not has_id:
                refused.append(_refusal(None, None, "Neither topic name nor id were specified."))
            elif topic.name is None:
                ids[topic.topic_id] = ids.get(topic.topic_id, 0) + 1
            elif has_id:
                refused.append(
                    _refusal(
                        topic.name,
                        topic.topic_id,
                        "You may not specify both topic name and topic id.",
                    )
                )
            else:
                names[topic.name] = names.get(topic.name, 0) + 1
    else:
        for name in request.topic_names:
            names[name] = names.get(name, 0) + 1
    refused += [_refusal(n, None, "Duplicate topic name.") for n, c in names.items() if c > 1]
    refused += [_refusal(None, i, "Duplicate topic id.") for i, c in ids.items() if c > 1]
    items = [{"name": n, "topic_id": None} for n, c in names.items() if c == 1]
    items += [{"name": None, "topic_id": str(i)} for i, c in ids.items() if c == 1]
    return items, refused


def _refusal(name: str | None, topic_id: uuid.UUID | None, message: str) -> dict[str, Any]:
    return {
        "name": name,
        "topic_id": str(topic_id) if topic_id is not None else None,
        "error_code": int(ErrorCode.invalid_request),
        "error_message": message,
    }
