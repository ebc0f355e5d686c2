"""The hand-built Produce and Fetch encoders produce exactly the bytes kio's encoder does."""

from __future__ import annotations

import datetime
import os
import tempfile
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.errors import ErrorCode
from kio.static.primitive import i32Timedelta

from brokers.protocol import schema, wire
from brokers.protocol.framing import FileRegion

ZERO = i32Timedelta.parse(datetime.timedelta(0))
errors = st.sampled_from(
    [ErrorCode.none, ErrorCode.not_leader_or_follower, ErrorCode.offset_out_of_range]
)
offsets = st.integers(min_value=-1, max_value=2**40)
names = st.text(alphabet="abcdefghij-._", min_size=1, max_size=12)


@st.composite
def produce_results(draw: st.DrawFn) -> list[tuple[str, list[wire.ProducePartitionResult]]]:
    topics = draw(st.lists(names, min_size=0, max_size=3, unique=True))
    out = []
    for name in topics:
        partitions = []
        for index in draw(st.lists(st.integers(0, 50), max_size=3, unique=True)):
            leader = draw(st.none() | st.tuples(st.integers(0, 5), st.integers(0, 100)))
            partitions.append(
                wire.ProducePartitionResult(
                    index=index,
                    error_code=draw(errors),
                    base_offset=draw(offsets),
                    log_append_time=draw(st.sampled_from([-1, 1_700_000_000_000])),
                    log_start_offset=draw(offsets),
                    error_message=draw(st.none() | st.text(max_size=10)),
                    current_leader=leader,
                )
            )
        out.append((name, partitions))
    return out


def kio_produce(
    version: int,
    topics: list[tuple[str, list[wire.ProducePartitionResult]]],
    nodes: list[wire.NodeEndpoint],
) -> bytes:
    m = schema.response_module(0, version)
    responses = []
    for name, partitions in topics:
        parts = []
        for p in partitions:
            values = dict(
                index=p.index,
                error_code=ErrorCode(p.error_code),
                base_offset=p.base_offset,
                log_append_time=None
                if p.log_append_time == -1
                else datetime.datetime.fromtimestamp(p.log_append_time / 1000, datetime.UTC),
                log_start_offset=p.log_start_offset,
                record_errors=(),
                error_message=p.error_message,
            )
            if version >= 10 and p.current_leader is not None:
                values["current_leader"] = m.LeaderIdAndEpoch(
                    leader_id=p.current_leader[0], leader_epoch=p.current_leader[1]
                )
            parts.append(schema.build(m.PartitionProduceResponse, **values))
        responses.append(m.TopicProduceResponse(name=name, partition_responses=tuple(parts)))
    node_endpoints = (
        tuple(
            m.NodeEndpoint(node_id=n.node_id, host=n.host, port=n.port, rack=n.rack) for n in nodes
        )
        if version >= 10
        else ()
    )
    return schema.encode(
        schema.build(
            m.ProduceResponse,
            responses=tuple(responses),
            throttle_time=ZERO,
            node_endpoints=node_endpoints,
        )
    )


nodes_strategy = st.lists(
    st.builds(
        wire.NodeEndpoint,
        st.integers(0, 9),
        st.sampled_from(["127.0.0.1", "broker"]),
        st.integers(1, 65535),
        st.none() | st.just("r1"),
    ),
    max_size=2,
)


@settings(max_examples=150)
@given(st.integers(3, 10), produce_results(), nodes_strategy)
def test_produce_response_matches_kio(version, topics, nodes):
    if version < 8:
        topics = [
            (n, [wire.ProducePartitionResult(**{**_fields(p), "error_message": None}) for p in ps])
            for n, ps in topics
        ]
    assert wire.produce_response(version, topics, nodes) == kio_produce(version, topics, nodes)


def _fields(p: wire.ProducePartitionResult) -> dict:
    return {f: getattr(p, f) for f in p.__dataclass_fields__}


@st.composite
def fetch_results(draw: st.DrawFn) -> list[wire.FetchTopicResult]:
    out = []
    for name in draw(st.lists(names, max_size=3, unique=True)):
        partitions = []
        for index in draw(st.lists(st.integers(0, 50), max_size=3, unique=True)):
            partitions.append(
                wire.FetchPartitionResult(
                    index=index,
                    error_code=draw(errors),
                    high_watermark=draw(offsets),
                    last_stable_offset=draw(offsets),
                    log_start_offset=draw(offsets),
                    aborted_transactions=draw(st.none() | st.just(()) | st.just(((7, 100),))),
                    records=draw(st.none() | st.binary(max_size=300)),
                    diverging_epoch=draw(
                        st.none() | st.tuples(st.integers(0, 9), st.integers(0, 1000))
                    ),
                    current_leader=draw(
                        st.none() | st.tuples(st.integers(0, 5), st.integers(0, 50))
                    ),
                )
            )
        out.append(wire.FetchTopicResult(name, uuid.uuid4(), partitions))
    return out


