"""Array counts are checked before kio reads a request: a huge count must not kill the broker.

kio reserves room for an array's declared count before reading its elements; when that
allocation fails the process aborts. These inputs, ten bytes or so each, aborted a broker
until the check came in front of kio (legacy counts on hosts with less memory than 16 GB).
"""

from __future__ import annotations

import contextlib
import struct
import uuid
from unittest.mock import MagicMock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brokers.protocol import lengths, schema
from brokers.protocol.dispatch import Dispatcher, InvalidRequest
from brokers.protocol.framing import encode_request, read_request_header
from brokers.protocol.handlers import register_all
from tests.fuzz.frames import Target, _fetch, _produce, batch

HUGE = bytes.fromhex("feffffff0f")  # a compact count of 2**32 - 2
LEGACY_HUGE = bytes.fromhex("7ffffff0")  # 2**31 - 16
TARGET = Target("t", uuid.uuid4(), 1000, 10**8, {})


@pytest.mark.parametrize(
    ("api_key", "version", "body"),
    [
        (3, 12, HUGE),  # Metadata: topics
        (0, 9, b"\x00" + b"\x00\x01" + b"\x00\x00\x13\x88" + HUGE),  # Produce: topic data
        (1, 16, b"\x00" * 21 + HUGE),  # Fetch: topics
        (19, 7, HUGE),  # CreateTopics: topics
        (32, 4, HUGE),  # DescribeConfigs: resources
        (3, 4, LEGACY_HUGE),  # legacy Metadata: topics
        (1, 4, b"\xff" * 4 + b"\x00" * 13 + LEGACY_HUGE),  # legacy Fetch: topics
        (19, 2, LEGACY_HUGE),  # legacy CreateTopics: topics
    ],
)
def test_a_huge_compact_count_is_refused_before_decoding(
    api_key: int, version: int, body: bytes
) -> None:
    with pytest.raises(lengths.LengthError, match="elements with"):
        lengths.check(schema.request_class(api_key, version), body, 0)


def test_the_dispatcher_refuses_it_without_aborting() -> None:
    table = Dispatcher()
    register_all(table, MagicMock())
    frame = struct.pack(">hhih", 3, 12, 1, 1) + b"c\x00" + HUGE
    with pytest.raises(InvalidRequest, match="elements with"):
        table.dispatch(MagicMock(), frame)


def test_a_null_where_the_schema_has_none_is_refused() -> None:
    # Fetch v12 with a null topics array: kio would hand the handler None (v4 the same).
    body = bytearray(encode_request(1, 12, 1, "c", _fetch(TARGET, 12))[4:])
    _, start = read_request_header(bytes(body), True)
    # After replica id, max wait, min and max bytes, isolation level, session id and epoch.
    body[start + 25] = 0
    with pytest.raises(lengths.LengthError, match="null"):
        lengths.check(schema.request_class(1, 12), bytes(body), start)


SEEDS = [
    encode_request(0, 3, 1, "c", _produce(TARGET, 3, batch(b"v")))[4:],
    encode_request(0, 7, 1, "c", _produce(TARGET, 7, batch(b"v", codec=1)))[4:],
    encode_request(1, 4, 1, "c", _fetch(TARGET, 4))[4:],
    encode_request(1, 11, 1, "c", _fetch(TARGET, 11))[4:],
    encode_request(0, 9, 1, "c", _produce(TARGET, 9, batch(b"v")))[4:],
    encode_request(0, 10, 1, "c", _produce(TARGET, 10, batch(b"v", codec=4)))[4:],
    encode_request(1, 12, 1, "c", _fetch(TARGET, 12))[4:],
    encode_request(1, 16, 1, "c", _fetch(TARGET, 16))[4:],
]


@settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10**6), st.binary(min_size=1, max_size=5)), max_size=4),
)
def test_what_the_check_lets_through_kio_reads_or_refuses(
    frame: bytes, patches: list[tuple[int, bytes]]
) -> None:
    key, version = struct.unpack_from(">hh", frame)
    _, start = read_request_header(frame, version >= (9 if key == 0 else 12))
    data = bytearray(frame)
    for position, replacement in patches:
        at = start + position % (len(data) - start)
        data[at : at + len(replacement)] = replacement
    cls = schema.request_class(key, version)
    spoiled = bytes(data)
    try:
        lengths.check(cls, spoiled, start)
    except lengths.LengthError:
        return
    except lengths.UnknownTaggedField:
        # As the dispatcher does: leave them out, walking (and checking) once more.
        try:
            spoiled = lengths.without_unknown_tags(cls, spoiled, start)
        except lengths.LengthError:
            return
    # Passed the check: kio may refuse it, but must not take the process down.
    with contextlib.suppress(Exception):
        schema.request_reader(key, version)(spoiled, start)


def test_a_legacy_null_array_is_refused() -> None:
    # ListOffsets v1: replica id, then a null topics array.
    with pytest.raises(lengths.LengthError, match="null"):
        lengths.check(schema.request_class(2, 1), struct.pack(">ii", -1, -1), 0)
