"""RecordBatch v2: a zero-copy header view, validation, CRC32C, and record codecs off the hot path."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import cramjam
import crc32c

from brokers.log.errors import (
    CorruptRecordError,
    InvalidRecordError,
    RecordTooLargeError,
    UnsupportedMessageFormatError,
)

MAGIC = 2
LOG_OVERHEAD = 12  # base offset + batch length, the part not counted in batch length
RECORD_BATCH_OVERHEAD = 61
CRC_START = 21  # the CRC covers attributes through the end of the batch
MAGIC_POSITION = 16

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_TIMESTAMP = -1
NO_PARTITION_LEADER_EPOCH = -1

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_MASK = 0x08
TRANSACTIONAL_FLAG = 0x10
CONTROL_FLAG = 0x20
DELETE_HORIZON_FLAG = 0x40

NONE, GZIP, SNAPPY, LZ4, ZSTD = range(5)
CODEC_NAMES = ("uncompressed", "gzip", "snappy", "lz4", "zstd")

CREATE_TIME = 0
LOG_APPEND_TIME = 1

CONTROL_ABORT = 0
CONTROL_COMMIT = 1

INT32_MAX = 2**31 - 1

# base offset, batch length, partition leader epoch, magic, crc, attributes, last offset delta,
# base timestamp, max timestamp, producer id, producer epoch, base sequence, records count
HEADER = struct.Struct(">qiibIhiqqqhii")
PREFIX = struct.Struct(">qii")  # the part of the header outside the CRC that appends patch
LENGTH = struct.Struct(">qi")


class BatchHeader(NamedTuple):
    """The 61-byte header of one batch.

    A tuple rather than a frozen dataclass: one is made per batch on the produce and fetch
    paths, and building a tuple from `struct.unpack_from` costs a fifth as much.
    """

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes the batch takes on disk, header included."""
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        return LOG_APPEND_TIME if self.attributes & TIMESTAMP_TYPE_MASK else CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_FLAG)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_FLAG)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self.attributes & DELETE_HORIZON_FLAG)

    @property
    def delete_horizon_ms(self) -> int:
        """When the cleaner may drop this batch's tombstones; -1 if not yet set."""
        return self.base_timestamp if self.attributes & DELETE_HORIZON_FLAG else NO_TIMESTAMP

    @property
    def last_sequence(self) -> int:
        return increment_sequence(self.base_sequence, self.last_offset_delta)


def increment_sequence(sequence: int, increment: int) -> int:
    """Sequence numbers wrap at Int32.MAX back to 0, as Kafka's DefaultRecordBatch does."""
    if sequence == NO_SEQUENCE:
        return NO_SEQUENCE
    if sequence > INT32_MAX - increment:
        return increment - (INT32_MAX - sequence) - 1
    return sequence + increment


def decrement_sequence(sequence: int, decrement: int) -> int:
    if sequence < decrement:
        return INT32_MAX - (decrement - sequence) + 1
    return sequence - decrement


def read_header(buf: bytes | bytearray | memoryview, position: int = 0) -> BatchHeader:
    return BatchHeader._make(HEADER.unpack_from(buf, position))


def compute_crc(batch: bytes | bytearray | memoryview) -> int:
    return crc32c.crc32c(memoryview(batch)[CRC_START:])


_unpack_header = HEADER.unpack_from
_crc32c = crc32c.crc32c
_new_tuple = tuple.__new__


def _framing_error(view: memoryview, position: int, max_batch_bytes: int) -> Exception:
    """The Kafka error for a batch whose framing, magic or size is wrong (the slow path)."""
    remaining = len(view) - position
    if remaining < LOG_OVERHEAD:
        return CorruptRecordError(
            f"Record batch is truncated: {remaining} bytes left, fewer than the "
            f"{LOG_OVERHEAD}-byte log overhead"
        )
    size = LENGTH.unpack_from(view, position)[1] + LOG_OVERHEAD
    if remaining > MAGIC_POSITION:
        magic = view[position + MAGIC_POSITION]
        if magic < MAGIC:
            return UnsupportedMessageFormatError(
                f"Record batch magic {magic} is not supported: this log stores magic 2 only"
            )
        if magic > MAGIC:
            return CorruptRecordError(f"Record batch has unknown magic {magic}")
    if size < RECORD_BATCH_OVERHEAD:
        return CorruptRecordError(
            f"Record batch size {size} is less than the minimum record batch overhead "
            f"({RECORD_BATCH_OVERHEAD})"
        )
    if size > remaining:
        return CorruptRecordError(
            f"Record batch of {size} bytes is truncated: only {remaining} bytes were sent"
        )
    return RecordTooLargeError(
        f"The record batch size is {size} bytes which exceeds the maximum configured "
        f"value of {max_batch_bytes}."
    )


