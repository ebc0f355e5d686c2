"""LogCleaner: compaction of cleanup.policy=compact logs, keeping the latest record per key."""

from __future__ import annotations

import logging
import os
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import crc32c

from brokers.log.batch import (
    CRC_START,
    HEADER,
    LOG_APPEND_TIME,
    LOG_OVERHEAD,
    NO_TIMESTAMP,
    RECORD_BATCH_OVERHEAD,
    BatchHeader,
    Record,
    build_batch,
    decode_records,
    read_header,
)
from brokers.log.errors import CorruptRecordError
from brokers.log.log import Log
from brokers.log.segment import CLEANED_SUFFIX, RECOVERY_CHUNK, LogSegment

logger = logging.getLogger(__name__)

# Keys remembered per cleaning pass (Kafka bounds its offset map by log.cleaner.dedupe.buffer.size).
MAX_OFFSET_MAP_ENTRIES = 4_000_000


@dataclass(frozen=True, slots=True)
class LogToClean:
    """A log's cleanable range, as Kafka's LogCleanerManager sizes it up."""

    first_dirty_offset: int
    first_uncleanable_offset: int
    clean_bytes: int
    cleanable_bytes: int
    needs_compaction_now: bool

    @property
    def cleanable_ratio(self) -> float:
        total = self.clean_bytes + self.cleanable_bytes
        return self.cleanable_bytes / total if total else 0.0


@dataclass(frozen=True, slots=True)
class _Source:
    segment: LogSegment
    fd: int  # a duplicate, so the segment can be deleted from under the cleaner
    size: int


