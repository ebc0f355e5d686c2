"""LogLoader: open a partition directory and recover it to a consistent log after any stop."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from brokers.log.batch import CONTROL_ABORT, BatchHeader, control_type
from brokers.log.checkpoints import fsync_dir
from brokers.log.config import LogConfig
from brokers.log.epoch_cache import LeaderEpochCache
from brokers.log.errors import CorruptRecordError, KafkaStorageError
from brokers.log.producer_state import ProducerStateManager
from brokers.log.segment import (
    CLEANED_SUFFIX,
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    SWAP_SUFFIX,
    TIME_INDEX_SUFFIX,
    LogSegment,
    file_name,
)
from brokers.log.txn_index import AbortedTxn, TransactionIndex

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedLog:
    """A partition's state once its directory has been loaded."""

    segments: list[LogSegment]
    log_start_offset: int
    log_end_offset: int
    recovery_point: int
    epoch_cache: LeaderEpochCache
    producer_state: ProducerStateManager
    txn_index: TransactionIndex
    recovered_segments: int


def _remove_leftovers(dir: Path) -> list[Path]:
    """Delete what an interrupted delete, clean or checkpoint left; return pending swaps."""
    swaps: list[Path] = []
    for path in dir.iterdir():
        name = path.name
        if name.endswith((DELETED_SUFFIX, CLEANED_SUFFIX, ".tmp")):
            path.unlink(missing_ok=True)
        elif name.endswith(LOG_SUFFIX + SWAP_SUFFIX):
            swaps.append(path)
        elif name.endswith(SWAP_SUFFIX):
            path.unlink(missing_ok=True)
    return sorted(swaps)


def _base_offset(name: str, suffix: str) -> int | None:
    stem = name[: -len(suffix)]
    return int(stem) if name.endswith(suffix) and stem.isdigit() else None


def _complete_swaps(dir: Path, swaps: list[Path], config: LogConfig, now_ms: int) -> None:
    """A cleaned segment renamed to `.swap` had replaced the segments in its offset range:
    finish that replacement (Kafka's LogLoader does the same)."""
    for swap in swaps:
        base = _base_offset(swap.name, LOG_SUFFIX + SWAP_SUFFIX)
        if base is None:
            swap.unlink()
            continue
        fd = os.open(swap, os.O_RDWR)
        probe = LogSegment(dir, base, fd, config, now_ms)
        try:
            probe.recover()
            end = probe.next_offset
        finally:
            probe.close()
        for path in dir.iterdir():
            offset = _base_offset(path.name, LOG_SUFFIX)
            if offset is not None and base <= offset < end:
                for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX):
                    (dir / file_name(offset, suffix)).unlink(missing_ok=True)
        os.rename(swap, dir / file_name(base, LOG_SUFFIX))
        fsync_dir(dir)


def load_log(
    dir: Path,
    config: LogConfig,
    *,
    recovery_point: int,
    log_start_offset: int | None,
    had_clean_shutdown: bool,
    now_ms: int,
    producer_id_expiration_ms: int,
) -> LoadedLog:
    """Kafka's LogLoader.

    After a clean shutdown the index files are trusted once the tail of each segment checks
    out against them. Otherwise every segment from the one holding the recovery point on is
    validated batch by batch (framing, magic, CRC, increasing offsets), cut at the first
    invalid byte, later segments deleted, and its indexes rebuilt; leader epochs and
    producer state are rebuilt to match.
    """
    try:
        return _load(
            dir,
            config,
            recovery_point,
            log_start_offset,
            had_clean_shutdown,
            now_ms,
            producer_id_expiration_ms,
        )
    except OSError as exc:
        raise KafkaStorageError(f"Error while loading log {dir}: {exc}") from exc


