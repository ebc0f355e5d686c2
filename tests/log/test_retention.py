"""Retention: retention.ms, retention.bytes, log start offset; whole segments below the HW."""

from __future__ import annotations

from collections.abc import Callable

from brokers.log.config import LogConfig
from brokers.log.log import Log
from brokers.log.retention import SegmentStats, segments_to_delete
from tests.log.conftest import START_MS, Clock, config, make_batch

MakeLog = Callable[..., Log]
SIZE = len(make_batch(1))


def stats(*sizes_and_times: tuple[int, int]) -> list[SegmentStats]:
    return [SegmentStats(i * 10, size, ts) for i, (size, ts) in enumerate(sizes_and_times)]


def decide(segments: list[SegmentStats], cfg: LogConfig, hw: int = 10**9, now: int = 1000) -> int:
    return segments_to_delete(
        segments,
        cfg,
        now_ms=now,
        log_start_offset=0,
        log_end_offset=len(segments) * 10,
        high_watermark=hw,
    ).count


def test_retention_ms_deletes_a_prefix_of_old_segments() -> None:
    segments = stats((100, 100), (100, 850), (100, 200), (100, 990))
    assert decide(segments, config(retention_ms=200)) == 1
    assert decide(segments, config(retention_ms=100)) == 3
    assert decide(segments, config(retention_ms=-1)) == 0


def test_retention_bytes_deletes_only_what_keeps_the_log_at_or_above_the_limit() -> None:
    segments = stats((100, 1000), (100, 1000), (100, 1000), (50, 1000))
    assert decide(segments, config(retention_bytes=200)) == 1
    assert decide(segments, config(retention_bytes=150)) == 2
    assert decide(segments, config(retention_bytes=350)) == 0
    assert decide(segments, config(retention_bytes=0)) == 4


def test_nothing_at_or_above_the_high_watermark_is_deleted() -> None:
    segments = stats((100, 0), (100, 0), (100, 0))
    assert decide(segments, config(retention_ms=1), hw=15) == 1
    assert decide(segments, config(retention_ms=1), hw=29) == 2


def test_compacted_topics_keep_segments_past_retention() -> None:
    segments = stats((100, 0), (100, 0))
    assert decide(segments, config(retention_ms=1, cleanup_policy="compact")) == 0
    both = config(retention_ms=1, cleanup_policy="compact,delete")
    assert decide(segments, both) == 2


def test_an_empty_active_segment_is_never_deleted() -> None:
    segments = stats((100, 0), (0, 0))
    assert decide(segments, config(retention_ms=1)) == 1


def test_log_retention_ms_by_largest_timestamp(make_log: MakeLog, clock: Clock) -> None:
    log = make_log(config(segment_bytes=SIZE * 2, retention_ms=10_000))
    for i in range(6):
        log.append_as_leader(make_batch(1, timestamp=START_MS + i * 1000), 0)
    log.high_watermark = log.log_end_offset
    assert log.segment_count == 3
    assert log.apply_retention(START_MS + 11_500) == 1
    assert log.log_start_offset == 2
    assert log.apply_retention(START_MS + 20_000) == 2
    assert log.segment_count == 1
    assert log.active_segment.is_empty
    assert log.log_start_offset == log.log_end_offset == 6
    assert log.append_as_leader(make_batch(1, timestamp=clock.ms), 0).base_offset == 6


def test_log_retention_bytes(make_log: MakeLog) -> None:
    log = make_log(config(segment_bytes=SIZE * 2, retention_bytes=SIZE * 3))
    for _ in range(7):
        log.append_as_leader(make_batch(1), 0)
    log.high_watermark = log.log_end_offset
    assert log.apply_retention() == 2
    assert [s.base_offset for s in log.segments] == [4, 6]
    assert log.log_start_offset == 4
