"""Good frames to start from and the ways a fuzzer spoils them, each with the answer Kafka gives.

A `Frame` is bytes to write on a connection and what the broker may do about them:
`ANSWER` (a response, checked by `check`), `CLOSE` (the connection is closed, nothing more
is answered), `EITHER` (anything but a crash or a hang). A frame marked `last` ends what is
sent on the connection: it leaves the broker waiting for bytes that never come, so the client
half-closes and the broker must close.
"""

from __future__ import annotations

import datetime
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2

from brokers.log.batch import CODEC_NAMES, Record, build_batch
from brokers.protocol import lengths, schema
from brokers.protocol.framing import encode_request, read_request_header
from tests.protocol.raw import build_request, decode_response

ANSWER, CLOSE, EITHER = "answer", "close", "either"
API_VERSIONS, PRODUCE, FETCH = 18, 0, 1
_SIZE = struct.Struct(">i")
# Handlers that park a request (long polls, group rebalances) are kept out of the mutated
# corpus so that a slow answer cannot pass for a hang; their decoding is fuzzed all the same
# through garbage bodies, unknown keys and versions.
GROUP_APIS = frozenset({8, 9, 10, 11, 12, 13, 14, 15, 16, 42, 47})


@dataclass(frozen=True)
class Frame:
    data: bytes
    expect: str
    what: str
    correlation_id: int | None = None
    check: Callable[[bytes], None] | None = None
    last: bool = False
    # Wait for the broker to close without half-closing first (oversized declared sizes).
    closes_at_once: bool = False


def framed(payload: bytes) -> bytes:
    return _SIZE.pack(len(payload)) + payload


@dataclass(frozen=True)
class Target:
    """The topic the fuzzer writes to and reads from, and the broker's limits."""

    topic: str
    topic_id: uuid.UUID
    max_message_bytes: int
    max_request_bytes: int
    served: dict[int, tuple[int, int]]


def _fetch(target: Target, version: int) -> Any:
    module = schema.request_module(FETCH, version)
    partition = schema.build(
        module.FetchPartition,
        partition=0,
        current_leader_epoch=-1,
        fetch_offset=0,
        last_fetched_epoch=-1,
        log_start_offset=-1,
        partition_max_bytes=64 * 1024,
    )
    topic = schema.build(
        module.FetchTopic, topic=target.topic, topic_id=target.topic_id, partitions=(partition,)
    )
    extra: dict[str, Any] = {}
    if hasattr(module, "ReplicaState"):
        extra["replica_state"] = module.ReplicaState()
    return build_request(
        FETCH,
        version,
        cluster_id=None,
        replica_id=-1,
        max_wait=datetime.timedelta(0),
        min_bytes=0,
        max_bytes=64 * 1024,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=(topic,),
        forgotten_topics_data=(),
        rack_id="",
        **extra,
    )


def _produce(target: Target, version: int, records: bytes, acks: int = 1) -> Any:
    module = schema.request_module(PRODUCE, version)
    partition = module.PartitionProduceData(index=0, records=records)
    return build_request(
        PRODUCE,
        version,
        transactional_id=None,
        acks=acks,
        timeout=datetime.timedelta(seconds=5),
        topic_data=(module.TopicProduceData(name=target.topic, partition_data=(partition,)),),
    )


