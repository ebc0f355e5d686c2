"""Request dispatch without a network: header versions, response framing, ApiVersions (KIP-511)."""

from __future__ import annotations

import asyncio
import struct
from typing import Any
from unittest.mock import MagicMock

import pytest
from kio.index import UnknownEntity
from kio.schema.errors import ErrorCode

from brokers.protocol import schema
from brokers.protocol.dispatch import Dispatcher, InvalidRequest, RequestContext
from brokers.protocol.framing import encode_request
from brokers.protocol.handlers import register_all
from brokers.protocol.handlers.common import NO_THROTTLE
from tests.protocol.raw import build_request, decode_response

API_VERSIONS, METADATA, PRODUCE, FETCH = 18, 3, 0, 1
_SIZE = struct.Struct(">i")


@pytest.fixture
def dispatcher() -> Dispatcher:
    """The broker's whole API table; handlers that would need a node are never called here."""
    table = Dispatcher()
    register_all(table, MagicMock())
    return table


def dispatch(table: Dispatcher, data: bytes) -> bytes:
    outcome = table.dispatch(MagicMock(), data)
    if asyncio.iscoroutine(outcome):
        outcome = asyncio.run(outcome)
    assert isinstance(outcome, bytes)
    (size,) = _SIZE.unpack_from(outcome)
    assert size == len(outcome) - 4
    return outcome[4:]


def request(api_key: int, version: int, correlation_id: int = 7, **values: Any) -> bytes:
    """A request frame without its size prefix."""
    body = build_request(api_key, version, **values)
    return encode_request(api_key, version, correlation_id, "dispatch-test", body)[4:]


METADATA_FIELDS: dict[str, Any] = {
    "topics": (),
    "allow_auto_topic_creation": False,
    "include_cluster_authorized_operations": False,
    "include_topic_authorized_operations": False,
}


def api_versions_request(version: int, name: str = "kafkaweb-tests", sw: str = "1.0") -> bytes:
    return request(API_VERSIONS, version, client_software_name=name, client_software_version=sw)


@pytest.mark.parametrize("version", range(5))
def test_api_versions_lists_every_api(dispatcher: Dispatcher, version: int) -> None:
    frame = dispatch(dispatcher, api_versions_request(version))
    # ApiVersions answers with response header v0 at every version: the correlation id only.
    correlation_id, response = decode_response(API_VERSIONS, version, frame)
    assert correlation_id == 7
    assert response.error_code == ErrorCode.none
    advertised = {
        int(k.api_key): (int(k.min_version), int(k.max_version)) for k in response.api_keys
    }
    assert advertised[API_VERSIONS] == (0, 4)
    assert set(advertised) == set(dispatcher.apis)
    for key, api in dispatcher.apis.items():
        low = api.min_version if api.advertised_min_version is None else api.advertised_min_version
        assert advertised[key] == (low, api.max_version)


def test_produce_is_advertised_from_v0_but_served_from_v3(dispatcher: Dispatcher) -> None:
    _, response = decode_response(API_VERSIONS, 3, dispatch(dispatcher, api_versions_request(3)))
    produce = next(k for k in response.api_keys if k.api_key == PRODUCE)
    assert (produce.min_version, produce.max_version) == (0, 10)
    header = struct.pack(">hhih", PRODUCE, 2, 1, -1)
    with pytest.raises(InvalidRequest, match="unsupported version 2"):
        dispatcher.dispatch(MagicMock(), header + b"\x00" * 20)


@pytest.mark.parametrize(
    ("name", "sw"),
    [
        ("", "1.0"),
        ("-leading-dash", "1.0"),
        ("trailing.", "1.0"),
        ("has space", "1.0"),
        ("librdkafka", ""),
        ("librdkafka", "2.16.1+build"),
    ],
)
def test_api_versions_refuses_bad_client_software(
    dispatcher: Dispatcher, name: str, sw: str
) -> None:
    for version in (3, 4):
        frame = dispatch(dispatcher, api_versions_request(version, name, sw))
        _, response = decode_response(API_VERSIONS, version, frame)
        assert response.error_code == ErrorCode.invalid_request
        assert response.api_keys == ()


