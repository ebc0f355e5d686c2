"""ApiVersions: which APIs, at which versions, this broker speaks (KIP-511 fallback included)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from kio.schema.api_versions.v0.response import ApiVersion as ApiVersionV0
from kio.schema.api_versions.v0.response import ApiVersionsResponse as ApiVersionsResponseV0
from kio.schema.errors import ErrorCode
from kio.static.primitive import i16

from brokers.protocol import schema
from brokers.protocol.dispatch import Dispatcher, RequestContext
from brokers.protocol.handlers.common import NO_THROTTLE, response_schema

if TYPE_CHECKING:
    from brokers.node import BrokerNode

API_KEY = 18
MIN_VERSION, MAX_VERSION = 0, 4
_SOFTWARE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


def unsupported_version_body(min_version: int, max_version: int) -> bytes:
    return schema.encode(
        ApiVersionsResponseV0(
            error_code=ErrorCode.unsupported_version,
            api_keys=(
                ApiVersionV0(
                    api_key=i16(API_KEY), min_version=i16(min_version), max_version=i16(max_version)
                ),
            ),
        )
    )


def register(dispatcher: Dispatcher, node: BrokerNode) -> None:
    cache: dict[int, Any] = {}

    def handle(ctx: RequestContext, request: Any) -> Any:
        if ctx.api_version >= 3 and not (
            _SOFTWARE.fullmatch(request.client_software_name or "")
            and _SOFTWARE.fullmatch(request.client_software_version or "")
        ):
            module = response_schema(ctx)
            return schema.build(
                module.ApiVersionsResponse,
                error_code=ErrorCode.invalid_request,
                api_keys=(),
                throttle_time=NO_THROTTLE,
            )
        body = cache.get(ctx.api_version)
        if body is None:
            module = response_schema(ctx)
            keys = tuple(
                module.ApiVersion(
                    api_key=i16(api.key),
                    min_version=i16(
                        api.min_version
                        if api.advertised_min_version is None
                        else api.advertised_min_version
                    ),
                    max_version=i16(api.max_version),
                )
                for api in sorted(dispatcher.apis.values(), key=lambda a: a.key)
            )
            body = schema.encode(
                schema.build(
                    module.ApiVersionsResponse,
                    error_code=ErrorCode.none,
                    api_keys=keys,
                    throttle_time=NO_THROTTLE,
                )
            )
            cache[ctx.api_version] = body
        return body

    dispatcher.register(API_KEY, MIN_VERSION, MAX_VERSION, handle)