def _load(
    dir: Path,
    config: LogConfig,
    recovery_point: int,
    log_start_checkpoint: int | None,
    had_clean_shutdown: bool,
    now_ms: int,
    producer_id_expiration_ms: int,
) -> LoadedLog:
    swaps = _remove_leftovers(dir)
    _complete_swaps(dir, swaps, config, now_ms)
    bases = sorted(
        offset
        for path in dir.iterdir()
        if (offset := _base_offset(path.name, LOG_SUFFIX)) is not None
    )
    for path in dir.iterdir():
        for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
            offset = _base_offset(path.name, suffix)
            if offset is not None and offset not in bases:
                path.unlink()

    epoch_cache = LeaderEpochCache.load(dir)
    stored_epochs = epoch_cache.entries

    def learn_epoch(header: BatchHeader) -> None:
        epoch = header.partition_leader_epoch
        if epoch >= 0 and epoch > epoch_cache.latest_epoch:
            epoch_cache.assign(epoch, header.base_offset, persist=False)

    segments: list[LogSegment] = []
    recovered: list[LogSegment] = []
    for i, base in enumerate(bases):
        segment = LogSegment.open(dir, base, config, now_ms)
        segments.append(segment)
        following = bases[i + 1] if i + 1 < len(bases) else None
        unflushed = following is None or following > recovery_point
        needs_recovery = unflushed and not had_clean_shutdown
        if not needs_recovery:
            try:
                segment.load_indexes()
                if following is not None and segment.next_offset > following:
                    raise CorruptRecordError(f"Segment {base} overlaps segment {following}")
            except (OSError, CorruptRecordError) as exc:
                logger.warning("Rebuilding indexes of %s: %s", segment.log_path, exc)
                needs_recovery = True
        if needs_recovery:
            recovered.append(segment)
            truncated = segment.recover(learn_epoch)
            if truncated:
                logger.warning(
                    "Truncated %d invalid bytes at the end of %s", truncated, segment.log_path
                )
                for later in bases[i + 1 :]:
                    for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX):
                        (dir / file_name(later, suffix)).unlink(missing_ok=True)
                break

    log_start_offset = max(log_start_checkpoint or 0, segments[0].base_offset if segments else 0)
    log_end_offset = segments[-1].next_offset if segments else log_start_offset
    if log_end_offset < log_start_offset:
        # Everything below the checkpointed log start is gone; start an empty log there.
        for segment in segments:
            segment.close()
            for path in segment.files:
                path.unlink(missing_ok=True)
        segments = []
        recovered = []
        log_end_offset = log_start_offset
    if not segments:
        segments.append(LogSegment.create(dir, log_start_offset, config, now_ms))
        fsync_dir(dir)

    epoch_cache.truncate_from_end(log_end_offset, persist=False)
    epoch_cache.truncate_from_start(log_start_offset, persist=False)
    if epoch_cache.entries != stored_epochs:
        epoch_cache.flush()

    producer_state = ProducerStateManager(dir, producer_id_expiration_ms)
    txn_index = TransactionIndex(dir)
    txn_index.load()
    rebuild_producer_state(
        producer_state, txn_index, segments, log_start_offset, log_end_offset, now_ms
    )

    if recovered:
        for segment in recovered:
            segment.flush()
            if segment is not segments[-1]:
                segment.seal()
                segment.flush_indexes()
        fsync_dir(dir)
        recovery_point = log_end_offset
    return LoadedLog(
        segments=segments,
        log_start_offset=log_start_offset,
        log_end_offset=log_end_offset,
        recovery_point=min(max(recovery_point, log_start_offset), log_end_offset),
        epoch_cache=epoch_cache,
        producer_state=producer_state,
        txn_index=txn_index,
        recovered_segments=len(recovered),
    )


def rebuild_producer_state(
    producer_state: ProducerStateManager,
    txn_index: TransactionIndex,
    segments: Sequence[LogSegment],
    log_start_offset: int,
    log_end_offset: int,
    now_ms: int,
) -> None:
    """Load the newest snapshot at or below the log end and replay batch headers after it.

    The aborted-transaction index is rebuilt from the same point: its entries for markers at
    or after the snapshot are dropped and the replayed ABORT markers add them again.
    """
    producer_state.delete_snapshots_after(log_end_offset)
    snapshot = producer_state.load_snapshot(log_end_offset, now_ms)
    start = max(snapshot if snapshot is not None else log_start_offset, log_start_offset)
    txn_index.truncate_to(start)
    txn_index.trim_before(log_start_offset)
    if start < log_end_offset:
        for segment in segments:
            if segment.next_offset <= start:
                continue
            found = segment.find(start)
            if found is None:
                continue
            for position, header in segment.headers(found[0]):
                if header.producer_id >= 0:
                    first = producer_state.update(header)
                    if first >= 0 and header.is_control:
                        batch = os.pread(segment.fd, header.size, position)
                        if control_type(batch) == CONTROL_ABORT:
                            unstable = producer_state.first_unstable_offset
                            txn_index.append(
                                AbortedTxn(
                                    header.producer_id,
                                    first,
                                    header.base_offset,
                                    header.next_offset if unstable is None else unstable,
                                )
                            )
    producer_state.last_map_offset = log_end_offset
    producer_state.remove_expired(now_ms)
