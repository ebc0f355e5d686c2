"""The answers Kafka gives to bad frames and bad record batches, one case at a time."""

from __future__ import annotations

import datetime
import socket
import struct

import pytest
from kio.schema.errors import ErrorCode

from brokers.log.batch import GZIP, ZSTD
from brokers.protocol import schema
from brokers.protocol.framing import encode_request
from kafkaweb.cluster import Cluster
from tests.fuzz.frames import Target, _produce, batch
from tests.protocol.raw import Closed, RawClient, build_request, decode_response

pytestmark = pytest.mark.cluster

API_VERSIONS, PRODUCE = 18, 0
_SIZE = struct.Struct(">i")


@pytest.fixture
def client(fuzz_cluster: Cluster) -> RawClient:
    return RawClient(fuzz_cluster.spec.broker_address(1), timeout_s=30)


def assert_closed_without_answer(client: RawClient) -> None:
    with pytest.raises(Closed):
        client.read_frame()


def assert_still_serving(client: RawClient) -> None:
    response = client.request(API_VERSIONS, 0, build_request(API_VERSIONS, 0))
    assert response.error_code == ErrorCode.none


@pytest.mark.parametrize("size", [104_857_601, 2**31 - 1, -1, -(2**31)])
def test_a_size_beyond_socket_request_max_bytes_closes_at_once(
    client: RawClient, size: int
) -> None:
    with client:
        client.send_bytes(_SIZE.pack(size))
        assert_closed_without_answer(client)


def test_a_frame_of_the_largest_allowed_size_is_waited_for(client: RawClient) -> None:
    with client:
        client.send_bytes(_SIZE.pack(104_857_600) + b"\x00\x12\x00\x00")
        client.sock.settimeout(1)
        with pytest.raises(TimeoutError):
            client.read_frame()
        client.sock.shutdown(socket.SHUT_WR)
        client.sock.settimeout(30)
        assert_closed_without_answer(client)


@pytest.mark.parametrize("api_key", [-1, 99, 1000, 32767])
def test_an_unknown_api_key_closes_the_connection(client: RawClient, api_key: int) -> None:
    with client:
        client.send_bytes(_SIZE.pack(10) + struct.pack(">hhih", api_key, 0, 1, -1))
        assert_closed_without_answer(client)


@pytest.mark.parametrize(("api_key", "version"), [(PRODUCE, 0), (PRODUCE, 2), (3, 14), (1, 3)])
def test_an_unsupported_version_closes_the_connection(
    client: RawClient, api_key: int, version: int
) -> None:
    with client:
        client.send_bytes(_SIZE.pack(10) + struct.pack(">hhih", api_key, version, 1, -1))
        assert_closed_without_answer(client)


def test_an_unsupported_api_versions_version_gets_a_v0_answer(client: RawClient) -> None:
    with client:
        header = struct.pack(">hhih", API_VERSIONS, 7, 99, 3) + b"new\x00"
        client.send_bytes(_SIZE.pack(len(header) + 3) + header + b"\x01\x01\x00")
        correlation_id, response = decode_response(API_VERSIONS, 0, client.read_frame())
        assert correlation_id == 99
        assert response.error_code == ErrorCode.unsupported_version
        assert [(k.api_key, k.min_version, k.max_version) for k in response.api_keys] == [
            (API_VERSIONS, 0, 4)
        ]
        # The client retries with a version the broker speaks, on the same connection.
        assert_still_serving(client)


@pytest.mark.parametrize(
    ("api_key", "version", "body"),
    [
        (3, 12, bytes.fromhex("feffffff0f")),
        (1, 15, b"\x00" * 21 + bytes.fromhex("f0ffffff0f")),
        (19, 7, bytes.fromhex("ffffffff0f")),
    ],
)
def test_a_huge_array_count_closes_the_connection_and_nothing_else(
    fuzz_cluster: Cluster, client: RawClient, api_key: int, version: int, body: bytes
) -> None:
    # Ten-odd bytes that once aborted the broker: kio reserved room for 2**32 elements.
    with client:
        header = struct.pack(">hhih", api_key, version, 1, 1) + b"c\x00"
        client.send_bytes(_SIZE.pack(len(header) + len(body)) + header + body)
        assert_closed_without_answer(client)
    with RawClient(fuzz_cluster.spec.broker_address(1)) as fresh:
        assert_still_serving(fresh)


def test_a_garbage_body_closes_the_connection(client: RawClient) -> None:
    with client:
        header = struct.pack(">hhih", 3, 12, 1, 1) + b"x\x00"
        client.send_bytes(_SIZE.pack(len(header) + 4) + header + b"\xff\xff\xff\x7f")
        assert_closed_without_answer(client)


