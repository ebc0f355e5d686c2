"""Hand-built encoders for the two hot responses, Produce and Fetch.

Everything else goes through kio. These two are built by hand because a Fetch response must
carry file regions (sent with sendfile, never copied through Python) and a Produce response is
answered thousands of times a second; tests check both byte for byte against kio's encoder.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from brokers.protocol.framing import FileRegion, Part, Response

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_PRODUCE_PARTITION = struct.Struct(">ihqq")  # index, error, base offset, log append time
_FETCH_PARTITION = struct.Struct(">ihqq")  # index, error, high watermark, last stable offset
_EPOCH_END_OFFSET = struct.Struct(">iq")
_LEADER_AND_EPOCH = struct.Struct(">ii")
NO_TAGS = b"\x00"


def uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL_UVARINTS = [uvarint(n) for n in range(128)]


def _uvarint(value: int) -> bytes:
    return _SMALL_UVARINTS[value] if value < 128 else uvarint(value)


def string(value: str, flexible: bool) -> bytes:
    data = value.encode()
    if flexible:
        return _uvarint(len(data) + 1) + data
    return _I16.pack(len(data)) + data


def nullable_string(value: str | None, flexible: bool) -> bytes:
    if value is None:
        return b"\x00" if flexible else b"\xff\xff"
    return string(value, flexible)


def array_length(count: int, flexible: bool) -> bytes:
    return _uvarint(count + 1) if flexible else _I32.pack(count)


def tagged_fields(fields: Sequence[tuple[int, bytes]]) -> bytes:
    if not fields:
        return NO_TAGS
    out = [_uvarint(len(fields))]
    for tag, data in fields:
        out.append(_uvarint(tag))
        out.append(_uvarint(len(data)))
        out.append(data)
    return b"".join(out)


@dataclass(frozen=True, slots=True)
class NodeEndpoint:
    node_id: int
    host: str
    port: int
    rack: str | None


def _node_endpoints(nodes: Sequence[NodeEndpoint]) -> bytes:
    out = [array_length(len(nodes), True)]
    for node in nodes:
        out.append(_I32.pack(node.node_id))
        out.append(string(node.host, True))
        out.append(_I32.pack(node.port))
        out.append(nullable_string(node.rack, True))
        out.append(NO_TAGS)
    return b"".join(out)


# Produce --------------------------------------------------------------------------------


@dataclass(slots=True)
class ProducePartitionResult:
    index: int
    error_code: int = 0
    base_offset: int = -1
    log_append_time: int = -1
    log_start_offset: int = -1
    error_message: str | None = None
    # KIP-951: where the leader moved, for NOT_LEADER_OR_FOLLOWER (v10+).
    current_leader: tuple[int, int] | None = None


def produce_response(
    version: int,
    topics: Sequence[tuple[str, Sequence[ProducePartitionResult]]],
    node_endpoints: Sequence[NodeEndpoint] = (),
) -> bytes:
    flexible = version >= 9
    out = [array_length(len(topics), flexible)]
    for name, partitions in topics:
        out.append(string(name, flexible))
        out.append(array_length(len(partitions), flexible))
        for p in partitions:
            out.append(
                _PRODUCE_PARTITION.pack(p.index, p.error_code, p.base_offset, p.log_append_time)
            )
            if version >= 5:
                out.append(_I64.pack(p.log_start_offset))
            if version >= 8:
                out.append(array_length(0, flexible))
                out.append(nullable_string(p.error_message, flexible))
            if flexible:
                if version >= 10 and p.current_leader is not None:
                    leader = _LEADER_AND_EPOCH.pack(*p.current_leader) + NO_TAGS
                    out.append(tagged_fields([(0, leader)]))
                else:
                    out.append(NO_TAGS)
        if flexible:
            out.append(NO_TAGS)
    out.append(_I32.pack(0))  # throttle time
    if flexible:
        if version >= 10 and node_endpoints:
            out.append(tagged_fields([(0, _node_endpoints(node_endpoints))]))
        else:
            out.append(NO_TAGS)
    return b"".join(out)


# Fetch ----------------------------------------------------------------------------------


@dataclass(slots=True)
class FetchPartitionResult:
    index: int
    error_code: int = 0
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    # None for read_uncommitted; a list (possibly empty) of (producer id, first offset).
    aborted_transactions: tuple[tuple[int, int], ...] | None = None
    # Kafka never sends null records (clients such as librdkafka reject them): errors and
    # empty reads carry an empty record set.
    records: FileRegion | bytes | None = b""
    diverging_epoch: tuple[int, int] | None = None
    current_leader: tuple[int, int] | None = None

    @property
    def records_size(self) -> int:
        records = self.records
        if records is None:
            return 0
        return records.length if isinstance(records, FileRegion) else len(records)


@dataclass(slots=True)
class FetchTopicResult:
    name: str
    topic_id: uuid.UUID | None
    partitions: Sequence[FetchPartitionResult]


def fetch_response(
    version: int,
    topics: Sequence[FetchTopicResult],
    error_code: int = 0,
    session_id: int = 0,
    node_endpoints: Sequence[NodeEndpoint] = (),
) -> Response:
    """Build a Fetch response whose record sets stay file regions until the socket."""
    flexible = version >= 12
    parts: list[Part] = []
    size = 0
    chunk = [_I32.pack(0)]  # throttle time
    if version >= 7:
        chunk.append(_I16.pack(error_code) + _I32.pack(session_id))
    chunk.append(array_length(len(topics), flexible))
    for topic in topics:
        if version >= 13:
            chunk.append((topic.topic_id or uuid.UUID(int=0)).bytes)
        else:
            chunk.append(string(topic.name, flexible))
        chunk.append(array_length(len(topic.partitions), flexible))
        for p in topic.partitions:
            chunk.append(
                _FETCH_PARTITION.pack(p.index, p.error_code, p.high_watermark, p.last_stable_offset)
            )
            if version >= 5:
                chunk.append(_I64.pack(p.log_start_offset))
            aborted = p.aborted_transactions
            if aborted is None:
                chunk.append(b"\x00" if flexible else b"\xff\xff\xff\xff")
            else:
                chunk.append(array_length(len(aborted), flexible))
                for producer_id, first_offset in aborted:
                    chunk.append(_I64.pack(producer_id) + _I64.pack(first_offset))
                    if flexible:
                        chunk.append(NO_TAGS)
            if version >= 11:
                chunk.append(_I32.pack(-1))  # preferred read replica
            records = p.records
            if records is None:
                chunk.append(b"\x00" if flexible else b"\xff\xff\xff\xff")
            else:
                length = p.records_size
                chunk.append(_uvarint(length + 1) if flexible else _I32.pack(length))
                if isinstance(records, FileRegion):
                    if length:
                        data = b"".join(chunk)
                        parts.append(data)
                        parts.append(records)
                        size += len(data) + length
                        chunk = []
                else:
                    chunk.append(records)
            if flexible:
                tags = []
                if p.diverging_epoch is not None:
                    tags.append((0, _EPOCH_END_OFFSET.pack(*p.diverging_epoch) + NO_TAGS))
                if p.current_leader is not None:
                    tags.append((1, _LEADER_AND_EPOCH.pack(*p.current_leader) + NO_TAGS))
                chunk.append(tagged_fields(tags))
        if flexible:
            chunk.append(NO_TAGS)
    if flexible:
        if version >= 16 and node_endpoints:
            chunk.append(tagged_fields([(0, _node_endpoints(node_endpoints))]))
        else:
            chunk.append(NO_TAGS)
    data = b"".join(chunk)
    parts.append(data)
    size += len(data)
    return Response(parts, size)


# Follower Fetch request -------------------------------------------------------------------

FOLLOWER_FETCH_VERSION = 12
_FETCH_REQUEST_HEAD = struct.Struct(">hhi")  # api key, version, correlation id
_FETCH_REQUEST_FIXED = struct.Struct(
    ">iiiibii"
)  # replica, max wait, min, max bytes, isolation, session id, epoch
_FETCH_REQUEST_PARTITION = struct.Struct(">iiqiqi")


@dataclass(frozen=True, slots=True)
class FetchRequestPartition:
    index: int
    current_leader_epoch: int
    fetch_offset: int
    last_fetched_epoch: int
    log_start_offset: int
    max_bytes: int


def follower_fetch_request(
    correlation_id: int,
    client_id: str,
    replica_id: int,
    max_wait_ms: int,
    min_bytes: int,
    max_bytes: int,
    topics: Sequence[tuple[str, Sequence[FetchRequestPartition]]],
) -> bytes:
    """A framed Fetch v12 request as a follower sends it, built without kio's encoder.

    A follower sends one after every response, so its cost is on the acks=all path.
    """
    client = client_id.encode()
    out = [
        _FETCH_REQUEST_HEAD.pack(1, FOLLOWER_FETCH_VERSION, correlation_id),
        _I16.pack(len(client)),
        client,
        NO_TAGS,
        _FETCH_REQUEST_FIXED.pack(replica_id, max_wait_ms, min_bytes, max_bytes, 0, 0, -1),
        _uvarint(len(topics) + 1),
    ]
    for name, partitions in topics:
        out.append(string(name, True))
        out.append(_uvarint(len(partitions) + 1))
        for p in partitions:
            out.append(
                _FETCH_REQUEST_PARTITION.pack(
                    p.index,
                    p.current_leader_epoch,
                    p.fetch_offset,
                    p.last_fetched_epoch,
                    p.log_start_offset,
                    p.max_bytes,
                )
            )
            out.append(NO_TAGS)
        out.append(NO_TAGS)
    out.append(b"\x01")  # no forgotten topics
    out.append(b"\x01")  # empty rack id
    out.append(NO_TAGS)
    payload = b"".join(out)
    return _I32.pack(len(payload)) + payload