def _requests(target: Target) -> list[tuple[int, int, Any]]:
    """One good request per (api, version) the fuzzer starts from."""
    out: list[tuple[int, int, Any]] = []

    def each(key: int, make: Callable[[Any, int], Any]) -> None:
        low, high = target.served[key]
        for version in range(max(low, schema_min(key)), high + 1):
            out.append((key, version, make(schema.request_module(key, version), version)))

    each(
        API_VERSIONS,
        lambda m, v: build_request(
            API_VERSIONS, v, client_software_name="fuzz", client_software_version="1.0"
        ),
    )
    each(
        3,
        lambda m, v: build_request(
            3,
            v,
            topics=(schema.build(m.MetadataRequestTopic, name=target.topic, topic_id=None),),
            allow_auto_topic_creation=False,
            include_cluster_authorized_operations=False,
            include_topic_authorized_operations=False,
        ),
    )
    each(FETCH, lambda m, v: _fetch(target, v))
    each(
        PRODUCE,
        lambda m, v: _produce(target, v, batch(b"seed"), acks=(1, 0, -1)[v % 3]),
    )
    each(
        2,
        lambda m, v: build_request(
            2,
            v,
            replica_id=-1,
            isolation_level=0,
            timeout=datetime.timedelta(seconds=1),
            topics=(
                m.ListOffsetsTopic(
                    name=target.topic,
                    partitions=(
                        schema.build(
                            m.ListOffsetsPartition,
                            partition_index=0,
                            current_leader_epoch=-1,
                            timestamp=-1 - v % 3,
                        ),
                    ),
                ),
            ),
        ),
    )
    each(
        23,
        lambda m, v: build_request(
            23,
            v,
            replica_id=-1,
            topics=(
                m.OffsetForLeaderTopic(
                    topic=target.topic,
                    partitions=(
                        m.OffsetForLeaderPartition(
                            partition=0, current_leader_epoch=-1, leader_epoch=0
                        ),
                    ),
                ),
            ),
        ),
    )
    each(
        32,
        lambda m, v: build_request(
            32,
            v,
            resources=(
                m.DescribeConfigsResource(
                    resource_type=2, resource_name=target.topic, configuration_keys=None
                ),
            ),
            include_synonyms=True,
            include_documentation=False,
        ),
    )
    each(
        22,
        lambda m, v: build_request(
            22,
            v,
            transactional_id=None,
            transaction_timeout=datetime.timedelta(seconds=60),
            producer_id=-1,
            producer_epoch=-1,
        ),
    )
    each(
        60,
        lambda m, v: build_request(
            60, v, include_cluster_authorized_operations=False, endpoint_type=1
        ),
    )
    return out


def batch(value: bytes, codec: int = 0, size: int = 0) -> bytes:
    timestamp = int(time.time() * 1000)
    payload = value + b"x" * max(0, size - len(value))
    return build_batch([Record(0, timestamp, b"fuzz", payload, (("h", b"v"),))], compression=codec)


class Corpus:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.seeds = [
            (key, version, encode_request(key, version, 0, "fuzz", body)[4:])
            for key, version, body in _requests(target)
        ]
        # A batch bigger than the fuzz topic's max.message.bytes (but far below
        # socket.request.max.bytes).
        self.oversize = batch(b"big", size=target.max_message_bytes + 1000)

    def seed(self, draw: st.DrawFn) -> tuple[int, int, bytes]:
        return draw(st.sampled_from(self.seeds))


def with_correlation_id(payload: bytes, correlation_id: int) -> bytes:
    return payload[:4] + _SIZE.pack(correlation_id) + payload[8:]


def _answered_by(key: int, version: int) -> Callable[[bytes], None]:
    def check(response: bytes) -> None:
        decode_response(key, version, response)

    return check


# Frame strategies -------------------------------------------------------------------------


def seed_as_is(corpus: Corpus) -> st.SearchStrategy[Frame]:
    @st.composite
    def make(draw: st.DrawFn) -> Frame:
        key, version, payload = corpus.seed(draw)
        correlation_id = draw(st.integers(0, 2**31 - 1))
        produce_acks_zero = key == PRODUCE and payload and _acks_of(payload, version) == 0
        return Frame(
            framed(with_correlation_id(payload, correlation_id)),
            EITHER if produce_acks_zero else ANSWER,
            f"seed {key} v{version}",
            None if produce_acks_zero else correlation_id,
            None if produce_acks_zero else _answered_by(key, version),
        )

    return make()


def _acks_of(payload: bytes, version: int) -> int:
    _, offset = read_request_header(payload, _flexible_header(PRODUCE, version))
    request, _ = schema.request_reader(PRODUCE, version)(payload, offset)
    return int(request.acks)


_MUTATIONS = ("flip", "set", "insert", "delete", "edge_int16", "huge_varint")
HUGE_VARINTS = [bytes.fromhex(h) for h in ("feffffff0f", "ffffffff07", "8080808008", "ffffff7f")]


