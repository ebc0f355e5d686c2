"""LogSegment: one `.log` file of whole batches plus its offset and time indexes."""

from __future__ import annotations

import contextlib
import os
import random
import struct
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import crc32c

from brokers.log.batch import (
    CRC_START,
    HEADER,
    INT32_MAX,
    LOG_OVERHEAD,
    MAGIC,
    RECORD_BATCH_OVERHEAD,
    BatchHeader,
)
from brokers.log.config import LogConfig
from brokers.log.errors import CorruptRecordError, KafkaStorageError
from brokers.log.index import OffsetIndex
from brokers.log.time_index import NO_TIMESTAMP, TimeIndex

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
DELETED_SUFFIX = ".deleted"
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"

SCAN_CHUNK = 64 * 1024
FIRST_SCAN_READ = 8 * 1024
RECOVERY_CHUNK = 4 * 1024 * 1024
# Batches remembered per segment so that fetches near the log end skip index and scan.
RECENT_BATCHES = 4096

# (base offset, last offset, max timestamp, size) of each batch an append writes.
AppendedBatch = tuple[int, int, int, int]


def file_name(base_offset: int, suffix: str) -> str:
    """Kafka's names: the base offset zero-padded to 20 digits."""
    return f"{base_offset:020d}{suffix}"


