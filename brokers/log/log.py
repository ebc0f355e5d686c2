"""Log: one partition's replica on disk — append, read, lookups, retention, truncation."""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from bisect import bisect_right
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from brokers.log.batch import (
    CODEC_NAMES,
    CONTROL_ABORT,
    CONTROL_FLAG,
    LOG_OVERHEAD,
    NO_TIMESTAMP,
    PREFIX,
    RECORD_BATCH_OVERHEAD,
    BatchHeader,
    Record,
    build_batch,
    check_header,
    count_error,
    decode_records,
    read_header,
    read_marker,
    validate_batches,
    with_log_append_time,
)
from brokers.log.checkpoints import (
    PARTITION_METADATA,
    fsync_dir,
    read_partition_metadata,
    topic_id_to_str,
    write_partition_metadata,
)
from brokers.log.config import LONG_MAX, LogConfig
from brokers.log.epoch_cache import LeaderEpochCache
from brokers.log.errors import (
    CorruptRecordError,
    InvalidProducerEpochError,
    InvalidRecordError,
    InvalidTimestampError,
    KafkaStorageError,
    OffsetOutOfRangeError,
    RecordBatchTooLargeError,
    TransactionCoordinatorFencedError,
)
from brokers.log.producer_state import (
    DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    AppendOrigin,
    BatchMetadata,
    ProducerStateManager,
)
from brokers.log.recovery import load_log, rebuild_producer_state
from brokers.log.retention import SegmentStats, segments_to_delete
from brokers.log.segment import CLEANED_SUFFIX, SWAP_SUFFIX, AppendedBatch, LogSegment
from brokers.log.txn_index import AbortedTxn, TransactionIndex

logger = logging.getLogger(__name__)

DELETE_DIR_SUFFIX = "-delete"


class AppendInfo(NamedTuple):
    """What an append did, as a Produce response reports it.

    A named tuple, not a frozen dataclass: one is built per produced batch, and a frozen
    dataclass costs five times as much to build.
    """

    base_offset: int
    last_offset: int
    max_timestamp: int
    offset_of_max_timestamp: int
    log_append_time: int
    log_start_offset: int
    record_count: int
    duplicate: bool = False


class ReadSlice(NamedTuple):
    """Whole batches in one segment file: send them with os.sendfile or read with os.pread.

    The descriptor stays valid for file.delete.delay.ms even if the segment is deleted.
    """

    fd: int
    position: int
    length: int
    first_offset: int

    def read_bytes(self) -> bytes:
        chunks: list[bytes] = []
        position = self.position
        remaining = self.length
        while remaining > 0:
            chunk = os.pread(self.fd, remaining, position)
            if not chunk:
                break
            chunks.append(chunk)
            position += len(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)


@dataclass(frozen=True, slots=True)
class AppendPolicy:
    """What appends need from a LogConfig, worked out once per config change."""

    segment_bytes: int
    segment_ms: int
    max_message_bytes: int
    log_append_time: bool
    timestamp_before_ms: int | None
    timestamp_after_ms: int | None
    compact: bool
    recompress_to: int | None
    flush_messages: int
    flush_ms: int
    inspects_batches: bool
    plain: bool  # no policy needs more than the header: the single-batch fast path applies

    @classmethod
    def of(cls, config: LogConfig) -> AppendPolicy:
        before: int | None = config.message_timestamp_before_max_ms
        after: int | None = config.message_timestamp_after_max_ms
        # The deprecated difference setting still applies where its successors are unset.
        if before == LONG_MAX:
            before = config.message_timestamp_difference_max_ms
        if after == LONG_MAX:
            after = config.message_timestamp_difference_max_ms
        before = None if before == LONG_MAX or config.log_append_time else before
        after = None if after == LONG_MAX or config.log_append_time else after
        recompress_to = (
            None
            if config.compression_type == "producer"
            else CODEC_NAMES.index(config.compression_type)
        )
        inspects = (
            before is not None or after is not None or config.compact or recompress_to is not None
        )
        return cls(
            segment_bytes=config.segment_bytes,
            segment_ms=config.segment_ms,
            max_message_bytes=config.max_message_bytes,
            log_append_time=config.log_append_time,
            timestamp_before_ms=before,
            timestamp_after_ms=after,
            compact=config.compact,
            recompress_to=recompress_to,
            flush_messages=config.flush_messages,
            flush_ms=config.flush_ms,
            inspects_batches=inspects,
            plain=not inspects and not config.log_append_time,
        )


@dataclass(frozen=True, slots=True)
class _PendingFlush:
    offset: int
    future: Future[None]


@dataclass(frozen=True, slots=True)
class _PendingDelete:
    due_ms: int
    segment: LogSegment
    paths: list[Path]


def parse_dir_name(name: str) -> tuple[str, int]:
    """`<topic>-<partition>` → (topic, partition)."""
    topic, _, partition = name.rpartition("-")
    if not topic or not partition.isdigit():
        raise KafkaStorageError(f"Found directory {name}, which is not in the form topic-partition")
    return topic, int(partition)