def mutated_seed(corpus: Corpus) -> st.SearchStrategy[Frame]:
    """A good frame with a few bytes flipped, set to edge values, inserted or deleted."""

    @st.composite
    def make(draw: st.DrawFn) -> Frame:
        key, version, payload = corpus.seed(draw)
        if key in GROUP_APIS:
            key, version, payload = corpus.seeds[0]
        data = bytearray(payload)
        for _ in range(draw(st.integers(1, 6))):
            kind = draw(st.sampled_from(_MUTATIONS))
            position = draw(st.integers(0, max(0, len(data) - 1)))
            if kind == "flip" and data:
                data[position] ^= 1 << draw(st.integers(0, 7))
            elif kind == "set" and data:
                data[position] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]))
            elif kind == "insert":
                data[position:position] = draw(st.binary(min_size=1, max_size=8))
            elif kind == "delete" and data:
                del data[position : position + draw(st.integers(1, 8))]
            elif kind == "huge_varint":
                # A compact length or count near 2**32 (kio once aborted the broker on these).
                data[position : position + 1] = draw(st.sampled_from(HUGE_VARINTS))
            elif kind == "edge_int16" and position + 2 <= len(data):
                # Where a length or an array count might be: an edge value.
                value = draw(st.sampled_from([-2, -1, 0x7FFF, -0x8000]))
                struct.pack_into(">h", data, position, value)
        if not _still_quick(bytes(data)):
            data = bytearray(payload)
        return Frame(framed(bytes(data)), EITHER, f"mutated {key} v{version}")

    return make()


def _still_quick(payload: bytes) -> bool:
    """False for a mutated Fetch that now asks the broker to wait: slow is not a hang."""
    if len(payload) < 8:
        return True
    key, version = struct.unpack_from(">hh", payload)
    if key != FETCH or not 4 <= version <= 16:
        return True
    try:
        _, offset = read_request_header(payload, _flexible_header(FETCH, version))
        request_class = schema.request_class(FETCH, version)
        if request_class.__flexible__:
            lengths.check(request_class, payload, offset)  # as the broker does, before kio
        request, _ = schema.request_reader(FETCH, version)(payload, offset)
    except Exception:
        return True
    return request.max_wait.total_seconds() <= 1


def truncated(corpus: Corpus) -> st.SearchStrategy[Frame]:
    @st.composite
    def make(draw: st.DrawFn) -> Frame:
        _, _, payload = corpus.seed(draw)
        whole = framed(payload)
        cut = draw(st.integers(1, len(whole) - 1))
        return Frame(whole[:cut], CLOSE, "truncated frame", last=True)

    return make()


def wrong_size(corpus: Corpus) -> st.SearchStrategy[Frame]:
    @st.composite
    def make(draw: st.DrawFn) -> Frame:
        _, _, payload = corpus.seed(draw)
        delta = draw(st.integers(-len(payload), 64).filter(lambda d: d != 0))
        return Frame(
            _SIZE.pack(len(payload) + delta) + payload, EITHER, f"size off by {delta}", last=True
        )

    return make()


def huge_size(corpus: Corpus) -> st.SearchStrategy[Frame]:
    limit = corpus.target.max_request_bytes

    @st.composite
    def make(draw: st.DrawFn) -> Frame:
        size = draw(
            st.one_of(
                st.integers(limit + 1, 2**31 - 1),
                st.integers(-(2**31), -1),
                st.sampled_from([limit + 1, 2**31 - 1, -1]),
            )
        )
        tail = draw(st.binary(max_size=16))
        return Frame(
            _SIZE.pack(size) + tail, CLOSE, f"declared size {size}", last=True, closes_at_once=True
        )

    return make()


def random_bytes() -> st.SearchStrategy[Frame]:
    return st.binary(min_size=1, max_size=300).map(
        lambda data: Frame(data, EITHER, "random bytes", last=True)
    )


def _header(key: int, version: int, correlation_id: int, flexible: bool) -> bytes:
    client = b"fuzz"
    header = struct.pack(">hhih", key, version, correlation_id, len(client)) + client
    return header + b"\x00" if flexible else header


def unknown_api_key(corpus: Corpus) -> st.SearchStrategy[Frame]:
    served = corpus.target.served

    @st.composite
    def make(draw: st.DrawFn) -> Frame:
        key = draw(st.integers(-(2**15), 2**15 - 1).filter(lambda k: k not in served))
        version = draw(st.integers(-(2**15), 2**15 - 1))
        body = draw(st.binary(max_size=64))
        payload = _header(key, version, draw(st.integers(0, 2**31 - 1)), draw(st.booleans()))
        return Frame(framed(payload + body), CLOSE, f"unknown API key {key}")

    return make()