def produce_error(client: RawClient, target: Target, records: bytes, version: int = 9) -> int:
    response = client.request(PRODUCE, version, _produce(target, version, records))
    ((partition,),) = [t.partition_responses for t in response.responses]
    return int(partition.error_code)


def spoiled(data: bytes, position: int, value: int) -> bytes:
    out = bytearray(data)
    out[position] = value
    return bytes(out)


@pytest.mark.parametrize(
    ("what", "records", "error"),
    [
        ("a good batch", batch(b"good"), ErrorCode.none),
        ("a bad CRC", spoiled(batch(b"crc"), 60, 0x55), ErrorCode.corrupt_message),
        ("a bad CRC, gzip", spoiled(batch(b"crc", GZIP), 70, 0x55), ErrorCode.corrupt_message),
        ("magic 1", spoiled(batch(b"magic"), 16, 1), ErrorCode.invalid_record),
        ("magic 0", spoiled(batch(b"magic"), 16, 0), ErrorCode.invalid_record),
        ("magic 3", spoiled(batch(b"magic"), 16, 3), ErrorCode.corrupt_message),
        ("base offset 5", spoiled(batch(b"offset"), 7, 5), ErrorCode.invalid_record),
        ("two batches", batch(b"one") + batch(b"two"), ErrorCode.invalid_record),
        ("a truncated batch", batch(b"truncated")[:-5], ErrorCode.invalid_record),
        ("no batch", b"", ErrorCode.invalid_record),
        ("a batch length of 13", spoiled(batch(b"short"), 11, 13), ErrorCode.corrupt_message),
    ],
)
def test_record_batch_errors(
    client: RawClient, target: Target, what: str, records: bytes, error: ErrorCode
) -> None:
    with client:
        assert produce_error(client, target, records) == error, what
        assert_still_serving(client)


def test_an_oversize_batch_is_message_too_large(client: RawClient, target: Target) -> None:
    with client:
        big = batch(b"big", size=target.max_message_bytes + 1)
        assert produce_error(client, target, big) == ErrorCode.message_too_large
        assert_still_serving(client)


def test_zstd_needs_produce_v7(client: RawClient, target: Target) -> None:
    with client:
        compressed = batch(b"zstd" * 50, ZSTD)
        assert (
            produce_error(client, target, compressed, 6) == ErrorCode.unsupported_compression_type
        )
        assert produce_error(client, target, compressed, 7) == ErrorCode.none


def test_acks_must_be_minus_one_zero_or_one(client: RawClient, target: Target) -> None:
    with client:
        request = _produce(target, 9, batch(b"acks"), acks=2)
        response = client.request(PRODUCE, 9, request)
        ((partition,),) = [t.partition_responses for t in response.responses]
        assert partition.error_code == ErrorCode.invalid_required_acks


def test_a_failed_acks_zero_produce_closes_the_connection(
    client: RawClient, target: Target
) -> None:
    # With acks=0 there is no answer to carry the error: Kafka closes the connection so the
    # client notices and refreshes its metadata.
    with client:
        good = _produce(target, 9, batch(b"fine"), acks=0)
        client.send_bytes(encode_request(PRODUCE, 9, 1, "raw", good))
        bad = _produce(target, 9, spoiled(batch(b"crc"), 60, 0x55), acks=0)
        client.send_bytes(encode_request(PRODUCE, 9, 2, "raw", bad))
        assert_closed_without_answer(client)


def test_requests_ahead_of_a_bad_frame_are_answered_before_the_close(
    client: RawClient, target: Target
) -> None:
    """Kafka serves a connection's requests in order, so a bad frame never costs earlier answers."""
    with client:
        # A long-polling Fetch (answered after max.wait) and then garbage, in one write.
        m = schema.request_module(1, 12)
        fetch = build_request(
            1,
            12,
            cluster_id=None,
            replica_id=-1,
            max_wait=datetime.timedelta(milliseconds=300),
            min_bytes=1 << 30,
            max_bytes=1 << 20,
            isolation_level=0,
            session_id=0,
            session_epoch=-1,
            topics=(
                m.FetchTopic(
                    topic=target.topic,
                    partitions=(
                        m.FetchPartition(
                            partition=0,
                            current_leader_epoch=-1,
                            fetch_offset=0,
                            last_fetched_epoch=-1,
                            log_start_offset=-1,
                            partition_max_bytes=1 << 20,
                        ),
                    ),
                ),
            ),
            forgotten_topics_data=(),
            rack_id="",
        )
        garbage = _SIZE.pack(10) + struct.pack(">hhih", 999, 0, 2, -1)
        client.send_bytes(encode_request(1, 12, 1, "raw", fetch) + garbage)
        correlation_id, response = decode_response(1, 12, client.read_frame())
        assert correlation_id == 1
        assert response.responses[0].partitions[0].error_code == ErrorCode.none
        assert_closed_without_answer(client)