@dataclass(frozen=True, slots=True)
class CleanTask:
    """Everything the cleaner thread reads: it never touches the Log itself."""

    log: Log
    groups: tuple[tuple[_Source, ...], ...]
    dirty: tuple[_Source, ...]
    end_offset: int
    now_ms: int
    delete_retention_ms: int
    producer_last_offsets: dict[int, int]
    # Aborted transactions by producer id: (first offset, marker offset) ranges.
    aborted: dict[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    def is_aborted(self, header: BatchHeader) -> bool:
        """Whether a transactional data batch belongs to an aborted transaction."""
        if not self.aborted or not header.is_transactional or header.is_control:
            return False
        base = header.base_offset
        return any(first <= base < last for first, last in self.aborted.get(header.producer_id, ()))


@dataclass(frozen=True, slots=True)
class CleanStats:
    bytes_read: int = 0
    bytes_written: int = 0
    records_read: int = 0
    records_removed: int = 0


@dataclass(frozen=True, slots=True)
class CleanResult:
    """Cleaned segments waiting to be swapped in on the log's owning thread."""

    task: CleanTask
    cleaned: tuple[tuple[tuple[LogSegment, ...], LogSegment], ...]
    latest_delete_horizon: int
    stats: CleanStats = field(default_factory=CleanStats)


def cleanable(log: Log, now_ms: int) -> LogToClean | None:
    """The range a compacted log could be cleaned over now, or None if it is not compacted."""
    config = log.config
    if not config.compact:
        return None
    segments = log.segments
    active_base = log.active_segment.base_offset
    first_dirty = log.cleaner_checkpoint
    if first_dirty < log.log_start_offset or first_dirty > active_base:
        first_dirty = log.log_start_offset
    uncleanable = min(active_base, log.last_stable_offset)
    if config.min_compaction_lag_ms > 0:
        for segment in segments:
            if segment.base_offset >= first_dirty and (
                segment.largest_timestamp() > now_ms - config.min_compaction_lag_ms
            ):
                uncleanable = min(uncleanable, segment.base_offset)
                break
    # Whole segments only: the segment holding the first uncleanable offset stays dirty.
    bases = [s.base_offset for s in segments]
    first = max(bisect_right(bases, first_dirty) - 1, 0)
    last = bisect_right(bases, uncleanable) - 1
    dirty = list(segments[first:last]) if last > first else []
    uncleanable = bases[last] if dirty else first_dirty
    clean_bytes = sum(s.size for s in segments[:first])
    needs_now = False
    if dirty and config.max_compaction_lag_ms < 2**63 - 1:
        first_timestamp = dirty[0].rolling_timestamp
        needs_now = first_timestamp >= 0 and now_ms - first_timestamp > config.max_compaction_lag_ms
    return LogToClean(
        first_dirty_offset=bases[first] if dirty else first_dirty,
        first_uncleanable_offset=uncleanable,
        clean_bytes=clean_bytes,
        cleanable_bytes=sum(s.size for s in dirty),
        needs_compaction_now=needs_now,
    )


def should_clean(log: Log, now_ms: int) -> LogToClean | None:
    """Kafka's grabFilthiestCompactedLog test for one log."""
    plan = cleanable(log, now_ms)
    if plan is None:
        return None
    if plan.cleanable_bytes > 0 and (
        plan.needs_compaction_now or plan.cleanable_ratio > log.config.min_cleanable_dirty_ratio
    ):
        return plan
    horizon = log.latest_delete_horizon
    if horizon != NO_TIMESTAMP and horizon <= now_ms and plan.first_uncleanable_offset > 0:
        return plan
    return None


def _group(sources: list[_Source], max_bytes: int) -> list[tuple[_Source, ...]]:
    """Consecutive segments whose cleaned output fits one segment (Kafka's groupSegmentsBySize)."""
    groups: list[tuple[_Source, ...]] = []
    current: list[_Source] = []
    size = 0
    for source in sources:
        offset_span = source.segment.next_offset - (
            current[0].segment.base_offset if current else 0
        )
        if current and (size + source.size > max_bytes or offset_span > 2**31 - 1):
            groups.append(tuple(current))
            current, size = [], 0
        current.append(source)
        size += source.size
    if current:
        groups.append(tuple(current))
    return groups


def prepare(log: Log, plan: LogToClean, now_ms: int) -> CleanTask:
    """Take what the cleaner thread needs from the log (owner thread)."""
    sources: list[_Source] = []
    for segment in log.segments:
        if segment.base_offset >= plan.first_uncleanable_offset:
            break
        sources.append(_Source(segment, os.dup(segment.fd), segment.size))
    dirty = tuple(s for s in sources if s.segment.base_offset >= plan.first_dirty_offset)
    producers = {
        producer_id: entry.last_offset
        for producer_id, entry in log.producer_state.producers.items()
    }
    aborted: dict[int, list[tuple[int, int]]] = {}
    for entry in log.txn_index.entries:
        aborted.setdefault(entry.producer_id, []).append((entry.first_offset, entry.last_offset))
    return CleanTask(
        log=log,
        groups=tuple(_group(sources, log.config.segment_bytes)),
        dirty=dirty,
        end_offset=plan.first_uncleanable_offset,
        now_ms=now_ms,
        delete_retention_ms=log.config.delete_retention_ms,
        producer_last_offsets=producers,
        aborted={producer_id: tuple(ranges) for producer_id, ranges in aborted.items()},
    )


def _batches(fd: int, size: int) -> Iterator[tuple[BatchHeader, memoryview]]:
    """Every batch of a segment file with its bytes, read in large chunks."""
    position = 0
    buf = b""
    buf_start = 0
    while size - position >= RECORD_BATCH_OVERHEAD:
        relative = position - buf_start
        if relative + RECORD_BATCH_OVERHEAD > len(buf):
            buf = os.pread(fd, RECOVERY_CHUNK, position)
            buf_start, relative = position, 0
        header = BatchHeader._make(HEADER.unpack_from(buf, relative))
        batch_size = header.batch_length + LOG_OVERHEAD
        if batch_size < RECORD_BATCH_OVERHEAD or position + batch_size > size:
            raise CorruptRecordError(f"Invalid batch at position {position} while cleaning")
        if relative + batch_size > len(buf):
            buf = os.pread(fd, max(RECOVERY_CHUNK, batch_size), position)
            buf_start, relative = position, 0
        view = memoryview(buf)[relative : relative + batch_size]
        if crc32c.crc32c(view[CRC_START:]) != header.crc:
            raise CorruptRecordError(f"Corrupt batch at position {position} while cleaning")
        yield header, view
        position += batch_size


def build_offset_map(task: CleanTask) -> tuple[dict[bytes, int], int]:
    """Latest offset of every key in the dirty range; the end offset the map covers."""
    offsets: dict[bytes, int] = {}
    end = task.end_offset
    for source in task.dirty:
        if len(offsets) >= MAX_OFFSET_MAP_ENTRIES:
            end = source.segment.base_offset
            break
        for header, raw in _batches(source.fd, source.size):
            # Like Kafka, an aborted transaction's records neither count as a key's latest
            # value nor survive cleaning.
            if header.is_control or task.is_aborted(header):
                continue
            for record in decode_records(raw):
                if record.key is not None and record.offset < end:
                    offsets[record.key] = record.offset
    return offsets, end


def clean(task: CleanTask) -> CleanResult:
    """Write the cleaned segments (cleaner thread). The live log is not touched."""
    try:
        offsets, end = build_offset_map(task)
        cleaned: list[tuple[tuple[LogSegment, ...], LogSegment]] = []
        horizon = NO_TIMESTAMP
        stats = [0, 0, 0, 0]
        for group in task.groups:
            if group[0].segment.base_offset >= end:
                break
            segment, group_horizon = _clean_group(task, group, offsets, stats)
            horizon = max(horizon, group_horizon)
            cleaned.append((tuple(s.segment for s in group), segment))
        return CleanResult(
            task,
            tuple(cleaned),
            horizon,
            CleanStats(stats[0], stats[1], stats[2], stats[3]),
        )
    finally:
        for group in task.groups:
            for source in group:
                os.close(source.fd)


def _clean_group(
    task: CleanTask, group: tuple[_Source, ...], offsets: dict[bytes, int], stats: list[int]
) -> tuple[LogSegment, int]:
    log = task.log
    base = group[0].segment.base_offset
    first = group[0].segment
    path = first.log_path.with_name(first.log_path.name + CLEANED_SUFFIX)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    segment = LogSegment(log.dir, base, fd, log.config, task.now_ms)
    horizon = NO_TIMESTAMP
    now = task.now_ms

    def keep(record: Record, header: BatchHeader) -> bool:
        if record.key is None:
            return False
        latest = offsets.get(record.key)
        if latest is not None and record.offset < latest:
            return False
        if record.value is None and header.has_delete_horizon:
            return now < header.delete_horizon_ms
        return True

    try:
        for source in group:
            stats[0] += source.size
            for header, raw in _batches(source.fd, source.size):
                out = _filter_batch(task, header, raw, keep, stats)
                if out is None:
                    continue
                written = read_header(out)
                if written.has_delete_horizon:
                    horizon = max(horizon, written.delete_horizon_ms)
                segment.append(
                    [out],
                    len(out),
                    [(written.base_offset, written.last_offset, written.max_timestamp, len(out))],
                )
                stats[1] += len(out)
        segment.seal()
        segment.forget_recent()
        segment.flush()
    except BaseException:
        segment.close()
        path.unlink(missing_ok=True)
        raise
    return segment, horizon


def _filter_batch(
    task: CleanTask,
    header: BatchHeader,
    raw: memoryview,
    keep: Callable[[Record, BatchHeader], bool],
    stats: list[int],
) -> bytes | memoryview | None:
    """The batch to write for one source batch: itself, a rebuilt one, an empty header, or none.

    Rebuilt batches keep the base offset, last offset delta, producer id, epoch, base
    sequence, partition leader epoch, codec and timestamp type of the source batch.
    """
    if header.is_control:
        return raw
    records = decode_records(raw)
    if task.is_aborted(header):
        retained = []
    else:
        retained = [record for record in records if keep(record, header)]
    stats[2] += len(records)
    stats[3] += len(records) - len(retained)
    has_tombstones = any(record.value is None for record in retained)
    needs_horizon = has_tombstones and not header.has_delete_horizon
    if len(retained) == len(records) and not needs_horizon:
        return raw
    if not retained:
        # The producer's last batch keeps an empty header so its sequence number survives.
        if (
            header.producer_id >= 0
            and task.producer_last_offsets.get(header.producer_id) == header.last_offset
        ):
            return build_batch(
                [],
                base_offset=header.base_offset,
                last_offset_delta=header.last_offset_delta,
                timestamp_type=header.timestamp_type,
                log_append_time=header.max_timestamp,
                producer_id=header.producer_id,
                producer_epoch=header.producer_epoch,
                base_sequence=header.base_sequence,
                partition_leader_epoch=header.partition_leader_epoch,
                transactional=header.is_transactional,
                empty_timestamp=header.max_timestamp,
            )
        return None
    if not has_tombstones:
        horizon = NO_TIMESTAMP
    elif header.has_delete_horizon:
        horizon = header.delete_horizon_ms
    else:
        horizon = task.now_ms + task.delete_retention_ms
    return build_batch(
        retained,
        base_offset=header.base_offset,
        last_offset_delta=header.last_offset_delta,
        compression=header.compression,
        timestamp_type=header.timestamp_type,
        log_append_time=header.max_timestamp if header.timestamp_type == LOG_APPEND_TIME else -1,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        partition_leader_epoch=header.partition_leader_epoch,
        transactional=header.is_transactional,
        delete_horizon_ms=horizon,
    )


def apply(result: CleanResult) -> bool:
    """Swap a finished clean into its log (owner thread); False if the log moved on."""
    log = result.task.log
    swapped = True
    for sources, segment in result.cleaned:
        if swapped and log.replace_segments(sources, segment):
            continue
        swapped = False
        segment.close()
        cleaned = segment.log_path.with_name(segment.log_path.name + CLEANED_SUFFIX)
        cleaned.unlink(missing_ok=True)
    if swapped:
        log.cleaner_checkpoint = max(log.cleaner_checkpoint, result.task.end_offset)
        log.latest_delete_horizon = result.latest_delete_horizon
    return swapped


def clean_now(log: Log, now_ms: int | None = None, *, force: bool = False) -> CleanResult | None:
    """Plan, clean and swap on the calling thread (tests and tools)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    plan = cleanable(log, now) if force else should_clean(log, now)
    if plan is None or plan.first_uncleanable_offset <= log.log_start_offset:
        return None
    result = clean(prepare(log, plan, now))
    apply(result)
    return result


class LogCleaner:
    """Cleans one log at a time on a background thread.

    `schedule` and `complete` are called on the logs' owning thread: the first picks the
    filthiest log and hands a task to the thread, the second swaps finished work in.
    """

    def __init__(self, time: Callable[[], float] = time.time) -> None:
        self._time = time
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-cleaner")
        self._running: Future[CleanResult] | None = None
        self.completed = 0

    def schedule(self, logs: Iterable[Log], now_ms: int | None = None) -> Log | None:
        """Start cleaning the filthiest cleanable log, unless a clean is already running."""
        if self._running is not None:
            return None
        now = int(self._time() * 1000) if now_ms is None else now_ms
        best: tuple[float, Log, LogToClean] | None = None
        for log in logs:
            if log.closed:
                continue
            plan = should_clean(log, now)
            if plan is None or plan.first_uncleanable_offset <= log.log_start_offset:
                continue
            if best is None or plan.cleanable_ratio > best[0]:
                best = (plan.cleanable_ratio, log, plan)
        if best is None:
            return None
        _, log, plan = best
        self._running = self._executor.submit(clean, prepare(log, plan, now))
        return log

    def complete(self, wait: bool = False) -> list[CleanResult]:
        """Swap in a finished clean, if there is one and its log has not moved on."""
        running = self._running
        if running is None or (not wait and not running.done()):
            return []
        self._running = None
        try:
            result = running.result()
        except Exception:
            logger.exception("Log cleaning failed")
            return []
        if result.task.log.closed:
            for _, segment in result.cleaned:
                segment.close()
                segment.log_path.with_name(segment.log_path.name + CLEANED_SUFFIX).unlink(
                    missing_ok=True
                )
            return []
        if not apply(result):
            return []
        self.completed += 1
        return [result]

    def shutdown(self) -> None:
        """Finish (and drop) any running clean and stop the thread."""
        if self._running is not None:
            try:
                result = self._running.result()
            except Exception:
                logger.exception("Log cleaning failed")
            else:
                for _, segment in result.cleaned:
                    segment.close()
                    segment.log_path.with_name(segment.log_path.name + CLEANED_SUFFIX).unlink(
                        missing_ok=True
                    )
            self._running = None
        self._executor.shutdown(wait=True)
