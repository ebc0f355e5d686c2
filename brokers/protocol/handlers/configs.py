"""DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics and brokers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i8

from brokers.config import BROKER_DEFAULTS, broker_log_defaults
from brokers.control import ControllerUnavailable
from brokers.log.config import TOPIC_CONFIGS, ConfigType, LogConfig
from brokers.protocol import schema
from brokers.protocol.dispatch import Dispatcher, RequestContext
from brokers.protocol.handlers.common import NO_THROTTLE, response_schema

if TYPE_CHECKING:
    from brokers.node import BrokerNode

DESCRIBE_CONFIGS, ALTER_CONFIGS, INCREMENTAL_ALTER_CONFIGS = 32, 33, 44
TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
# Kafka's ConfigSource values.
TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5
_TYPE_CODES = {
    ConfigType.BOOLEAN: 1,
    ConfigType.STRING: 2,
    ConfigType.INT: 3,
    ConfigType.LONG: 5,
    ConfigType.DOUBLE: 6,
    ConfigType.LIST: 7,
    ConfigType.CLASS: 8,
    ConfigType.PASSWORD: 9,
}


@dataclass(frozen=True, slots=True)
class DescribedConfig:
    name: str
    value: str
    source: int
    read_only: bool
    type_code: int
    documentation: str
    synonyms: tuple[tuple[str, str, int], ...]


def describe_topic(
    overrides: Mapping[str, str], broker_values: Mapping[str, str]
) -> list[DescribedConfig]:
    defaults = broker_log_defaults(broker_values)
    effective = LogConfig.from_properties(dict(overrides), defaults=defaults)
    out = []
    for name, definition in TOPIC_CONFIGS.items():
        synonyms: list[tuple[str, str, int]] = []
        if name in overrides:
            synonyms.append((name, str(overrides[name]), TOPIC_CONFIG))
        broker_name = definition.server_default_property
        if broker_name and broker_name in broker_values:
            explicit = broker_values[broker_name] != BROKER_DEFAULTS.get(broker_name)
            synonyms.append(
                (
                    broker_name,
                    broker_values[broker_name],
                    STATIC_BROKER_CONFIG if explicit else DEFAULT_CONFIG,
                )
            )
        if not synonyms:
            synonyms.append((name, effective.value_of(name), DEFAULT_CONFIG))
        out.append(
            DescribedConfig(
                name=name,
                value=effective.value_of(name),
                source=synonyms[0][2],
                read_only=False,
                type_code=_TYPE_CODES.get(definition.type, 0),
                documentation=definition.documentation,
                synonyms=tuple(synonyms),
            )
        )
    return out


def describe_broker(broker_values: Mapping[str, str]) -> list[DescribedConfig]:
    return [
        DescribedConfig(
            name=name,
            value=value,
            source=DEFAULT_CONFIG if BROKER_DEFAULTS.get(name) == value else STATIC_BROKER_CONFIG,
            read_only=True,
            type_code=0,
            documentation="",
            synonyms=(
                (
                    name,
                    value,
                    DEFAULT_CONFIG if BROKER_DEFAULTS.get(name) == value else STATIC_BROKER_CONFIG,
                ),
            ),
        )
        for name, value in sorted(broker_values.items())
    ]


def register(dispatcher: Dispatcher, node: BrokerNode) -> None:
    def describe_configs(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        results = []
        for resource in request.resources:
            error, message, entries = ErrorCode.none, None, []
            if resource.resource_type == TOPIC:
                info = node.image.topics.get(resource.resource_name)
                if info is None:
                    error, message = (
                        ErrorCode.unknown_topic_or_partition,
                        f"Topic {resource.resource_name} does not exist.",
                    )
                else:
                    entries = describe_topic(info.configs, node.config.values)
            elif resource.resource_type == BROKER:
                if resource.resource_name not in ("", str(node.node_id)):
                    error, message = (
                        ErrorCode.invalid_request,
                        f"Unexpected broker id, expected {node.node_id} or empty string, but received {resource.resource_name}",
                    )
                else:
                    entries = describe_broker(node.config.values)
            elif resource.resource_type == BROKER_LOGGER:
                entries = []
            else:
                error, message = (
                    ErrorCode.invalid_request,
                    f"Unsupported resource type {resource.resource_type}",
                )
            keys = resource.configuration_keys
            if keys is not None:
                entries = [e for e in entries if e.name in keys]
            configs = tuple(
                schema.build(
                    module.DescribeConfigsResourceResult,
                    name=e.name,
                    value=e.value,
                    read_only=e.read_only,
                    is_default=e.source == DEFAULT_CONFIG,
                    config_source=i8(e.source),
                    is_sensitive=False,
                    synonyms=tuple(
                        module.DescribeConfigsSynonym(name=n, value=v, source=i8(s))
                        for n, v, s in e.synonyms
                    )
                    if getattr(request, "include_synonyms", False)
                    else (),
                    config_type=i8(e.type_code),
                    documentation=e.documentation
                    if getattr(request, "include_documentation", False)
                    else None,
                )
                for e in entries
            )
            results.append(
                schema.build(
                    module.DescribeConfigsResult,
                    error_code=error,
                    error_message=message,
                    resource_type=i8(resource.resource_type),
                    resource_name=resource.resource_name,
                    configs=configs,
                )
            )
        return schema.build(
            module.DescribeConfigsResponse, throttle_time=NO_THROTTLE, results=tuple(results)
        )

    async def alter(ctx: RequestContext, request: Any, incremental: bool) -> Any:
        module = response_schema(ctx)
        answers: dict[tuple[int, str], tuple[ErrorCode, str | None]] = {}
        topic_resources = []
        for resource in request.resources:
            key = (resource.resource_type, resource.resource_name)
            if resource.resource_type == TOPIC:
                entry: dict[str, Any] = {"name": resource.resource_name, "incremental": incremental}
                if incremental:
                    entry["ops"] = [
                        {"name": c.name, "op": c.config_operation, "value": c.value}
                        for c in resource.configs
                    ]
                    unknown = [c.name for c in resource.configs if c.name not in TOPIC_CONFIGS]
                else:
                    entry["configs"] = {c.name: c.value for c in resource.configs}
                    unknown = [c.name for c in resource.configs if c.name not in TOPIC_CONFIGS]
                if unknown:
                    answers[key] = (
                        ErrorCode.invalid_config,
                        f"Unknown topic config name: {unknown[0]}",
                    )
                else:
                    topic_resources.append(entry)
            elif resource.resource_type in (BROKER, BROKER_LOGGER):
                answers[key] = (
                    ErrorCode.invalid_request,
                    "Broker configs are static in Kafkaweb: set KAFKAWEB_BROKER_CONFIG and restart the broker",
                )
            else:
                answers[key] = (
                    ErrorCode.invalid_request,
                    f"Unsupported resource type {resource.resource_type}",
                )
        if topic_resources:
            try:
                reply = await node.controller_call(
                    "alter_configs",
                    {
                        "resources": topic_resources,
                        "validate_only": request.validate_only,
                        "actor": ctx.client_id or "",
                    },
                    30.0,
                )
                for r in reply.get("resources", []):
                    answers[(TOPIC, r["name"])] = (
                        ErrorCode(r["error_code"]),
                        r.get("error_message"),
                    )
                if reply.get("version") is not None:
                    await node.wait_for_metadata(reply["version"])
            except ControllerUnavailable as exc:
                for r in topic_resources:
                    answers[(TOPIC, r["name"])] = (ErrorCode.request_timed_out, str(exc))
        responses = []
        for resource in request.resources:
            error, message = answers.get(
                (resource.resource_type, resource.resource_name),
                (ErrorCode.unknown_server_error, None),
            )
            responses.append(
                schema.build(
                    module.AlterConfigsResourceResponse,
                    error_code=error,
                    error_message=message,
                    resource_type=i8(resource.resource_type),
                    resource_name=resource.resource_name,
                )
            )
        response_class = (
            module.IncrementalAlterConfigsResponse if incremental else module.AlterConfigsResponse
        )
        return schema.build(response_class, throttle_time=NO_THROTTLE, responses=tuple(responses))

    def alter_configs(ctx: RequestContext, request: Any) -> Any:
        return alter(ctx, request, incremental=False)

    def incremental_alter_configs(ctx: RequestContext, request: Any) -> Any:
        return alter(ctx, request, incremental=True)

    dispatcher.register(DESCRIBE_CONFIGS, 1, 4, describe_configs)
    dispatcher.register(ALTER_CONFIGS, 0, 2, alter_configs)
    dispatcher.register(INCREMENTAL_ALTER_CONFIGS, 0, 1, incremental_alter_configs)
