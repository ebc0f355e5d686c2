"""RecordBatch v2: header view, validation errors, CRC, codecs."""

from __future__ import annotations

import datetime
import io
import struct

import cramjam
import crc32c
import pytest
from kio.records.schema import NewRecordBatch
from kio.records.schema import Record as KioRecord
from kio.records.writers import write_batch
from kio.static.primitive import i8, i16, i32, i64

from brokers.log.batch import (
    GZIP,
    LZ4,
    NONE,
    SNAPPY,
    ZSTD,
    Record,
    build_batch,
    compute_crc,
    decode_records,
    increment_sequence,
    iter_headers,
    read_header,
    validate_batches,
    with_log_append_time,
)
from brokers.log.errors import (
    CorruptRecordError,
    InvalidRecordError,
    RecordTooLargeError,
    UnsupportedMessageFormatError,
)
from tests.log.conftest import START_MS, make_batch


def kio_batch(count: int) -> bytes:
    when = datetime.datetime.fromtimestamp(START_MS / 1000, tz=datetime.UTC)
    records = tuple(
        KioRecord(
            attributes=i8(0),
            timestamp=when,
            offset=i64(i),
            key=b"key-%d" % i,
            value=b"value-%d" % i,
            headers=(),
        )
        for i in range(count)
    )
    out = io.BytesIO()
    write_batch(
        out,
        NewRecordBatch(
            producer_id=i64(7),
            producer_epoch=i16(1),
            base_sequence=i32(0),
            records=records,
            attributes=i16(0),
        ),
    )
    return out.getvalue()


def test_header_of_a_batch_written_by_another_kafka_library() -> None:
    data = kio_batch(3)
    header = read_header(data)
    assert header.magic == 2
    assert header.size == len(data)
    assert header.records_count == 3
    assert header.last_offset_delta == 2
    assert header.producer_id == 7
    assert header.producer_epoch == 1
    assert header.max_timestamp == START_MS
    assert header.crc == compute_crc(data)
    assert [r.value for r in decode_records(data)] == [b"value-0", b"value-1", b"value-2"]


def test_our_encoding_matches_kio_byte_for_byte() -> None:
    records = [Record(i, START_MS, b"key-%d" % i, b"value-%d" % i) for i in range(3)]
    ours = build_batch(
        records, producer_id=7, producer_epoch=1, base_sequence=0, partition_leader_epoch=0
    )
    assert ours == kio_batch(3)


def test_validate_accepts_several_concatenated_batches() -> None:
    data = make_batch(2) + make_batch(3) + make_batch(1)
    batches = validate_batches(memoryview(data), 1 << 20)
    assert [h.records_count for _, h in batches] == [2, 3, 1]
    assert [p for p, _ in batches] == [0, len(make_batch(2)), len(make_batch(2) + make_batch(3))]


def test_truncated_batch_is_corrupt() -> None:
    data = make_batch(3)
    for cut in (5, 30, len(data) - 1):
        with pytest.raises(CorruptRecordError):
            validate_batches(memoryview(data[:cut]), 1 << 20)


def test_flipped_byte_fails_the_crc() -> None:
    data = bytearray(make_batch(3))
    data[-2] ^= 0xFF
    with pytest.raises(CorruptRecordError, match="crc"):
        validate_batches(memoryview(bytes(data)), 1 << 20)


@pytest.mark.parametrize("magic", [0, 1])
def test_old_magic_is_unsupported(magic: int) -> None:
    data = bytearray(make_batch(1))
    data[16] = magic
    with pytest.raises(UnsupportedMessageFormatError) as caught:
        validate_batches(memoryview(bytes(data)), 1 << 20)
    assert caught.value.error_code == 43


def test_unknown_magic_is_corrupt() -> None:
    data = bytearray(make_batch(1))
    data[16] = 3
    with pytest.raises(CorruptRecordError):
        validate_batches(memoryview(bytes(data)), 1 << 20)


def test_length_below_the_header_size_is_corrupt() -> None:
    data = bytearray(make_batch(1))
    struct.pack_into(">i", data, 8, 20)
    with pytest.raises(CorruptRecordError):
        validate_batches(memoryview(bytes(data)), 1 << 20)


def test_count_that_disagrees_with_offsets_is_invalid() -> None:
    data = bytearray(make_batch(3))
    struct.pack_into(">i", data, 23, 5)  # last offset delta
    struct.pack_into(">I", data, 17, crc32c.crc32c(bytes(data[21:])))
    with pytest.raises(InvalidRecordError) as caught:
        validate_batches(memoryview(bytes(data)), 1 << 20)
    assert caught.value.error_code == 87


def test_batch_above_max_message_bytes_is_too_large() -> None:
    data = make_batch(1, value_size=2000)
    with pytest.raises(RecordTooLargeError) as caught:
        validate_batches(memoryview(data), 1000)
    assert caught.value.error_code == 10


def test_empty_produce_is_invalid() -> None:
    with pytest.raises(InvalidRecordError):
        validate_batches(memoryview(b""), 1000)


@pytest.mark.parametrize("codec", [NONE, GZIP, SNAPPY, LZ4, ZSTD])
def test_compressed_batches_round_trip(codec: int) -> None:
    records = [Record(i, START_MS + i, b"k%d" % i, b"value" * 50) for i in range(20)]
    data = build_batch(records, compression=codec)
    header = read_header(data)
    assert header.compression == codec
    validate_batches(memoryview(data), 1 << 20)
    assert decode_records(data) == records
    if codec != NONE:
        assert len(data) < 20 * 250


def test_raw_snappy_from_librdkafka_style_producers_decodes() -> None:
    records = [Record(0, START_MS, b"k", b"v" * 100)]
    framed = build_batch(records, compression=SNAPPY)
    header = read_header(framed)
    plain = build_batch(records)
    raw = bytes(cramjam.snappy.compress_raw(plain[61:]))
    data = bytearray(framed[:61] + raw)
    struct.pack_into(">i", data, 8, len(data) - 12)
    struct.pack_into(">I", data, 17, crc32c.crc32c(bytes(data[21:])))
    assert header.compression == SNAPPY
    assert decode_records(bytes(data)) == records


def test_log_append_time_rewrites_header_with_a_valid_crc() -> None:
    data = make_batch(2)
    view = memoryview(data)
    header = read_header(data)
    new_header = with_log_append_time(view, header, 42, 5, START_MS + 999)
    patched = new_header + data[61:]
    out = read_header(patched)
    assert out.base_offset == 42
    assert out.partition_leader_epoch == 5
    assert out.timestamp_type == 1
    assert out.max_timestamp == START_MS + 999
    assert out.crc == compute_crc(patched)
    assert {r.timestamp for r in decode_records(patched)} == {START_MS + 999}


def test_sequence_numbers_wrap_at_int32_max() -> None:
    assert increment_sequence(10, 4) == 14
    assert increment_sequence(2**31 - 1, 1) == 0
    assert increment_sequence(2**31 - 2, 3) == 1


def test_iter_headers_stops_at_a_partial_trailing_batch() -> None:
    data = make_batch(1) + make_batch(2)[:-3]
    assert len(list(iter_headers(memoryview(data)))) == 1