def check_header(view: memoryview, position: int, max_batch_bytes: int) -> BatchHeader:
    """Check the framing, magic, size limit and CRC of the batch at `position`.

    This is all a follower, recovery and the produce path have in common; it never looks
    inside the records. One struct unpack and one CRC call when the batch is good.
    """
    remaining = len(view) - position
    if remaining < RECORD_BATCH_OVERHEAD:
        raise _framing_error(view, position, max_batch_bytes)
    header: BatchHeader = _new_tuple(BatchHeader, _unpack_header(view, position))
    size = header[1] + LOG_OVERHEAD
    if (
        header[3] != MAGIC
        or size < RECORD_BATCH_OVERHEAD
        or size > remaining
        or size > max_batch_bytes
    ):
        raise _framing_error(view, position, max_batch_bytes)
    computed = _crc32c(view[position + CRC_START : position + size])
    if computed != header[4]:
        raise CorruptRecordError(
            f"Record is corrupt (stored crc = {header.crc}, computed crc = {computed})"
        )
    if header[6] < 0:
        raise InvalidRecordError(
            f"Batch has an invalid offset range: last offset delta {header.last_offset_delta}"
        )
    return header


def count_error(header: BatchHeader) -> InvalidRecordError:
    """The error for a batch whose record count disagrees with its offsets."""
    count = header.records_count
    if count <= 0:
        return InvalidRecordError(f"Invalid reported count for record batch: {count}")
    return InvalidRecordError(
        f"Inconsistent batch offset range [{header.base_offset}, {header.last_offset}] "
        f"and count of records {count}"
    )


def validate_batches(view: memoryview, max_batch_bytes: int) -> list[tuple[int, BatchHeader]]:
    """Validate every batch of a produce request: framing, magic, size, CRC and counts.

    Returns each batch's position and header. Raises the Kafka error of the first bad batch.
    """
    batches: list[tuple[int, BatchHeader]] = []
    position = 0
    end = len(view)
    if end == 0:
        raise InvalidRecordError("Produce request contained no record batch")
    while position < end:
        header = check_header(view, position, max_batch_bytes)
        if header[6] + 1 != header[12]:
            raise count_error(header)
        batches.append((position, header))
        position += header.batch_length + LOG_OVERHEAD
    return batches


def iter_headers(view: memoryview) -> Iterator[tuple[int, BatchHeader]]:
    """Positions and headers of the whole batches in a buffer; a trailing partial batch ends it."""
    position = 0
    end = len(view)
    while end - position >= RECORD_BATCH_OVERHEAD:
        header = BatchHeader._make(HEADER.unpack_from(view, position))
        size = header.batch_length + LOG_OVERHEAD
        if size < RECORD_BATCH_OVERHEAD or position + size > end:
            return
        yield position, header
        position += size


def with_log_append_time(
    view: memoryview, header: BatchHeader, base_offset: int, leader_epoch: int, now_ms: int
) -> bytes:
    """The 61-byte header for a batch stamped with LogAppendTime; the records stay as they are."""
    patched = bytearray(
        HEADER.pack(
            base_offset,
            header.batch_length,
            leader_epoch,
            MAGIC,
            0,
            header.attributes | TIMESTAMP_TYPE_MASK,
            header.last_offset_delta,
            header.base_timestamp,
            now_ms,
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
            header.records_count,
        )
    )
    crc = crc32c.crc32c(view[RECORD_BATCH_OVERHEAD:], crc32c.crc32c(patched[CRC_START:]))
    struct.pack_into(">I", patched, 17, crc)
    return bytes(patched)


# Records: decoded only by the cleaner, recompression, timestamp lookups and tests.


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a batch, with its absolute offset and timestamp."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024  # what Java's SnappyOutputStream writes