class LogSegment:
    """A segment's file, size and indexes, all in memory apart from the batch bytes.

    Indexes reach disk when the segment is rolled, flushed or closed; recovery rebuilds
    any it cannot trust.
    """

    __slots__ = (
        "_recent_base",
        "_recent_last",
        "_recent_pos",
        "base_offset",
        "bytes_since_index_entry",
        "created_ms",
        "dir",
        "fd",
        "index",
        "index_interval_bytes",
        "indexes_full",
        "indexes_persisted",
        "max_timestamp",
        "next_offset",
        "offset_of_max_timestamp",
        "roll_jitter_ms",
        "rolling_timestamp",
        "size",
        "time_index",
    )

    def __init__(
        self, dir: Path, base_offset: int, fd: int, config: LogConfig, now_ms: int
    ) -> None:
        self.dir = dir
        self.base_offset = base_offset
        self.fd = fd
        self.size = os.fstat(fd).st_size
        self.index = OffsetIndex(
            dir / file_name(base_offset, INDEX_SUFFIX), base_offset, config.segment_index_bytes
        )
        self.time_index = TimeIndex(
            dir / file_name(base_offset, TIME_INDEX_SUFFIX),
            base_offset,
            config.segment_index_bytes,
        )
        self.index_interval_bytes = config.index_interval_bytes
        self.bytes_since_index_entry = 0
        self.next_offset = base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = base_offset
        self.rolling_timestamp = NO_TIMESTAMP
        self.created_ms = now_ms
        jitter = config.segment_jitter_ms
        self.roll_jitter_ms = random.randrange(jitter) if jitter > 0 else 0
        self.indexes_persisted = False
        # Set when an index reaches segment.index.bytes: the segment must roll.
        self.indexes_full = False
        self._recent_base = array("q")
        self._recent_last = array("q")
        self._recent_pos = array("q")

    @classmethod
    def create(cls, dir: Path, base_offset: int, config: LogConfig, now_ms: int) -> LogSegment:
        """A new empty segment; files left at this offset by an earlier life are replaced."""
        for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
            (dir / file_name(base_offset, suffix)).unlink(missing_ok=True)
        path = dir / file_name(base_offset, LOG_SUFFIX)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise KafkaStorageError(f"Error while creating log segment {path}: {exc}") from exc
        return cls(dir, base_offset, fd, config, now_ms)

    @classmethod
    def open(cls, dir: Path, base_offset: int, config: LogConfig, now_ms: int) -> LogSegment:
        """An existing segment file; call load_indexes or recover before using it."""
        fd = os.open(dir / file_name(base_offset, LOG_SUFFIX), os.O_RDWR)
        return cls(dir, base_offset, fd, config, now_ms)

    @property
    def log_path(self) -> Path:
        return self.dir / file_name(self.base_offset, LOG_SUFFIX)

    @property
    def files(self) -> list[Path]:
        return [self.log_path, self.index.path, self.time_index.path]

    @property
    def is_empty(self) -> bool:
        return self.size == 0

    def largest_timestamp(self) -> int:
        """The newest timestamp in the segment, or its file's mtime (retention uses this)."""
        if self.max_timestamp >= 0:
            return self.max_timestamp
        return int(os.fstat(self.fd).st_mtime * 1000)

    def should_roll(
        self,
        segment_bytes: int,
        segment_ms: int,
        append_size: int,
        max_timestamp: int,
        last_offset: int,
        now_ms: int,
    ) -> bool:
        """Kafka's LogSegment.shouldRoll: size, age, a full index, or relative offset overflow.

        Age counts from the first batch's timestamp, or the segment's creation without one.
        """
        size = self.size
        if size > segment_bytes - append_size:
            return True
        if size > 0:
            if self.rolling_timestamp >= 0:
                waited = max_timestamp - self.rolling_timestamp
            else:
                waited = now_ms - self.created_ms
            if waited > segment_ms - self.roll_jitter_ms:
                return True
        return self.indexes_full or last_offset - self.base_offset > INT32_MAX

    # Writing

    def append(
        self, buffers: Sequence[bytes | memoryview], total: int, batches: Sequence[AppendedBatch]
    ) -> None:
        """Write batches' bytes (in one system call) at the end of the file and account for
        them. On a failed write the file is cut back unchanged and KafkaStorageError raised."""
        self._write(buffers, total)
        for base, last, timestamp, size in batches:
            self._account(base, last, timestamp, size)

    def append_one(
        self, prefix: bytes, body: memoryview, size: int, base: int, last: int, timestamp: int
    ) -> None:
        """append() for the usual produce request: one batch, its patched prefix apart."""
        self._write([prefix, body], size)
        self._account(base, last, timestamp, size)

    def _write(self, buffers: Sequence[bytes | memoryview], total: int) -> None:
        position = self.size
        try:
            written = os.pwritev(self.fd, buffers, position)
            while written < total:
                written += os.pwritev(self.fd, _skip(buffers, written), position + written)
        except OSError as exc:
            # A partial batch must not stay behind the last good one.
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, position)
            raise KafkaStorageError(
                f"Error while appending to log segment {self.log_path}: {exc}"
            ) from exc

    def _account(self, base: int, last: int, timestamp: int, size: int) -> None:
        """Indexes, max timestamp and recent batches for a batch just written at the end."""
        position = self.size
        if timestamp > self.max_timestamp:
            self.max_timestamp = timestamp
            self.offset_of_max_timestamp = last
        if position == 0 and self.rolling_timestamp < 0:
            self.rolling_timestamp = timestamp
        if self.bytes_since_index_entry > self.index_interval_bytes:
            full = self.index.append(last, position)
            if self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp):
                full = True
            self.indexes_full = full
            self.bytes_since_index_entry = size
        else:
            self.bytes_since_index_entry += size
        recent_pos = self._recent_pos
        self._recent_base.append(base)
        self._recent_last.append(last)
        recent_pos.append(position)
        self.size = position + size
        self.next_offset = last + 1
        if len(recent_pos) > 2 * RECENT_BATCHES:
            del self._recent_base[:RECENT_BATCHES]
            del self._recent_last[:RECENT_BATCHES]
            del recent_pos[:RECENT_BATCHES]

    # Reading

    def headers(self, start: int, end: int | None = None) -> Iterator[tuple[int, BatchHeader]]:
        """Positions and headers of the batches in [start, end), reading only what it needs."""
        end = self.size if end is None else end
        fd = self.fd
        position = start
        buf = b""
        buf_start = start
        previous_size = 0
        # Lookups start at an index entry and end within about index.interval.bytes: the
        # first read covers that; small batches then read ahead, large ones just headers.
        want = FIRST_SCAN_READ
        while position + RECORD_BATCH_OVERHEAD <= end:
            relative = position - buf_start
            if relative + RECORD_BATCH_OVERHEAD > len(buf):
                if buf:
                    want = SCAN_CHUNK if previous_size < SCAN_CHUNK // 8 else RECORD_BATCH_OVERHEAD
                buf = os.pread(fd, min(want, end - position), position)
                buf_start = position
                relative = 0
                if len(buf) < RECORD_BATCH_OVERHEAD:
                    return
            header = BatchHeader._make(HEADER.unpack_from(buf, relative))
            previous_size = header.batch_length + LOG_OVERHEAD
            if previous_size < RECORD_BATCH_OVERHEAD or position + previous_size > end:
                return
            yield position, header
            position += previous_size

    def find(self, offset: int) -> tuple[int, int, int] | None:
        """(position, base offset, size) of the first batch whose last offset >= `offset`."""
        recent_last = self._recent_last
        if recent_last and offset >= self._recent_base[0]:
            i = bisect_left(recent_last, offset)
            if i == len(recent_last):
                return None
            position = self._recent_pos[i]
            end = self._recent_pos[i + 1] if i + 1 < len(recent_last) else self.size
            return position, self._recent_base[i], end - position
        if offset >= self.next_offset:
            return None
        start, following = self.index.span_of_offset(offset)
        stop = min(self.size, following + RECORD_BATCH_OVERHEAD if following >= 0 else self.size)
        if stop - start <= SCAN_CHUNK:
            # The batch starts before the next index entry: one read covers the search.
            buf = os.pread(self.fd, stop - start, start)
            found = _first_reaching(buf, offset)
            if found is not None:
                return start + found[0], found[1], found[2]
        for position, header in self.headers(start):
            if header.base_offset + header.last_offset_delta >= offset:
                return position, header.base_offset, header.batch_length + LOG_OVERHEAD
        return None

    def boundary_before(self, start: int, limit: int) -> int:
        """The last batch boundary in [start, limit]: where a read of whole batches must end."""
        recent_pos = self._recent_pos
        if recent_pos and start >= recent_pos[0]:
            i = bisect_right(recent_pos, limit) - 1
            following = recent_pos[i + 1] if i + 1 < len(recent_pos) else self.size
            return following if following <= limit else recent_pos[i]
        floor, _ = self.index.span_of_position(limit)
        boundary = max(start, floor)
        if limit - boundary <= FIRST_SCAN_READ:
            return boundary + _last_boundary(os.pread(self.fd, limit - boundary, boundary))
        for position, header in self.headers(boundary, limit):
            boundary = position + header.batch_length + LOG_OVERHEAD
        return boundary

    def read(
        self, offset: int, max_bytes: int, max_offset: int | None, min_one_batch: bool
    ) -> tuple[int, int, int] | None:
        """(start, end, first offset) of whole batches to serve, or None if none is here.

        The first batch is the one containing `offset`; batches containing `max_offset` or
        later are left out; at most `max_bytes` unless the first batch alone is larger and
        `min_one_batch` is set.
        """
        found = self.find(offset)
        if found is None:
            return None
        start, first_offset, first_size = found
        limit = self.size
        if max_offset is not None and max_offset < self.next_offset:
            bound = self.find(max_offset)
            if bound is not None:
                limit = bound[0]
        if limit <= start:
            return start, start, first_offset
        if limit - start <= max_bytes:
            return start, limit, first_offset
        end = self.boundary_before(start, start + max_bytes)
        if end == start and min_one_batch:
            end = start + first_size
        return start, end, first_offset

    def first_header(self) -> BatchHeader | None:
        for _, header in self.headers(0):
            return header
        return None

    # Recovery and truncation

    def load_indexes(self) -> None:
        """Trust the index files, then check the tail of the segment against them.

        Raises CorruptRecordError or FileNotFoundError when the files can't be trusted.
        """
        self.index.load(self.size)
        self.time_index.load()
        _, position = self.index.lookup(2**63 - 1)
        self.bytes_since_index_entry = 0
        self.next_offset = self.base_offset
        self.max_timestamp, self.offset_of_max_timestamp = self.time_index.last_entry
        end = position
        for at, header in self.headers(position):
            self._count_unindexed(header)
            end = at + header.batch_length + LOG_OVERHEAD
        if end != self.size:
            raise CorruptRecordError(f"Segment {self.log_path} does not end on a batch boundary")
        first = self.first_header()
        self.rolling_timestamp = first.max_timestamp if first else NO_TIMESTAMP
        self.indexes_persisted = True
        self._check_full()

    def _check_full(self) -> None:
        self.indexes_full = self.index.is_full or self.time_index.is_full

    def _count_unindexed(self, header: BatchHeader) -> None:
        """Take in a batch after the last index entry (loading or truncation)."""
        last = header.base_offset + header.last_offset_delta
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
            self.offset_of_max_timestamp = last
        self.bytes_since_index_entry += header.batch_length + LOG_OVERHEAD
        self.next_offset = last + 1

    def recover(self, on_batch: Callable[[BatchHeader], None] | None = None) -> int:
        """Validate every batch and rebuild the indexes; cut the file at the first bad byte.

        Returns how many bytes were cut off.
        """
        self.index.clear()
        self.time_index.clear()
        self.forget_recent()
        self.bytes_since_index_entry = 0
        self.next_offset = self.base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = self.base_offset
        self.rolling_timestamp = NO_TIMESTAMP
        file_size = os.fstat(self.fd).st_size
        position = 0
        buf = b""
        buf_start = 0
        expected = self.base_offset
        interval = self.index_interval_bytes
        while file_size - position >= RECORD_BATCH_OVERHEAD:
            relative = position - buf_start
            if relative + RECORD_BATCH_OVERHEAD > len(buf):
                buf = os.pread(self.fd, RECOVERY_CHUNK, position)
                buf_start = position
                relative = 0
            header = BatchHeader._make(HEADER.unpack_from(buf, relative))
            size = header.batch_length + LOG_OVERHEAD
            if (
                size < RECORD_BATCH_OVERHEAD
                or position + size > file_size
                or header.magic != MAGIC
                or header.base_offset < expected
                or header.last_offset_delta < 0
                or header.base_offset + header.last_offset_delta - self.base_offset > INT32_MAX
            ):
                break
            if relative + size > len(buf):
                buf = os.pread(self.fd, max(RECOVERY_CHUNK, size), position)
                buf_start = position
                relative = 0
            if crc32c.crc32c(memoryview(buf)[relative + CRC_START : relative + size]) != header.crc:
                break
            if self.rolling_timestamp < 0:
                self.rolling_timestamp = header.max_timestamp
            last = header.base_offset + header.last_offset_delta
            if header.max_timestamp > self.max_timestamp:
                self.max_timestamp = header.max_timestamp
                self.offset_of_max_timestamp = last
            if self.bytes_since_index_entry > interval:
                self.index.append(last, position)
                self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
                self.bytes_since_index_entry = 0
            self.bytes_since_index_entry += size
            if on_batch is not None:
                on_batch(header)
            expected = last + 1
            self.next_offset = expected
            position += size
        self.size = position
        self._check_full()
        truncated = file_size - position
        if truncated:
            os.ftruncate(self.fd, position)
        self.indexes_persisted = False
        return truncated

    def truncate_to(self, offset: int) -> tuple[int, int] | None:
        """Drop every batch whose last offset >= `offset`.

        Returns (base offset, size) of the first batch dropped, or None if none was.
        """
        found = self.find(offset)
        if found is None:
            return None
        position, base, size = found
        try:
            os.ftruncate(self.fd, position)
        except OSError as exc:
            raise KafkaStorageError(f"Error while truncating {self.log_path}: {exc}") from exc
        self.size = position
        self.index.truncate_to(offset)
        self.time_index.truncate_to(offset)
        self._check_full()
        keep = bisect_left(self._recent_pos, position)
        del self._recent_base[keep:]
        del self._recent_last[keep:]
        del self._recent_pos[keep:]
        _, indexed = self.index.lookup(offset)
        self.bytes_since_index_entry = 0
        self.next_offset = self.base_offset
        self.max_timestamp, self.offset_of_max_timestamp = self.time_index.last_entry
        for _, header in self.headers(indexed):
            self._count_unindexed(header)
        if self.size == 0:
            self.rolling_timestamp = NO_TIMESTAMP
        self.indexes_persisted = False
        return base, size

    def forget_recent(self) -> None:
        """Drop the recent batches (kept only for the segments reads are likely to hit)."""
        del self._recent_base[:]
        del self._recent_last[:]
        del self._recent_pos[:]

    def seal(self) -> None:
        """The segment stops being active: its max timestamp gets a final time index entry."""
        self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)

    # Durability and lifecycle

    def flush(self) -> None:
        """fsync the batches, and write and fsync the indexes if not yet done."""
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise KafkaStorageError(f"Error while flushing {self.log_path}: {exc}") from exc

    def flush_indexes(self) -> None:
        try:
            self.index.flush()
            self.time_index.flush()
            self.indexes_persisted = True
        except OSError as exc:
            raise KafkaStorageError(
                f"Error while writing indexes of {self.log_path}: {exc}"
            ) from exc

    def close(self) -> None:
        os.close(self.fd)

    def rename_to_deleted(self) -> list[Path]:
        """Rename the segment's files with `.deleted` (the fd stays usable); returns the new paths."""
        renamed: list[Path] = []
        for path in self.files:
            target = path.with_name(path.name + DELETED_SUFFIX)
            try:
                os.rename(path, target)
            except FileNotFoundError:
                continue
            renamed.append(target)
        return renamed