def unsupported_version(corpus: Corpus) -> st.SearchStrategy[Frame]:
    served = corpus.target.served

    @st.composite
    def make(draw: st.DrawFn) -> Frame:
        key = draw(st.sampled_from(sorted(served)))
        low, high = served[key]
        version = draw(st.integers(-(2**15), low - 1) | st.integers(high + 1, 2**15 - 1))
        correlation_id = draw(st.integers(0, 2**31 - 1))
        body = draw(st.binary(max_size=64))
        payload = _header(key, version, correlation_id, version >= 3)
        if key == API_VERSIONS:
            return Frame(
                framed(payload + body),
                ANSWER,
                f"ApiVersions v{version}",
                correlation_id,
                _is_unsupported_version_answer,
            )
        return Frame(framed(payload + body), CLOSE, f"{key} v{version}")

    return make()


def _is_unsupported_version_answer(response: bytes) -> None:
    _, body = decode_response(API_VERSIONS, 0, response)
    assert body.error_code == ErrorCode.unsupported_version
    assert [(k.api_key, k.min_version, k.max_version) for k in body.api_keys] == [
        (API_VERSIONS, 0, 4)
    ]


def garbage_body(corpus: Corpus) -> st.SearchStrategy[Frame]:
    served = [
        (key, version)
        for key, (low, high) in corpus.target.served.items()
        if key not in GROUP_APIS and key != FETCH
        for version in range(max(low, schema_min(key)), high + 1)
    ]

    @st.composite
    def make(draw: st.DrawFn) -> Frame:
        key, version = draw(st.sampled_from(served))
        flexible = _flexible_header(key, version)
        body = draw(st.binary(min_size=0, max_size=128))
        payload = _header(key, version, draw(st.integers(0, 2**31 - 1)), flexible)
        return Frame(framed(payload + body), EITHER, f"garbage body for {key} v{version}")

    return make()


def _flexible_header(key: int, version: int) -> bool:
    return schema.request_class(key, version).__header_schema__ is RequestHeaderV2


def schema_min(key: int) -> int:
    """The lowest version kio knows (Produce is advertised from v0 but served from v3)."""
    return 3 if key == PRODUCE else -(2**15)


# Corrupt record batches: (what is done to the batch, the errors Kafka answers with).
CORRUPTIONS: dict[str, set[int]] = {
    "crc region byte": {ErrorCode.corrupt_message},
    "crc field": {ErrorCode.corrupt_message},
    "old magic": {ErrorCode.invalid_record},
    "unknown magic": {ErrorCode.corrupt_message},
    "base offset": {ErrorCode.invalid_record},
    "second batch": {ErrorCode.invalid_record},
    "short batch length": {ErrorCode.corrupt_message},
    "oversize": {ErrorCode.message_too_large},
}


def corrupt_batch(corpus: Corpus) -> st.SearchStrategy[Frame]:
    low, high = corpus.target.served[PRODUCE]

    @st.composite
    def make(draw: st.DrawFn) -> Frame:
        how = draw(st.sampled_from(sorted(CORRUPTIONS)))
        version = draw(st.integers(max(low, 7), high))
        codec = draw(st.integers(0, len(CODEC_NAMES) - 1))
        data = bytearray(
            corpus.oversize if how == "oversize" else batch(draw(st.binary(max_size=200)), codec)
        )
        expected = set(CORRUPTIONS[how])
        if how == "crc region byte":
            data[draw(st.integers(21, len(data) - 1))] ^= draw(st.integers(1, 255))
        elif how == "crc field":
            data[draw(st.integers(17, 20))] ^= draw(st.integers(1, 255))
        elif how == "old magic":
            data[16] = draw(st.sampled_from([0, 1]))
        elif how == "unknown magic":
            data[16] = draw(st.integers(3, 255))
        elif how == "base offset":
            struct.pack_into(">q", data, 0, draw(st.integers(1, 2**63 - 1)))
        elif how == "second batch":
            data += batch(b"second")
        elif how == "short batch length":
            struct.pack_into(">i", data, 8, draw(st.integers(-(2**31), 13)))
        correlation_id = draw(st.integers(0, 2**31 - 1))
        body = _produce(corpus.target, version, bytes(data))
        payload = encode_request(PRODUCE, version, correlation_id, "fuzz", body)

        def check(response: bytes) -> None:
            _, decoded = decode_response(PRODUCE, version, response)
            errors = {p.error_code for t in decoded.responses for p in t.partition_responses}
            assert errors <= expected, f"{how}: answered {errors}, Kafka answers {expected}"

        return Frame(payload, ANSWER, f"{how} (Produce v{version})", correlation_id, check)

    return make()