@pytest.mark.parametrize(
    ("name", "sw"),
    [("librdkafka", "2.16.1"), ("confluent-kafka-python", "2.16.1-rdkafka-2.16.1"), ("a", "1")],
)
def test_api_versions_accepts_client_software_names(
    dispatcher: Dispatcher, name: str, sw: str
) -> None:
    _, response = decode_response(
        API_VERSIONS, 3, dispatch(dispatcher, api_versions_request(3, name, sw))
    )
    assert response.error_code == ErrorCode.none


@pytest.mark.parametrize("version", [5, 9, 127, -1])
def test_unsupported_api_versions_gets_a_v0_answer(dispatcher: Dispatcher, version: int) -> None:
    # KIP-511: a client newer than the broker sends its newest ApiVersions, header v2.
    header = struct.pack(">hhih", API_VERSIONS, version, -123, 6) + b"client" + b"\x00"
    body = b"\x05newer\x041.0\x00" + b"fields this broker has never heard of"
    frame = dispatch(dispatcher, header + body)
    correlation_id, response = decode_response(API_VERSIONS, 0, frame)
    assert correlation_id == -123
    assert response.error_code == ErrorCode.unsupported_version
    assert [(k.api_key, k.min_version, k.max_version) for k in response.api_keys] == [
        (API_VERSIONS, 0, 4)
    ]
    assert len(frame) == 4 + 2 + 4 + 6  # correlation id, error, one array entry, no throttle


def test_unsupported_api_versions_still_needs_a_header(dispatcher: Dispatcher) -> None:
    with pytest.raises(InvalidRequest):
        dispatcher.dispatch(MagicMock(), struct.pack(">hhi", API_VERSIONS, 9, 1))


@pytest.mark.parametrize("api_key", [-1, 9999, 32767, 67])
def test_unknown_api_key_closes_the_connection(dispatcher: Dispatcher, api_key: int) -> None:
    assert api_key not in dispatcher.apis
    with pytest.raises(InvalidRequest, match="unknown API key"):
        dispatcher.dispatch(MagicMock(), struct.pack(">hhih", api_key, 0, 1, -1))


@pytest.mark.parametrize(("api_key", "version"), [(METADATA, 14), (METADATA, -1), (FETCH, 3)])
def test_unsupported_version_closes_the_connection(
    dispatcher: Dispatcher, api_key: int, version: int
) -> None:
    with pytest.raises(InvalidRequest, match="unsupported version"):
        dispatcher.dispatch(MagicMock(), struct.pack(">hhih", api_key, version, 1, -1))


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x03\x00\x0c\x00\x00\x00"])
def test_frame_shorter_than_a_header_closes_the_connection(
    dispatcher: Dispatcher, data: bytes
) -> None:
    with pytest.raises(InvalidRequest):
        dispatcher.dispatch(MagicMock(), data)


@pytest.mark.parametrize("version", [0, 8, 9, 12])
def test_garbage_body_closes_the_connection(dispatcher: Dispatcher, version: int) -> None:
    valid = request(METADATA, version, **METADATA_FIELDS)
    header_end = len(valid) - len(
        schema.encode(build_request(METADATA, version, **METADATA_FIELDS))
    )
    with pytest.raises(InvalidRequest, match="cannot decode"):
        dispatcher.dispatch(MagicMock(), valid[:header_end] + b"\xff\xfe\xfd")


@pytest.fixture
def echo() -> tuple[Dispatcher, list[RequestContext]]:
    """A table with one Metadata handler that answers an empty response and keeps its contexts."""
    table = Dispatcher()
    seen: list[RequestContext] = []

    def handle(ctx: RequestContext, _request: Any) -> Any:
        seen.append(ctx)
        module = schema.response_module(METADATA, ctx.api_version)
        return schema.build(
            module.MetadataResponse,
            throttle_time=NO_THROTTLE,
            brokers=(),
            cluster_id=None,
            controller_id=-1,
            topics=(),
            cluster_authorized_operations=-(2**31),
            error_code=ErrorCode.none,
        )

    table.register(METADATA, 0, 13, handle)
    return table, seen


@pytest.mark.parametrize("version", range(14))
def test_response_header_follows_the_version(
    echo: tuple[Dispatcher, list[RequestContext]], version: int
) -> None:
    table, seen = echo
    frame = dispatch(table, request(METADATA, version, correlation_id=-5, **METADATA_FIELDS))
    flexible = version >= 9
    assert frame[:4] == struct.pack(">i", -5)
    if flexible:
        assert frame[4] == 0  # the header's empty tagged fields
    correlation_id, response = decode_response(METADATA, version, frame)
    assert correlation_id == -5
    assert response.topics == ()
    assert seen[-1].api_version == version
    assert seen[-1].client_id == "dispatch-test"