class Log:
    """A partition replica's log: segments, leader epochs and producer state.

    Every method is called from one thread, the owner's. Segment fsyncs after a roll run
    on the `background` executor (or inline without one) and touch only the rolled
    segment; their result (a higher recovery point) is taken in on the owner's thread.
    """

    def __init__(
        self,
        dir: Path,
        config: LogConfig,
        topic_id: uuid.UUID | None,
        *,
        segments: list[LogSegment],
        log_start_offset: int,
        log_end_offset: int,
        recovery_point: int,
        high_watermark: int | None,
        epoch_cache: LeaderEpochCache,
        producer_state: ProducerStateManager,
        txn_index: TransactionIndex,
        time: Callable[[], float],
        background: Executor | None,
    ) -> None:
        self.dir = dir
        self.topic, self.partition = parse_dir_name(dir.name)
        self.topic_id = topic_id
        self._config = config
        self._policy = AppendPolicy.of(config)
        self._segments = segments
        self._bases = [segment.base_offset for segment in segments]
        self._active = segments[-1]
        self._log_start_offset = log_start_offset
        self._log_end_offset = log_end_offset
        self._recovery_point = recovery_point
        self._high_watermark = log_start_offset
        self.epoch_cache = epoch_cache
        self.producer_state = producer_state
        self.txn_index = txn_index
        self._time = time
        self._background = background
        self._pending_flushes: list[_PendingFlush] = []
        self._pending_deletes: list[_PendingDelete] = []
        self._unflushed_records = 0
        self._last_flush_ms = self._now_ms()
        self._closed = False
        # First offset not yet compacted (Kafka's cleaner-offset-checkpoint entry).
        self.cleaner_checkpoint = log_start_offset
        # The latest delete horizon of retained tombstones: when it passes, clean again.
        self.latest_delete_horizon = NO_TIMESTAMP
        if high_watermark is not None:
            self.high_watermark = high_watermark

    @classmethod
    def open(
        cls,
        dir: Path,
        config: LogConfig,
        *,
        topic_id: uuid.UUID | None,
        recovery_point: int,
        log_start_offset: int | None,
        high_watermark: int | None,
        had_clean_shutdown: bool,
        time: Callable[[], float] = time.time,
        background: Executor | None = None,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
    ) -> Log:
        """Open (creating if needed) and recover a partition directory."""
        parse_dir_name(dir.name)
        try:
            if not dir.exists():
                dir.mkdir(parents=True)
                fsync_dir(dir.parent)
            stored_id = read_partition_metadata(dir / PARTITION_METADATA)
            if topic_id is not None and stored_id is not None and stored_id != topic_id:
                raise KafkaStorageError(
                    f"{dir} belongs to topic id {topic_id_to_str(stored_id)}, "
                    f"not {topic_id_to_str(topic_id)}"
                )
            if topic_id is not None and stored_id is None:
                write_partition_metadata(dir / PARTITION_METADATA, topic_id)
        except OSError as exc:
            raise KafkaStorageError(f"Error while opening log {dir}: {exc}") from exc
        loaded = load_log(
            dir,
            config,
            recovery_point=recovery_point,
            log_start_offset=log_start_offset,
            had_clean_shutdown=had_clean_shutdown,
            now_ms=int(time() * 1000),
            producer_id_expiration_ms=producer_id_expiration_ms,
        )
        return cls(
            dir,
            config,
            topic_id if topic_id is not None else stored_id,
            segments=loaded.segments,
            log_start_offset=loaded.log_start_offset,
            log_end_offset=loaded.log_end_offset,
            recovery_point=loaded.recovery_point,
            high_watermark=high_watermark,
            epoch_cache=loaded.epoch_cache,
            producer_state=loaded.producer_state,
            txn_index=loaded.txn_index,
            time=time,
            background=background,
        )

    # State

    @property
    def config(self) -> LogConfig:
        return self._config

    def update_config(self, config: LogConfig) -> None:
        """New settings apply from the next append, roll or retention run."""
        self._config = config
        self._policy = AppendPolicy.of(config)
        for segment in self._segments:
            segment.index_interval_bytes = config.index_interval_bytes

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        """The offset the next appended record gets."""
        return self._log_end_offset

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @high_watermark.setter
    def high_watermark(self, offset: int) -> None:
        self._high_watermark = min(max(offset, self._log_start_offset), self._log_end_offset)

    @property
    def last_stable_offset(self) -> int:
        """The high watermark, or the first offset of the oldest open transaction below it."""
        unstable = self.producer_state.first_unstable_offset
        if unstable is None:
            return self._high_watermark
        return min(unstable, self._high_watermark)

    @property
    def recovery_point(self) -> int:
        """Everything below this offset is on disk (fsynced), indexes included."""
        self._reap_flushes()
        return self._recovery_point

    @property
    def size_in_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    @property
    def segments(self) -> Sequence[LogSegment]:
        return tuple(self._segments)

    @property
    def active_segment(self) -> LogSegment:
        return self._active

    @property
    def latest_epoch(self) -> int:
        return self.epoch_cache.latest_epoch

    def end_offset_for_epoch(self, leader_epoch: int) -> tuple[int, int]:
        """(epoch, end offset) for OffsetsForLeaderEpoch, exactly as Kafka answers it."""
        return self.epoch_cache.end_offset_for(leader_epoch, self._log_end_offset)

    def maybe_assign_epoch_start_offset(self, leader_epoch: int, start_offset: int) -> None:
        """A new leader records its epoch starting at its log end offset."""
        self.epoch_cache.assign(leader_epoch, start_offset)

    def _now_ms(self) -> int:
        return int(self._time() * 1000)

    # Appending

    def append_as_leader(
        self,
        records: bytes | bytearray | memoryview,
        leader_epoch: int,
        *,
        origin: AppendOrigin = AppendOrigin.CLIENT,
    ) -> AppendInfo:
        """Validate and append a produce request's batches, assigning offsets from the log end.

        All or nothing: a bad batch anywhere raises its Kafka error and nothing is written.
        Records are never decoded unless the topic recompresses or is compacted. This is
        the produce hot path: per batch one header unpack, one CRC, and list appends.
        """
        view = memoryview(records)
        if view.itemsize != 1:
            view = view.cast("B")
        policy = self._policy
        total = len(view)
        if total > policy.segment_bytes:
            raise RecordBatchTooLargeError(
                f"Message batch size is {total} bytes in append to partition {self.topic}-"
                f"{self.partition}, which exceeds the maximum configured segment size of "
                f"{policy.segment_bytes}."
            )
        now_ms = int(self._time() * 1000)
        client = origin is AppendOrigin.CLIENT
        header = check_header(view, 0, policy.max_message_bytes)
        if header[1] + LOG_OVERHEAD == total and policy.plain and not header[5] & CONTROL_FLAG:
            return self._append_single(view, header, total, leader_epoch, now_ms, client)
        batches = validate_batches(view, policy.max_message_bytes)
        idempotent = False
        # Index of each transaction marker among the batches → its (kind, coordinator epoch)
        # (the policies below may move batches, never add or drop one).
        markers: dict[int, tuple[int, int]] = {}
        for i, (position, header) in enumerate(batches):
            if header[5] & CONTROL_FLAG:
                if client:
                    raise InvalidRecordError("Clients are not allowed to write control records")
                markers[i] = self._check_marker(
                    view[position : position + header[1] + LOG_OVERHEAD], header
                )
            if header[9] >= 0:
                idempotent = True
        if policy.inspects_batches:
            view, batches = self._apply_policies(view, batches, now_ms, client)
            total = len(view)
        if idempotent and client:
            duplicate = self.producer_state.check_append([header for _, header in batches])
            if duplicate is not None:
                return self._duplicate(duplicate)

        first = offset = self._log_end_offset
        log_append_time = policy.log_append_time
        pack = PREFIX.pack
        buffers: list[bytes | memoryview] = []
        appended: list[AppendedBatch] = []
        max_timestamp = NO_TIMESTAMP
        offset_of_max_timestamp = offset
        record_count = 0
        for position, header in batches:
            size = header[1] + LOG_OVERHEAD
            last = offset + header[6]
            if log_append_time:
                buffers.append(
                    with_log_append_time(
                        view[position : position + size], header, offset, leader_epoch, now_ms
                    )
                )
                buffers.append(view[position + RECORD_BATCH_OVERHEAD : position + size])
                timestamp = now_ms
            else:
                # Base offset and partition leader epoch lie outside the CRC: patch, no copy.
                buffers.append(pack(offset, header[1], leader_epoch))
                buffers.append(view[position + PREFIX.size : position + size])
                timestamp = header[8]
                if timestamp > max_timestamp:
                    max_timestamp = timestamp
                    offset_of_max_timestamp = last
            appended.append((offset, last, timestamp, size))
            record_count += header[12]
            offset = last + 1
        if log_append_time:
            max_timestamp = now_ms
            offset_of_max_timestamp = first

        segment = self._active
        if segment.should_roll(
            policy.segment_bytes, policy.segment_ms, total, max_timestamp, offset - 1, now_ms
        ):
            segment = self._roll(now_ms)
        if leader_epoch > self.epoch_cache.latest_epoch:
            # Before the data: an epoch starting at the log end is what a new leader records
            # anyway, so a failed write below leaves nothing inconsistent.
            self.epoch_cache.assign(leader_epoch, first)
        segment.append(buffers, total, appended)
        self._log_end_offset = offset
        if idempotent:
            update = self.producer_state.update
            for i, ((_, header), (base, _, timestamp, _)) in enumerate(
                zip(batches, appended, strict=True)
            ):
                if header[9] >= 0:
                    marker = markers.get(i)
                    ended = update(
                        header._replace(base_offset=base, max_timestamp=timestamp),
                        -1 if marker is None else marker[1],
                    )
                    if ended >= 0 and marker is not None:
                        self._end_transaction(marker[0], header, ended, base)
        self._unflushed_records += record_count
        if (
            self._pending_flushes
            or self._unflushed_records >= policy.flush_messages
            or now_ms - self._last_flush_ms >= policy.flush_ms
        ):
            self._after_append(now_ms)
        return AppendInfo(
            base_offset=first,
            last_offset=offset - 1,
            max_timestamp=max_timestamp,
            offset_of_max_timestamp=offset_of_max_timestamp,
            log_append_time=now_ms if log_append_time else NO_TIMESTAMP,
            log_start_offset=self._log_start_offset,
            record_count=record_count,
        )

    def _append_single(
        self,
        view: memoryview,
        header: BatchHeader,
        size: int,
        leader_epoch: int,
        now_ms: int,
        client: bool,
    ) -> AppendInfo:
        """The produce hot path: one batch (what Kafka clients send per partition), CreateTime,
        no policy that needs the records. Same rules as the general path, fewer objects."""
        count = header[12]
        delta = header[6]
        if count != delta + 1:
            raise count_error(header)
        producer_id = header[9]
        if producer_id >= 0 and client:
            duplicate = self.producer_state.check_append((header,))
            if duplicate is not None:
                return self._duplicate(duplicate)
        first = self._log_end_offset
        last = first + delta
        timestamp = header[8]
        policy = self._policy
        segment = self._active
        if segment.should_roll(
            policy.segment_bytes, policy.segment_ms, size, timestamp, last, now_ms
        ):
            segment = self._roll(now_ms)
        if leader_epoch > self.epoch_cache.latest_epoch:
            self.epoch_cache.assign(leader_epoch, first)
        # Base offset and partition leader epoch lie outside the CRC: patch, no copy.
        segment.append_one(
            PREFIX.pack(first, header[1], leader_epoch),
            view[PREFIX.size :],
            size,
            first,
            last,
            timestamp,
        )
        self._log_end_offset = last + 1
        if producer_id >= 0:
            self.producer_state.update(header._replace(base_offset=first))
        self._unflushed_records += count
        if (
            self._pending_flushes
            or self._unflushed_records >= policy.flush_messages
            or now_ms - self._last_flush_ms >= policy.flush_ms
        ):
            self._after_append(now_ms)
        return AppendInfo(first, last, timestamp, last, NO_TIMESTAMP, self._log_start_offset, count)

    def _check_marker(self, batch: memoryview, header: BatchHeader) -> tuple[int, int]:
        """A marker from an older producer epoch, or from a coordinator older than the one
        that wrote this producer's last marker, is stale. Returns its kind and coordinator
        epoch."""
        marker = read_marker(batch)
        coordinator_epoch = marker[1]
        entry = self.producer_state.get(header.producer_id)
        if entry is None:
            return marker
        if header.producer_epoch < entry.producer_epoch:
            raise InvalidProducerEpochError(
                f"Transaction marker of producer {header.producer_id} has epoch "
                f"{header.producer_epoch}, older than the current epoch {entry.producer_epoch}"
            )
        if coordinator_epoch < entry.coordinator_epoch:
            raise TransactionCoordinatorFencedError(
                f"Transaction marker of producer {header.producer_id} comes from coordinator "
                f"epoch {coordinator_epoch}, older than epoch {entry.coordinator_epoch}"
            )
        return marker

    def _end_transaction(
        self, kind: int, header: BatchHeader, first_offset: int, marker_offset: int
    ) -> None:
        """A marker of `kind` ended the producer's transaction begun at `first_offset`:
        index an abort."""
        if kind == CONTROL_ABORT:
            self.txn_index.append(
                AbortedTxn(header.producer_id, first_offset, marker_offset, self.last_stable_offset)
            )

    def aborted_transactions(self, start: int, upper: int) -> tuple[tuple[int, int], ...]:
        """What a read_committed fetch of [start, upper) returns as aborted transactions."""
        return self.txn_index.collect(max(start, self._log_start_offset), upper)

    def _duplicate(self, duplicate: BatchMetadata) -> AppendInfo:
        """A retried batch: its original offsets, nothing appended."""
        return AppendInfo(
            base_offset=duplicate.first_offset,
            last_offset=duplicate.last_offset,
            max_timestamp=duplicate.timestamp,
            offset_of_max_timestamp=duplicate.last_offset,
            log_append_time=NO_TIMESTAMP,
            log_start_offset=self._log_start_offset,
            record_count=duplicate.offset_delta + 1,
            duplicate=True,
        )

    def _apply_policies(
        self,
        view: memoryview,
        batches: list[tuple[int, BatchHeader]],
        now_ms: int,
        client: bool,
    ) -> tuple[memoryview, list[tuple[int, BatchHeader]]]:
        """The topic policies that need more than headers: timestamp bounds, keys on
        compacted topics, and recompression to compression.type."""
        policy = self._policy
        if policy.timestamp_before_ms is not None or policy.timestamp_after_ms is not None:
            for _, header in batches:
                self._check_timestamps(header, now_ms)
        if policy.compact and client:
            for position, header in batches:
                if header.is_control:
                    continue
                batch = view[position : position + header.batch_length + LOG_OVERHEAD]
                if any(record.key is None for record in decode_records(batch)):
                    raise InvalidRecordError(
                        f"Compacted topic cannot accept message without key in topic partition "
                        f"{self.topic}-{self.partition}."
                    )
        if policy.recompress_to is not None:
            return self._recompress(view, batches, policy.recompress_to)
        return view, batches

    def append_as_follower(self, records: bytes | bytearray | memoryview) -> AppendInfo:
        """Append replicated batches as they are: offsets and leader epochs kept.

        Checks framing, CRC and that offsets increase from the log end offset.
        """
        view = memoryview(records).cast("B")
        config = self._config
        headers: list[BatchHeader] = []
        markers: dict[int, int] = {}
        position = 0
        expected = self._log_end_offset
        while position < len(view):
            header = check_header(view, position, config.max_message_bytes)
            if header.base_offset < expected:
                raise CorruptRecordError(
                    f"Out of order offsets found in append to {self.topic}-{self.partition}: "
                    f"batch at offset {header.base_offset}, expected at least {expected}"
                )
            if header[5] & CONTROL_FLAG:
                markers[header.base_offset] = position
            headers.append(header)
            expected = header.next_offset
            position += header.batch_length + LOG_OVERHEAD
        now_ms = self._now_ms()
        if not headers:
            return AppendInfo(
                self._log_end_offset,
                self._log_end_offset - 1,
                NO_TIMESTAMP,
                -1,
                NO_TIMESTAMP,
                self._log_start_offset,
                0,
            )
        if len(view) > config.segment_bytes:
            raise RecordBatchTooLargeError(
                f"Message batch size is {len(view)} bytes in append to partition {self.topic}-"
                f"{self.partition}, which exceeds the maximum configured segment size of "
                f"{config.segment_bytes}."
            )
        appended: list[AppendedBatch] = []
        max_timestamp = NO_TIMESTAMP
        offset_of_max_timestamp = headers[0].base_offset
        record_count = 0
        for header in headers:
            last = header.last_offset
            appended.append((header.base_offset, last, header.max_timestamp, header.size))
            if header.max_timestamp > max_timestamp:
                max_timestamp = header.max_timestamp
                offset_of_max_timestamp = last
            record_count += header.records_count
        segment = self._active
        policy = self._policy
        if segment.should_roll(
            policy.segment_bytes, policy.segment_ms, len(view), max_timestamp, expected - 1, now_ms
        ):
            segment = self._roll(now_ms, headers[0].base_offset)
        for header in headers:
            epoch = header.partition_leader_epoch
            if epoch >= 0 and epoch > self.epoch_cache.latest_epoch:
                self.epoch_cache.assign(epoch, header.base_offset)
        segment.append([view], len(view), appended)
        if markers:
            self._update_with_markers(view, headers, markers)
        else:
            self.producer_state.update_all(headers)
        self._log_end_offset = expected
        self.producer_state.last_map_offset = expected
        self._unflushed_records += record_count
        self._after_append(now_ms)
        return AppendInfo(
            base_offset=headers[0].base_offset,
            last_offset=expected - 1,
            max_timestamp=max_timestamp,
            offset_of_max_timestamp=offset_of_max_timestamp,
            log_append_time=NO_TIMESTAMP,
            log_start_offset=self._log_start_offset,
            record_count=record_count,
        )

    def _update_with_markers(
        self, view: memoryview, headers: list[BatchHeader], markers: dict[int, int]
    ) -> None:
        """Replicated batches with transaction markers: the follower indexes aborts too."""
        update = self.producer_state.update
        for header in headers:
            if header.producer_id < 0:
                continue
            position = markers.get(header.base_offset)
            if position is None:
                update(header)
                continue
            kind, coordinator_epoch = read_marker(view[position : position + header.size])
            ended = update(header, coordinator_epoch)
            if ended >= 0:
                self._end_transaction(kind, header, ended, header.base_offset)

    def _check_timestamps(self, header: BatchHeader, now_ms: int) -> None:
        """message.timestamp.before/after.max.ms against the batch's base and max timestamps."""
        policy = self._policy
        before = LONG_MAX if policy.timestamp_before_ms is None else policy.timestamp_before_ms
        after = LONG_MAX if policy.timestamp_after_ms is None else policy.timestamp_after_ms
        for timestamp in (header.base_timestamp, header.max_timestamp):
            if timestamp == NO_TIMESTAMP:
                continue
            if now_ms - timestamp > before or timestamp - now_ms > after:
                raise InvalidTimestampError(
                    f"Timestamp {timestamp} of message with offset {header.base_offset} is out of "
                    f"range. The timestamp should be within [{now_ms - before}, {now_ms + after}]"
                )

    def _recompress(
        self, view: memoryview, batches: list[tuple[int, BatchHeader]], target: int
    ) -> tuple[memoryview, list[tuple[int, BatchHeader]]]:
        """Rewrite batches whose codec differs from compression.type (off the default path)."""
        if all(header.compression == target or header.is_control for _, header in batches):
            return view, batches
        config = self._config
        level = {
            1: config.compression_gzip_level,
            3: config.compression_lz4_level,
            4: config.compression_zstd_level,
        }.get(target)
        parts: list[bytes] = []
        for position, header in batches:
            raw = view[position : position + header.batch_length + LOG_OVERHEAD]
            if header.compression == target or header.is_control:
                parts.append(bytes(raw))
                continue
            parts.append(
                build_batch(
                    decode_records(raw),
                    base_offset=header.base_offset,
                    last_offset_delta=header.last_offset_delta,
                    compression=target,
                    compression_level=level,
                    producer_id=header.producer_id,
                    producer_epoch=header.producer_epoch,
                    base_sequence=header.base_sequence,
                    partition_leader_epoch=header.partition_leader_epoch,
                    transactional=header.is_transactional,
                )
            )
        rebuilt = memoryview(b"".join(parts))
        return rebuilt, validate_batches(rebuilt, self._policy.max_message_bytes)

    def _after_append(self, now_ms: int) -> None:
        """Take in finished background flushes; flush by flush.messages / flush.ms."""
        if self._pending_flushes and self._pending_flushes[0].future.done():
            self._reap_flushes()
        policy = self._policy
        if (
            self._unflushed_records >= policy.flush_messages
            or now_ms - self._last_flush_ms >= policy.flush_ms
        ):
            self.flush()

    # Segments

    def roll(self) -> LogSegment:
        """Start a new active segment at the log end offset (if the active one has data)."""
        return self._roll(self._now_ms())

    def _roll(self, now_ms: int, base_offset: int | None = None) -> LogSegment:
        active: LogSegment | None = self._active
        new_base = max(self._log_end_offset, base_offset or 0)
        if self._active.is_empty:
            if self._active.base_offset == new_base:
                self._active.created_ms = now_ms
                return self._active
            # An empty segment would only sit below the new one: retire it instead.
            self._reap_flushes(wait=True)
            self._segments.pop()
            self._bases.pop()
            self._retire([self._active], now_ms)
            active = None
        else:
            self._active.seal()
        segment = LogSegment.create(self.dir, new_base, self._config, now_ms)
        self._segments.append(segment)
        self._bases.append(new_base)
        self._active = segment
        if len(self._segments) >= 3:
            self._segments[-3].forget_recent()
        snapshot: Path | None = None
        try:
            self.producer_state.last_map_offset = new_base
            snapshot = self.producer_state.write_snapshot(
                new_base, self.producer_state.snapshot_bytes(), sync=False
            )
        except OSError as exc:
            logger.warning("Could not write producer snapshot for %s: %s", self.dir, exc)
        self._schedule_flush(new_base, active, snapshot)
        return segment

    def _schedule_flush(
        self, offset: int, segment: LogSegment | None, snapshot: Path | None
    ) -> None:
        """fsync a rolled segment, its indexes and the new files, then let the recovery point
        pass it: in the background when an executor was given."""
        dir = self.dir

        def flush() -> None:
            if segment is not None:
                segment.flush()
                segment.flush_indexes()
            if snapshot is not None and snapshot.exists():
                fd = os.open(snapshot, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            fsync_dir(dir)

        if self._background is None:
            try:
                flush()
            except (OSError, KafkaStorageError) as exc:
                logger.warning("Flush of %s after roll failed: %s", dir, exc)
                return
            self._recovery_point = max(self._recovery_point, offset)
            return
        self._pending_flushes.append(_PendingFlush(offset, self._background.submit(flush)))

    def _reap_flushes(self, wait: bool = False) -> None:
        while self._pending_flushes:
            pending = self._pending_flushes[0]
            if not wait and not pending.future.done():
                return
            self._pending_flushes.pop(0)
            try:
                pending.future.result()
            except (OSError, KafkaStorageError) as exc:
                logger.warning("Background flush of %s failed: %s", self.dir, exc)
                continue
            self._recovery_point = max(self._recovery_point, pending.offset)

    def _retire(self, segments: Sequence[LogSegment], now_ms: int) -> None:
        """Rename segments to `.deleted`; their files go after file.delete.delay.ms so that
        descriptors already handed out in ReadSlices stay readable."""
        due = now_ms + self._config.file_delete_delay_ms
        for segment in segments:
            try:
                paths = segment.rename_to_deleted()
            except OSError as exc:
                raise KafkaStorageError(f"Error while deleting {segment.log_path}: {exc}") from exc
            self._pending_deletes.append(_PendingDelete(due, segment, paths))

    def delete_expired_files(self, now_ms: int | None = None) -> None:
        """Close and unlink retired segments whose file.delete.delay.ms has passed."""
        now = self._now_ms() if now_ms is None else now_ms
        keep: list[_PendingDelete] = []
        for pending in self._pending_deletes:
            if pending.due_ms > now:
                keep.append(pending)
                continue
            pending.segment.close()
            for path in pending.paths:
                path.unlink(missing_ok=True)
        self._pending_deletes = keep

    def _delete_leading_segments(self, count: int, now_ms: int) -> int:
        self._reap_flushes(wait=True)
        if count >= len(self._segments):
            self._roll(now_ms)
            count = len(self._segments) - 1
        doomed = self._segments[:count]
        del self._segments[:count]
        del self._bases[:count]
        self._retire(doomed, now_ms)
        first_base = self._segments[0].base_offset
        self._increment_log_start_offset(first_base)
        self._recovery_point = max(self._recovery_point, first_base)
        self.producer_state.delete_snapshots_before(first_base)
        return count

    def _increment_log_start_offset(self, offset: int) -> None:
        if offset <= self._log_start_offset:
            return
        self._log_start_offset = offset
        self._high_watermark = max(self._high_watermark, offset)
        self.cleaner_checkpoint = max(self.cleaner_checkpoint, offset)
        self.epoch_cache.truncate_from_start(offset)
        self.txn_index.trim_before(offset)

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Delete whole segments past retention.ms or retention.bytes, or wholly below the log
        start offset; returns how many were deleted."""
        now = self._now_ms() if now_ms is None else now_ms
        stats = [SegmentStats(s.base_offset, s.size, s.largest_timestamp()) for s in self._segments]
        decision = segments_to_delete(
            stats,
            self._config,
            now_ms=now,
            log_start_offset=self._log_start_offset,
            log_end_offset=self._log_end_offset,
            high_watermark=self._high_watermark,
        )
        if decision.count == 0:
            return 0
        logger.info(
            "Deleting %d segment(s) of %s-%s: %s",
            decision.count,
            self.topic,
            self.partition,
            decision.reason,
        )
        return self._delete_leading_segments(decision.count, now)

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: move the log start offset up to `offset` (-1: the high watermark)
        and delete the segments wholly below it; returns the new log start offset."""
        if offset == -1:
            offset = self._high_watermark
        if offset > self._high_watermark or offset < 0:
            raise OffsetOutOfRangeError(
                f"Cannot increment the log start offset to {offset} of partition "
                f"{self.topic}-{self.partition} since it is larger than the high watermark "
                f"{self._high_watermark}"
            )
        self._increment_log_start_offset(offset)
        now = self._now_ms()
        count = 0
        while count + 1 < len(self._segments) and self._bases[count + 1] <= offset:
            count += 1
        if count:
            self._delete_leading_segments(count, now)
        return self._log_start_offset

    def roll_if_due(self, now_ms: int | None = None) -> bool:
        """Roll an active segment older than segment.ms even with no append coming."""
        now = self._now_ms() if now_ms is None else now_ms
        active = self._active
        policy = self._policy
        if active.is_empty or not active.should_roll(
            policy.segment_bytes, policy.segment_ms, 0, now, self._log_end_offset - 1, now
        ):
            return False
        self._roll(now)
        return True

    # Reading

    def read(
        self,
        start_offset: int,
        max_bytes: int,
        *,
        max_offset: int | None = None,
        min_one_batch: bool = True,
    ) -> ReadSlice | None:
        """Whole batches from the one containing `start_offset`, within one segment.

        No batch containing `max_offset` or later is included (pass the high watermark for
        consumers). At most `max_bytes` unless `min_one_batch` and the first batch is larger.
        None when there is nothing to read yet.
        """
        if start_offset < self._log_start_offset or start_offset > self._log_end_offset:
            raise OffsetOutOfRangeError(
                f"Received request for offset {start_offset} for partition {self.topic}-"
                f"{self.partition}, but we only have log segments in the range "
                f"{self._log_start_offset} to {self._log_end_offset}."
            )
        if start_offset == self._log_end_offset:
            return None
        if max_offset is not None and start_offset >= max_offset:
            return None
        segments = self._segments
        i = max(bisect_right(self._bases, start_offset) - 1, 0)
        while i < len(segments):
            segment = segments[i]
            found = segment.read(start_offset, max_bytes, max_offset, min_one_batch)
            if found is not None:
                start, end, first_offset = found
                if end <= start:
                    return None
                return ReadSlice(segment.fd, start, end - start, first_offset)
            i += 1
        return None

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= `timestamp` (ListOffsets).

        The segment comes from its largest timestamp, the batch from the time and offset
        indexes, and only that one batch is decoded for the exact record.
        """
        for segment in self._segments:
            if segment.largest_timestamp() < timestamp or segment.is_empty:
                continue
            _, indexed_offset = segment.time_index.lookup(timestamp)
            _, position = segment.index.lookup(indexed_offset)
            for at, header in segment.headers(position):
                if header.max_timestamp < timestamp or header.last_offset < self._log_start_offset:
                    continue
                for record in self._records_at(segment, at, header):
                    if record.timestamp >= timestamp and record.offset >= self._log_start_offset:
                        return record.offset, record.timestamp
        return None

    def max_timestamp(self) -> tuple[int, int]:
        """(offset, timestamp) of the record with the largest timestamp; (-1, -1) if none."""
        best: LogSegment | None = None
        for segment in self._segments:
            if segment.max_timestamp >= 0 and (
                best is None or segment.max_timestamp > best.max_timestamp
            ):
                best = segment
        if best is None:
            return -1, NO_TIMESTAMP
        found = best.find(best.offset_of_max_timestamp)
        if found is not None:
            header = read_header(os.pread(best.fd, RECORD_BATCH_OVERHEAD, found[0]))
            for record in self._records_at(best, found[0], header):
                if record.timestamp == best.max_timestamp:
                    return record.offset, record.timestamp
        return best.offset_of_max_timestamp, best.max_timestamp

    @staticmethod
    def _records_at(segment: LogSegment, position: int, header: BatchHeader) -> list[Record]:
        return decode_records(os.pread(segment.fd, header.size, position))

    # Compaction

    def replace_segments(self, sources: Sequence[LogSegment], cleaned: LogSegment) -> bool:
        """Swap a cleaned segment in for the segments it was made from (owner thread only).

        The cleaned file (`<base>.log.cleaned`, already fsynced) is renamed `.swap` — the
        point after which recovery completes the swap — then the sources are retired and the
        swap file becomes `<base>.log`. Returns False, changing nothing, if the sources are no
        longer exactly part of this log (truncated, deleted or grown since).
        """
        if self._closed or not sources:
            return False
        try:
            first = next(i for i, s in enumerate(self._segments) if s is sources[0])
        except StopIteration:
            return False
        current = self._segments[first : first + len(sources)]
        if (
            len(current) != len(sources)
            or any(a is not b for a, b in zip(current, sources, strict=True))
            or any(segment is self._active for segment in sources)
        ):
            return False
        self._reap_flushes(wait=True)
        base = sources[0].base_offset
        cleaned_path = self.dir / (cleaned.log_path.name + CLEANED_SUFFIX)
        swap_path = self.dir / (cleaned.log_path.name + SWAP_SUFFIX)
        try:
            os.rename(cleaned_path, swap_path)
            fsync_dir(self.dir)
            self._retire(sources, self._now_ms())
            os.rename(swap_path, cleaned.log_path)
            cleaned.flush_indexes()
            fsync_dir(self.dir)
        except OSError as exc:
            raise KafkaStorageError(f"Error while swapping cleaned segment {base}: {exc}") from exc
        self._segments[first : first + len(sources)] = [cleaned]
        self._bases[first : first + len(sources)] = [base]
        return True

    # Truncation

    def truncate_to(self, offset: int) -> None:
        """Drop every record at or above `offset` (a follower matching its leader)."""
        if offset < 0:
            raise OffsetOutOfRangeError(f"Cannot truncate partition to a negative offset {offset}")
        if offset >= self._log_end_offset:
            return
        self._reap_flushes(wait=True)
        if offset < self._segments[0].base_offset:
            self.truncate_fully_and_start_at(offset)
            return
        now = self._now_ms()
        doomed: list[LogSegment] = []
        while len(self._segments) > 1 and self._segments[-1].base_offset > offset:
            doomed.append(self._segments.pop())
            self._bases.pop()
        self._retire(doomed, now)
        self._active = self._segments[-1]
        dropped = self._active.truncate_to(offset)
        new_end = offset
        if dropped is not None and dropped[0] < offset:
            # The offset fell inside a batch: the whole batch went.
            new_end = dropped[0]
        self._log_end_offset = new_end
        self._log_start_offset = min(self._log_start_offset, new_end)
        self._high_watermark = min(self._high_watermark, new_end)
        self._recovery_point = min(self._recovery_point, new_end)
        self.cleaner_checkpoint = min(self.cleaner_checkpoint, new_end)
        self.epoch_cache.truncate_from_end(new_end)
        rebuild_producer_state(
            self.producer_state,
            self.txn_index,
            self._segments,
            self._log_start_offset,
            new_end,
            now,
        )

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Drop the whole log and start empty at `offset` (a follower far behind its leader)."""
        self._reap_flushes(wait=True)
        now = self._now_ms()
        doomed = list(self._segments)
        self._retire(doomed, now)
        segment = LogSegment.create(self.dir, offset, self._config, now)
        self._segments = [segment]
        self._bases = [offset]
        self._active = segment
        self._log_start_offset = offset
        self._log_end_offset = offset
        self._high_watermark = offset
        self._recovery_point = offset
        self.cleaner_checkpoint = offset
        self.epoch_cache.clear()
        self.producer_state.clear()
        self.producer_state.delete_snapshots_after(-1)
        self.txn_index.clear()
        self.producer_state.last_map_offset = offset
        fsync_dir(self.dir)

    # Durability and lifecycle

    def flush(self, up_to: int | None = None) -> None:
        """fsync everything below `up_to` (default: the log end) and advance the recovery point."""
        self._reap_flushes(wait=True)
        target = self._log_end_offset if up_to is None else min(up_to, self._log_end_offset)
        now = self._now_ms()
        if target > self._recovery_point:
            first = max(bisect_right(self._bases, self._recovery_point) - 1, 0)
            for segment in self._segments[first:]:
                if segment.base_offset >= target and segment is not self._segments[first]:
                    break
                segment.flush()
                if segment is not self._active and not segment.indexes_persisted:
                    segment.flush_indexes()
            try:
                fsync_dir(self.dir)
            except OSError as exc:
                raise KafkaStorageError(f"Error while flushing {self.dir}: {exc}") from exc
            self._recovery_point = target
        if target >= self._log_end_offset:
            self._unflushed_records = 0
        self._last_flush_ms = now

    def flush_if_due(self, now_ms: int | None = None) -> None:
        """flush.ms: fsync if that long has passed since the last flush."""
        now = self._now_ms() if now_ms is None else now_ms
        if now - self._last_flush_ms >= self._config.flush_ms:
            self.flush()

    def expire_producers(self, now_ms: int | None = None) -> None:
        self.producer_state.remove_expired(self._now_ms() if now_ms is None else now_ms)

    def close(self) -> None:
        """Write indexes and a producer snapshot so the next open trusts them, close files."""
        if self._closed:
            return
        self._reap_flushes(wait=True)
        self._active.seal()
        try:
            for segment in self._segments:
                if segment is self._active or not segment.indexes_persisted:
                    segment.flush_indexes()
            self.producer_state.last_map_offset = self._log_end_offset
            self.producer_state.take_snapshot()
        finally:
            for segment in self._segments:
                segment.close()
            self.delete_expired_files(now_ms=2**62)
            self._closed = True

    def delete(self) -> None:
        """Remove the partition: rename the directory to `<dir>.<uuid>-delete` and delete it.

        Descriptors already handed out in ReadSlices stay readable for file.delete.delay.ms;
        call delete_expired_files until has_pending_deletes is False to close them.
        """
        self._reap_flushes(wait=True)
        due = self._now_ms() + self._config.file_delete_delay_ms
        self._pending_deletes.extend(_PendingDelete(due, s, []) for s in self._segments)
        self._closed = True
        target = self.dir.with_name(f"{self.dir.name}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}")
        try:
            os.rename(self.dir, target)
            fsync_dir(self.dir.parent)
            shutil.rmtree(target)
        except OSError as exc:
            raise KafkaStorageError(f"Error while deleting log {self.dir}: {exc}") from exc

    @property
    def has_pending_deletes(self) -> bool:
        return bool(self._pending_deletes)

    @property
    def closed(self) -> bool:
        return self._closed

    def __repr__(self) -> str:
        return (
            f"Log({self.topic}-{self.partition}, start={self._log_start_offset}, "
            f"end={self._log_end_offset}, hw={self._high_watermark}, "
            f"segments={len(self._segments)})"
        )
