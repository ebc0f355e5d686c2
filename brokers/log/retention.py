"""Retention: which whole segments retention.ms, retention.bytes and the log start offset delete."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from brokers.log.config import LogConfig


@dataclass(frozen=True, slots=True)
class SegmentStats:
    """What retention needs to know of a segment."""

    base_offset: int
    size: int
    largest_timestamp: int


@dataclass(frozen=True, slots=True)
class RetentionDecision:
    """Delete the first `count` segments, for `reason`."""

    count: int
    reason: str


def _walk(
    segments: Sequence[SegmentStats],
    start: int,
    log_end_offset: int,
    high_watermark: int,
    predicate: Callable[[int], bool],
) -> int:
    """Kafka's deletableSegments: extend the deletable prefix while the predicate holds.

    A segment is deletable only if everything in it is below the high watermark, and the
    active segment only if it is not empty (the log then rolls first).
    """
    i = start
    while i < len(segments):
        last = i == len(segments) - 1
        upper_bound = log_end_offset if last else segments[i + 1].base_offset
        if last and segments[i].size == 0:
            break
        if high_watermark < upper_bound or not predicate(i):
            break
        i += 1
    return i


def segments_to_delete(
    segments: Sequence[SegmentStats],
    config: LogConfig,
    *,
    now_ms: int,
    log_start_offset: int,
    log_end_offset: int,
    high_watermark: int,
) -> RetentionDecision:
    """How many leading segments Kafka's retention would delete now, and why."""
    count = 0
    reason = ""
    if config.delete:
        if config.retention_ms >= 0:
            by_time = _walk(
                segments,
                count,
                log_end_offset,
                high_watermark,
                lambda i: now_ms - segments[i].largest_timestamp > config.retention_ms,
            )
            if by_time > count:
                count, reason = by_time, f"retention.ms {config.retention_ms} breached"
        total = sum(segment.size for segment in segments[count:])
        if config.retention_bytes >= 0 and total >= config.retention_bytes:
            excess = [total - config.retention_bytes]

            def over_size(i: int) -> bool:
                if excess[0] - segments[i].size >= 0:
                    excess[0] -= segments[i].size
                    return True
                return False

            by_size = _walk(segments, count, log_end_offset, high_watermark, over_size)
            if by_size > count:
                count, reason = by_size, f"retention.bytes {config.retention_bytes} breached"
    by_start = _walk(
        segments,
        count,
        log_end_offset,
        high_watermark,
        lambda i: i + 1 < len(segments) and segments[i + 1].base_offset <= log_start_offset,
    )
    if by_start > count:
        count, reason = by_start, f"log start offset {log_start_offset} breached"
    return RetentionDecision(count, reason)