def kio_fetch(
    version: int, topics: list[wire.FetchTopicResult], nodes: list[wire.NodeEndpoint]
) -> bytes:
    m = schema.response_module(1, version)
    responses = []
    for topic in topics:
        parts = []
        for p in topic.partitions:
            values = dict(
                partition_index=p.index,
                error_code=ErrorCode(p.error_code),
                high_watermark=p.high_watermark,
                last_stable_offset=p.last_stable_offset,
                log_start_offset=p.log_start_offset,
                aborted_transactions=None
                if p.aborted_transactions is None
                else tuple(
                    m.AbortedTransaction(producer_id=a, first_offset=b)
                    for a, b in p.aborted_transactions
                ),
                preferred_read_replica=-1,
                records=p.records,
            )
            if p.diverging_epoch is not None:
                values["diverging_epoch"] = m.EpochEndOffset(
                    epoch=p.diverging_epoch[0], end_offset=p.diverging_epoch[1]
                )
            if p.current_leader is not None:
                values["current_leader"] = m.LeaderIdAndEpoch(
                    leader_id=p.current_leader[0], leader_epoch=p.current_leader[1]
                )
            parts.append(schema.build(m.PartitionData, **values))
        responses.append(
            schema.build(
                m.FetchableTopicResponse,
                topic=topic.name,
                topic_id=topic.topic_id,
                partitions=tuple(parts),
            )
        )
    node_endpoints = (
        tuple(
            m.NodeEndpoint(node_id=n.node_id, host=n.host, port=n.port, rack=n.rack) for n in nodes
        )
        if version >= 16
        else ()
    )
    return schema.encode(
        schema.build(
            m.FetchResponse,
            throttle_time=ZERO,
            error_code=ErrorCode.none,
            session_id=0,
            responses=tuple(responses),
            node_endpoints=node_endpoints,
        )
    )


def _flatten(response) -> bytes:
    return b"".join(p if isinstance(p, bytes) else p.read() for p in response.parts)


@settings(max_examples=150)
@given(st.integers(4, 16), fetch_results(), nodes_strategy)
def test_fetch_response_matches_kio(version, topics, nodes):
    if version < 12:
        topics = [
            wire.FetchTopicResult(
                t.name,
                t.topic_id,
                [
                    wire.FetchPartitionResult(
                        **{**_fields(p), "diverging_epoch": None, "current_leader": None}
                    )
                    for p in t.partitions
                ],
            )
            for t in topics
        ]
    response = wire.fetch_response(version, topics, node_endpoints=nodes)
    encoded = _flatten(response)
    assert len(encoded) == response.size
    assert encoded == kio_fetch(version, topics, nodes)


def test_fetch_response_sends_file_regions_without_copying():
    with tempfile.TemporaryFile() as f:
        f.write(b"x" * 100 + b"RECORDS!" * 1000)
        f.flush()
        region = FileRegion(f.fileno(), 100, 8000)
        topics = [wire.FetchTopicResult("t", None, [wire.FetchPartitionResult(0, records=region)])]
        response = wire.fetch_response(12, topics)
        assert region in response.parts
        inline = [
            wire.FetchTopicResult(
                "t", None, [wire.FetchPartitionResult(0, records=b"RECORDS!" * 1000)]
            )
        ]
        assert _flatten(response) == _flatten(wire.fetch_response(12, inline))
        assert os.pread(f.fileno(), 8, 100) == b"RECORDS!"


@settings(max_examples=100)
@given(
    st.integers(0, 2**31 - 1),
    st.integers(0, 9),
    st.lists(
        st.tuples(
            names,
            st.lists(
                st.builds(
                    wire.FetchRequestPartition,
                    st.integers(0, 100),
                    st.integers(-1, 50),
                    offsets,
                    st.integers(-1, 50),
                    offsets,
                    st.integers(1, 2**20),
                ),
                max_size=4,
            ),
        ),
        max_size=3,
    ),
)
def test_follower_fetch_request_matches_kio(correlation_id, replica_id, topics):
    from brokers.protocol.framing import encode_request

    m = schema.request_module(1, wire.FOLLOWER_FETCH_VERSION)
    request = schema.build(
        schema.request_class(1, wire.FOLLOWER_FETCH_VERSION),
        cluster_id=None,
        replica_id=replica_id,
        max_wait=i32Timedelta.parse(datetime.timedelta(milliseconds=500)),
        min_bytes=1,
        max_bytes=10 << 20,
        isolation_level=0,
        session_id=0,
        session_epoch=-1,
        topics=tuple(
            m.FetchTopic(
                topic=name,
                partitions=tuple(
                    m.FetchPartition(
                        partition=p.index,
                        current_leader_epoch=p.current_leader_epoch,
                        fetch_offset=p.fetch_offset,
                        last_fetched_epoch=p.last_fetched_epoch,
                        log_start_offset=p.log_start_offset,
                        partition_max_bytes=p.max_bytes,
                    )
                    for p in partitions
                ),
            )
            for name, partitions in topics
        ),
        forgotten_topics_data=(),
        rack_id="",
    )
    expected = encode_request(1, wire.FOLLOWER_FETCH_VERSION, correlation_id, "replica-x", request)
    built = wire.follower_fetch_request(
        correlation_id, "replica-x", replica_id, 500, 1, 10 << 20, topics
    )
    assert built == expected