def test_flexible_request_header_with_tagged_fields(
    echo: tuple[Dispatcher, list[RequestContext]],
) -> None:
    table, seen = echo
    body = schema.encode(build_request(METADATA, 12, **METADATA_FIELDS))
    # client id "c", then one unknown tagged field (tag 5, 3 bytes) a broker must skip.
    header = struct.pack(">hhih", METADATA, 12, 3, 1) + b"c" + b"\x01\x05\x03abc"
    correlation_id, _ = decode_response(METADATA, 12, dispatch(table, header + body))
    assert correlation_id == 3
    assert seen[-1].client_id == "c"


def test_null_client_id_and_trailing_bytes(echo: tuple[Dispatcher, list[RequestContext]]) -> None:
    table, seen = echo
    body = schema.encode(build_request(METADATA, 4, **METADATA_FIELDS))
    header = struct.pack(">hhih", METADATA, 4, 11, -1)
    # Like Kafka, bytes after the request body are ignored.
    frame = dispatch(table, header + body + b"trailing bytes")
    assert decode_response(METADATA, 4, frame)[0] == 11
    assert seen[-1].client_id is None


def test_async_handlers_are_framed_when_done() -> None:
    table = Dispatcher()

    async def handle(ctx: RequestContext, _request: Any) -> Any:
        await asyncio.sleep(0)
        return b"\x00\x00"  # an already encoded body: ApiVersions v0 error code, no keys yet

    table.register(API_VERSIONS, 0, 0, handle)
    outcome = table.dispatch(MagicMock(), request(API_VERSIONS, 0, correlation_id=42))
    assert asyncio.iscoroutine(outcome)
    framed = asyncio.run(outcome)
    assert framed == struct.pack(">ii", 6, 42) + b"\x00\x00"


def test_handlers_that_answer_nothing_send_nothing() -> None:
    table = Dispatcher()
    table.register(API_VERSIONS, 0, 0, lambda ctx, req: None)
    assert table.dispatch(MagicMock(), request(API_VERSIONS, 0)) is None


def test_registering_a_version_the_codec_lacks_fails() -> None:
    table = Dispatcher()
    # Kafka 4 dropped Produce v0-2, and so did kio: it cannot be served, so it is never advertised.
    with pytest.raises(UnknownEntity):
        table.register(PRODUCE, 2, 10, lambda ctx, req: None)


@pytest.mark.parametrize(
    ("api_key", "version", "body"),
    [
        # ListOffsets v1: replica id, then a null topics array.
        (2, 1, struct.pack(">ii", -1, -1)),
        # DeleteTopics v1: an array of one topic name that is null, then the timeout.
        (20, 1, struct.pack(">ihi", 1, -1, 1000)),
        # DescribeConfigs v1: one resource whose name is null.
        (32, 1, struct.pack(">ibhib", 1, 2, -1, -1, 0)),
    ],
)
def test_null_in_a_non_nullable_field_closes_the_connection(
    dispatcher: Dispatcher, api_key: int, version: int, body: bytes
) -> None:
    """Kafka refuses them ("non-nullable field was serialized as null"); kio reads null arrays as None."""
    header = struct.pack(">hhih", api_key, version, 1, 4) + b"test"
    with pytest.raises(InvalidRequest, match="null"):
        dispatcher.dispatch(MagicMock(), header + body)


def test_unknown_tagged_fields_in_a_body_are_skipped(
    echo: tuple[Dispatcher, list[RequestContext]],
) -> None:
    """A newer client may send tags this broker's codec lacks; Kafka skips them, and so do we."""
    table, seen = echo
    topic = b"\x00" * 16 + b"\x02t"  # topic id, name "t"
    # One topic with an unknown tag 7 inside, then the three booleans and an unknown tag 9.
    body = b"\x02" + topic + b"\x01\x07\x02xy" + b"\x00\x00\x00" + b"\x01\x09\x01z"
    header = struct.pack(">hhih", METADATA, 12, 8, 1) + b"c\x00"
    with pytest.raises(KeyError):  # what kio alone does with such a request
        schema.request_reader(METADATA, 12)(header + body, len(header))
    correlation_id, _ = decode_response(METADATA, 12, dispatch(table, header + body))
    assert correlation_id == 8
    assert seen[-1].api_version == 12
