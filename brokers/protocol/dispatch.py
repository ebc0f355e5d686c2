"""Request dispatch: header parsing, version checks, the API table, response framing."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2

from brokers.protocol import lengths, schema
from brokers.protocol.framing import (
    API_VERSIONS_KEY,
    HEADER_PREFIX,
    MalformedHeader,
    Part,
    Response,
    frame,
    frame_parts,
    read_request_header,
)

if TYPE_CHECKING:
    from brokers.protocol.server import Connection

log = logging.getLogger(__name__)

HandlerResult = Any  # a kio response entity, a Response, or None (no response is sent)
Handler = Callable[["RequestContext", Any], "HandlerResult | Awaitable[HandlerResult]"]
Outcome = bytes | list[Part] | None


class InvalidRequest(Exception):
    """The frame cannot be served; Kafka closes such a connection, and so do we."""


@dataclass(frozen=True, slots=True)
class Api:
    key: int
    min_version: int
    max_version: int
    handler: Handler
    # Responses whose first field is a top-level error code can answer a bad version.
    name: str = ""
    # What ApiVersions shows as the minimum, when it must differ from what is served.
    advertised_min_version: int | None = None


@dataclass(slots=True)
class RequestContext:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    connection: Connection
    # The request body's position in the frame, for handlers that read raw bytes.
    frame: bytes
    body_offset: int

    @property
    def client_host(self) -> str:
        return self.connection.peer_host


class Dispatcher:
    def __init__(self) -> None:
        self.apis: dict[int, Api] = {}

    def register(
        self,
        key: int,
        min_version: int,
        max_version: int,
        handler: Handler,
        *,
        advertised_min_version: int | None = None,
    ) -> None:
        for version in range(min_version, max_version + 1):
            schema.request_class(key, version)  # advertise only what the codec has
        self.apis[key] = Api(
            key, min_version, max_version, handler, schema.api_name(key), advertised_min_version
        )

    def dispatch(self, connection: Connection, data: bytes) -> Outcome | Awaitable[Outcome]:
        if len(data) < HEADER_PREFIX.size:
            raise InvalidRequest(f"frame of {len(data)} bytes is shorter than a request header")
        api_key, version, correlation_id = HEADER_PREFIX.unpack_from(data, 0)
        api = self.apis.get(api_key)
        if api is None:
            raise InvalidRequest(f"unknown API key {api_key}")
        if not api.min_version <= version <= api.max_version:
            if api_key == API_VERSIONS_KEY:
                # Like Kafka, the header must still parse: header v2 from v3 on, v1 before.
                try:
                    read_request_header(data, flexible=version >= 3)
                except MalformedHeader as exc:
                    raise InvalidRequest(f"cannot decode an ApiVersions header: {exc}") from exc
                return self._unsupported_api_versions(api, correlation_id)
            raise InvalidRequest(f"unsupported version {version} of {api.name}")

        cls = schema.request_class(api_key, version)
        try:
            client_id, header_size = read_request_header(
                data, flexible=cls.__header_schema__ is RequestHeaderV2
            )
            # Before kio reads it: a count it cannot allocate room for would abort the process.
            try:
                lengths.check(cls, data, header_size)
            except lengths.UnknownTaggedField:
                data = lengths.without_unknown_tags(cls, data, header_size)
            # Like Kafka, bytes after the body are ignored.
            request, _ = schema.request_reader(api_key, version)(data, header_size)
        except Exception as exc:
            raise InvalidRequest(f"cannot decode {api.name} v{version}: {exc}") from exc

        ctx = RequestContext(
            api_key=api_key,
            api_version=version,
            correlation_id=correlation_id,
            client_id=client_id,
            connection=connection,
            frame=data,
            body_offset=header_size,
        )
        result = api.handler(ctx, request)
        if inspect.isawaitable(result):
            return self._finish(ctx, result)
        return self._encode(ctx, result)

    async def _finish(self, ctx: RequestContext, pending: Awaitable[HandlerResult]) -> Outcome:
        return self._encode(ctx, await pending)

    def _encode(self, ctx: RequestContext, result: HandlerResult) -> Outcome:
        if result is None:
            return None
        flexible = (
            ctx.api_key != API_VERSIONS_KEY
            and schema.response_class(ctx.api_key, ctx.api_version).__flexible__
        )
        if isinstance(result, Response):
            return frame_parts(ctx.correlation_id, flexible, result)
        if isinstance(result, bytes):
            return frame(ctx.correlation_id, flexible, result)
        return frame(ctx.correlation_id, flexible, schema.encode(result))

    def _unsupported_api_versions(self, api: Api, correlation_id: int) -> bytes:
        # KIP-511: answer in v0 with UNSUPPORTED_VERSION and ApiVersions' own range, so the
        # client can retry with a version we speak.
        from brokers.protocol.handlers.api_versions import unsupported_version_body

        return frame(
            correlation_id, False, unsupported_version_body(api.min_version, api.max_version)
        )