_HEAD = struct.Struct(">qiibIhi")  # the header up to last offset delta
_LENGTH_AT = struct.Struct(">i")


def _first_reaching(buf: bytes, offset: int) -> tuple[int, int, int] | None:
    """(position, base offset, size) in `buf` of the first batch whose last offset >= offset."""
    unpack = _HEAD.unpack_from
    position = 0
    end = len(buf) - _HEAD.size
    while position <= end:
        base, length, _, _, _, _, delta = unpack(buf, position)
        if base + delta >= offset:
            return position, base, length + LOG_OVERHEAD
        if length + LOG_OVERHEAD < RECORD_BATCH_OVERHEAD:
            return None
        position += length + LOG_OVERHEAD
    return None


def _last_boundary(buf: bytes) -> int:
    """The end of the last whole batch in `buf`, which starts at a batch boundary."""
    unpack = _LENGTH_AT.unpack_from
    position = 0
    end = len(buf)
    while position + LOG_OVERHEAD <= end:
        size = unpack(buf, position + 8)[0] + LOG_OVERHEAD
        if size < RECORD_BATCH_OVERHEAD or position + size > end:
            break
        position += size
    return position


def _skip(buffers: Sequence[bytes | memoryview], count: int) -> list[bytes | memoryview]:
    """The buffers left after a partial write of `count` bytes."""
    rest: list[bytes | memoryview] = []
    for buffer in buffers:
        length = len(buffer)
        if count >= length:
            count -= length
            continue
        rest.append(memoryview(buffer)[count:] if count else buffer)
        count = 0
    return rest