def decompress(codec: int, data: bytes | memoryview) -> bytes:
    """The records section of a compressed batch, uncompressed."""
    if codec == NONE:
        return bytes(data)
    if codec == GZIP:
        return bytes(cramjam.gzip.decompress(data))
    if codec == SNAPPY:
        raw = bytes(data)
        if not raw.startswith(_XERIAL_MAGIC):
            return bytes(cramjam.snappy.decompress_raw(raw))
        out = bytearray()
        position = len(_XERIAL_HEADER)
        while position < len(raw):
            (length,) = struct.unpack_from(">i", raw, position)
            position += 4
            out += bytes(cramjam.snappy.decompress_raw(raw[position : position + length]))
            position += length
        return bytes(out)
    if codec == LZ4:
        return bytes(cramjam.lz4.decompress(data))
    if codec == ZSTD:
        return bytes(cramjam.zstd.decompress(data))
    raise CorruptRecordError(f"Unknown compression codec {codec}")


def compress(codec: int, data: bytes, level: int | None = None) -> bytes:
    """Compress a records section the way Kafka's Java producer frames each codec."""
    if codec == NONE:
        return data
    if codec == GZIP:
        return bytes(cramjam.gzip.compress(data, level=level if level and level > 0 else 6))
    if codec == SNAPPY:
        out = bytearray(_XERIAL_HEADER)
        for start in range(0, len(data), _XERIAL_BLOCK):
            block = bytes(cramjam.snappy.compress_raw(data[start : start + _XERIAL_BLOCK]))
            out += struct.pack(">i", len(block)) + block
        return bytes(out)
    if codec == LZ4:
        return bytes(cramjam.lz4.compress(data, level=level))
    if codec == ZSTD:
        return bytes(cramjam.zstd.compress(data, level=3 if level is None else level))
    raise InvalidRecordError(f"Unknown compression codec {codec}")


def _read_varint(buf: bytes, position: int) -> tuple[int, int]:
    shift = 0
    result = 0
    while True:
        byte = buf[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise CorruptRecordError("Varint is too long")


def _write_varint(out: bytearray, value: int) -> None:
    zigzag = (value << 1) ^ (value >> 63)
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)


def _read_bytes(buf: bytes, position: int) -> tuple[bytes | None, int]:
    length, position = _read_varint(buf, position)
    if length < 0:
        return None, position
    return buf[position : position + length], position + length


def decode_records(batch: bytes | bytearray | memoryview) -> list[Record]:
    """Every record of one batch, decompressing if needed."""
    view = memoryview(batch)
    header = read_header(view)
    payload = decompress(header.compression, view[RECORD_BATCH_OVERHEAD : header.size])
    log_append = header.timestamp_type == LOG_APPEND_TIME
    records: list[Record] = []
    position = 0
    try:
        for _ in range(header.records_count):
            length, position = _read_varint(payload, position)
            end = position + length
            position += 1  # record attributes are unused in v2
            timestamp_delta, position = _read_varint(payload, position)
            offset_delta, position = _read_varint(payload, position)
            key, position = _read_bytes(payload, position)
            value, position = _read_bytes(payload, position)
            header_count, position = _read_varint(payload, position)
            headers: list[tuple[str, bytes | None]] = []
            for _ in range(header_count):
                name, position = _read_bytes(payload, position)
                header_value, position = _read_bytes(payload, position)
                headers.append(((name or b"").decode("utf-8", "replace"), header_value))
            if position != end:
                raise CorruptRecordError("Record length does not match its contents")
            timestamp = (
                header.max_timestamp if log_append else header.base_timestamp + timestamp_delta
            )
            records.append(
                Record(header.base_offset + offset_delta, timestamp, key, value, tuple(headers))
            )
    except IndexError as exc:
        raise CorruptRecordError("Records section is truncated") from exc
    return records


def _encode_record(out: bytearray, record: Record, base_offset: int, base_timestamp: int) -> None:
    body = bytearray(b"\x00")
    _write_varint(body, record.timestamp - base_timestamp)
    _write_varint(body, record.offset - base_offset)
    for part in (record.key, record.value):
        if part is None:
            _write_varint(body, -1)
        else:
            _write_varint(body, len(part))
            body += part
    _write_varint(body, len(record.headers))
    for name, value in record.headers:
        encoded = name.encode()
        _write_varint(body, len(encoded))
        body += encoded
        if value is None:
            _write_varint(body, -1)
        else:
            _write_varint(body, len(value))
            body += value
    _write_varint(out, len(body))
    out += body


def build_batch(
    records: Sequence[Record],
    *,
    base_offset: int | None = None,
    last_offset_delta: int | None = None,
    compression: int = NONE,
    compression_level: int | None = None,
    timestamp_type: int = CREATE_TIME,
    log_append_time: int = NO_TIMESTAMP,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    transactional: bool = False,
    control: bool = False,
    delete_horizon_ms: int = NO_TIMESTAMP,
    empty_timestamp: int = NO_TIMESTAMP,
) -> bytes:
    """Encode a RecordBatch v2 with a correct length, CRC and offset deltas.

    Records keep their absolute offsets (the cleaner leaves gaps); `last_offset_delta` can
    be kept from a source batch so the producer's last sequence survives compaction.
    """
    if base_offset is None:
        base_offset = records[0].offset if records else 0
    if last_offset_delta is None:
        last_offset_delta = records[-1].offset - base_offset if records else 0
    if delete_horizon_ms >= 0:
        base_timestamp = delete_horizon_ms
    elif records:
        base_timestamp = records[0].timestamp
    else:
        base_timestamp = empty_timestamp
    if timestamp_type == LOG_APPEND_TIME:
        max_timestamp = log_append_time
    elif records:
        max_timestamp = max(record.timestamp for record in records)
    else:
        max_timestamp = empty_timestamp
    payload = bytearray()
    for record in records:
        _encode_record(payload, record, base_offset, base_timestamp)
    body = compress(compression, bytes(payload), compression_level)
    attributes = compression
    if timestamp_type == LOG_APPEND_TIME:
        attributes |= TIMESTAMP_TYPE_MASK
    if transactional:
        attributes |= TRANSACTIONAL_FLAG
    if control:
        attributes |= CONTROL_FLAG
    if delete_horizon_ms >= 0:
        attributes |= DELETE_HORIZON_FLAG
    out = bytearray(
        HEADER.pack(
            base_offset,
            RECORD_BATCH_OVERHEAD - LOG_OVERHEAD + len(body),
            partition_leader_epoch,
            MAGIC,
            0,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            len(records),
        )
    )
    out += body
    struct.pack_into(">I", out, 17, crc32c.crc32c(memoryview(out)[CRC_START:]))
    return bytes(out)


def control_record_type(record: Record) -> int:
    """COMMIT or ABORT, read from a control record's key (version int16, type int16)."""
    if record.key is None or len(record.key) < 4:
        raise CorruptRecordError("Control record has no valid key")
    return int(struct.unpack_from(">hh", record.key)[1])


def control_type(batch: bytes | bytearray | memoryview) -> int:
    """COMMIT or ABORT of a whole control batch (markers are rare: decoding is fine here)."""
    return control_record_type(_control_record(batch))


def read_marker(batch: bytes | bytearray | memoryview) -> tuple[int, int]:
    """COMMIT or ABORT, and the coordinator epoch, of a transaction marker batch.

    The epoch is in the control record's value: version int16, coordinator epoch int32.
    """
    record = _control_record(batch)
    if record.value is None or len(record.value) < 6:
        raise CorruptRecordError("Transaction marker has no valid value")
    return control_record_type(record), int(struct.unpack_from(">hi", record.value)[1])


def _control_record(batch: bytes | bytearray | memoryview) -> Record:
    records = decode_records(batch)
    if not records:
        raise CorruptRecordError("Control batch has no record")
    return records[0]


def marker_batch(
    producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int, timestamp: int
) -> bytes:
    """A transaction marker: one COMMIT or ABORT control record, as the coordinator asks for."""
    kind = CONTROL_COMMIT if commit else CONTROL_ABORT
    return build_batch(
        [control_record(0, timestamp, kind, coordinator_epoch)],
        base_offset=0,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        transactional=True,
        control=True,
    )


def control_record(offset: int, timestamp: int, kind: int, coordinator_epoch: int) -> Record:
    """The single record of a transaction marker batch."""
    return Record(
        offset, timestamp, struct.pack(">hh", 0, kind), struct.pack(">hi", 0, coordinator_epoch)
    )
