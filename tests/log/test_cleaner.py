"""Compaction: latest value per key, tombstones, offsets and batch headers kept, valid batches."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from brokers.log.batch import GZIP, LZ4, NONE, SNAPPY, ZSTD, compute_crc, iter_headers, marker_batch
from brokers.log.cleaner import LogCleaner, clean_now, should_clean
from brokers.log.log import Log
from brokers.log.producer_state import AppendOrigin
from tests.log.conftest import START_MS, Clock, config, crash, make_batch, read_all, records_of

MakeLog = Callable[..., Log]


def compacted(**overrides: object):  # type: ignore[no-untyped-def]
    return config(cleanup_policy="compact", segment_bytes=1000, **overrides)


def put(log: Log, pairs: list[tuple[bytes, bytes | None]], **batch_args: object) -> None:
    keys = [k for k, _ in pairs]
    values = [v for _, v in pairs]
    log.append_as_leader(make_batch(values, keys=keys, **batch_args), 0)  # type: ignore[arg-type]


def live(log: Log) -> dict[bytes, tuple[int, bytes | None]]:
    """key → (offset, value) as a consumer reading the whole log ends up with."""
    out: dict[bytes, tuple[int, bytes | None]] = {}
    for record in records_of(read_all(log)):
        assert record.key is not None
        out[record.key] = (record.offset, record.value)
    return out


def valid(log: Log) -> bool:
    data = read_all(log)
    view = memoryview(data)
    return all(h.crc == compute_crc(view[p : p + h.size]) for p, h in iter_headers(view)) and sum(
        h.size for _, h in iter_headers(view)
    ) == len(data)


def test_only_the_latest_value_per_key_is_kept(make_log: MakeLog) -> None:
    log = make_log(compacted())
    for round_ in range(10):
        put(log, [(b"k%d" % k, b"v%d-%d" % (round_, k)) for k in range(4)])
    log.roll()
    log.high_watermark = log.log_end_offset
    before = live(log)
    result = clean_now(log, force=True)
    assert result is not None and result.stats.records_removed == 36
    records = records_of(read_all(log))
    assert [(r.offset, r.key, r.value) for r in records] == [
        (36 + k, b"k%d" % k, b"v9-%d" % k) for k in range(4)
    ]
    assert live(log) == before
    assert valid(log)
    assert log.append_as_leader(make_batch([b"x"], keys=[b"k0"]), 0).base_offset == 40


def test_tombstones_go_after_delete_retention_ms(make_log: MakeLog, clock: Clock) -> None:
    log = make_log(compacted(delete_retention_ms=1000))
    put(log, [(b"a", b"1"), (b"b", b"1")])
    put(log, [(b"a", None)])
    log.roll()
    log.high_watermark = log.log_end_offset
    clean_now(log, clock.ms, force=True)
    assert live(log) == {b"a": (2, None), b"b": (1, b"1")}
    clean_now(log, clock.ms + 999, force=True)
    assert b"a" in live(log)
    assert should_clean(log, clock.ms + 1000) is not None
    clean_now(log, clock.ms + 1000, force=True)
    assert live(log) == {b"b": (1, b"1")}
    assert valid(log)


@pytest.mark.parametrize("codec", [NONE, GZIP, SNAPPY, LZ4, ZSTD])
def test_cleaned_batches_keep_their_codec_and_are_valid(make_log: MakeLog, codec: int) -> None:
    log = make_log(compacted())
    for round_ in range(3):
        put(log, [(b"k%d" % k, b"value-%d" % round_ * 20) for k in range(5)], compression=codec)
    put(log, [(b"k0", b"last")], compression=codec)
    log.roll()
    log.high_watermark = log.log_end_offset
    clean_now(log, force=True)
    data = read_all(log)
    assert {h.compression for _, h in iter_headers(memoryview(data))} == {codec}
    assert valid(log)
    assert live(log)[b"k0"] == (15, b"last")
    assert live(log)[b"k1"] == (11, b"value-2" * 20)


def test_producer_batch_headers_survive_cleaning(make_log: MakeLog, log_dir: Path) -> None:
    log = make_log(compacted())
    for seq in range(0, 8, 2):
        log.append_as_leader(
            make_batch(
                [b"x", b"y"], keys=[b"a", b"b"], producer_id=9, producer_epoch=2, base_sequence=seq
            ),
            0,
        )
    log.roll()
    log.high_watermark = log.log_end_offset
    clean_now(log, force=True)
    headers = [h for _, h in iter_headers(memoryview(read_all(log)))]
    assert [(h.base_offset, h.last_offset, h.records_count) for h in headers] == [(6, 7, 2)]
    assert (headers[0].producer_id, headers[0].producer_epoch, headers[0].base_sequence) == (
        9,
        2,
        6,
    )
    retry = make_batch(
        [b"x", b"y"], keys=[b"a", b"b"], producer_id=9, producer_epoch=2, base_sequence=6
    )
    assert log.append_as_leader(retry, 0).duplicate
    crash(log)
    recovered = make_log(compacted())
    next_batch = make_batch([b"z"], keys=[b"a"], producer_id=9, producer_epoch=2, base_sequence=8)
    assert recovered.append_as_leader(next_batch, 0).base_offset == 8


def test_an_emptied_last_batch_of_a_producer_keeps_an_empty_header(make_log: MakeLog) -> None:
    log = make_log(compacted())
    log.append_as_leader(
        make_batch([b"1"], keys=[b"a"], producer_id=4, producer_epoch=0, base_sequence=0), 0
    )
    put(log, [(b"a", b"2")])
    log.roll()
    log.high_watermark = log.log_end_offset
    clean_now(log, force=True)
    headers = [h for _, h in iter_headers(memoryview(read_all(log)))]
    assert [(h.base_offset, h.records_count, h.producer_id) for h in headers] == [
        (0, 0, 4),
        (1, 1, -1),
    ]
    assert valid(log)


def test_the_dirty_ratio_decides_when_to_clean(make_log: MakeLog, clock: Clock) -> None:
    log = make_log(compacted(min_cleanable_dirty_ratio=0.9))
    for round_ in range(3):
        put(log, [(b"k%d" % k, b"v%d" % round_) for k in range(10)])
    log.roll()
    log.high_watermark = log.log_end_offset
    assert should_clean(log, clock.ms) is not None
    clean_now(log, clock.ms)
    put(log, [(b"k0", b"new")])
    log.roll()
    log.high_watermark = log.log_end_offset
    assert should_clean(log, clock.ms) is None


def test_min_compaction_lag_keeps_young_segments_dirty(tmp_path: Path, clock: Clock) -> None:
    log = Log.open(
        tmp_path / "t-0",
        compacted(min_compaction_lag_ms=10_000),
        topic_id=None,
        recovery_point=0,
        log_start_offset=None,
        high_watermark=None,
        had_clean_shutdown=False,
        time=clock,
    )
    for round_ in range(3):
        put(log, [(b"k", b"v%d" % round_)], timestamp=clock.ms)
    log.roll()
    log.high_watermark = log.log_end_offset
    assert should_clean(log, clock.ms + 5_000) is None
    assert should_clean(log, clock.ms + 10_001) is not None
    log.close()


def test_max_compaction_lag_forces_a_clean(tmp_path: Path, clock: Clock) -> None:
    log = Log.open(
        tmp_path / "t-0",
        compacted(min_cleanable_dirty_ratio=1.0, max_compaction_lag_ms=60_000),
        topic_id=None,
        recovery_point=0,
        log_start_offset=None,
        high_watermark=None,
        had_clean_shutdown=False,
        time=clock,
    )
    put(log, [(b"k", b"1"), (b"j", b"1")], timestamp=START_MS)
    put(log, [(b"k", b"2")], timestamp=START_MS)
    log.roll()
    log.high_watermark = log.log_end_offset
    assert should_clean(log, START_MS + 1000) is None
    assert should_clean(log, START_MS + 60_001) is not None
    log.close()


def test_the_background_cleaner_swaps_on_the_owner_thread(make_log: MakeLog) -> None:
    log = make_log(compacted())
    for round_ in range(20):
        put(log, [(b"k%d" % k, b"v%d" % round_) for k in range(5)])
    log.roll()
    log.high_watermark = log.log_end_offset
    old = log.read(0, 1 << 20)
    assert old is not None
    old_bytes = old.read_bytes()
    cleaner = LogCleaner()
    try:
        assert cleaner.schedule([log]) is log
        assert cleaner.schedule([log]) is None
        deadline = time.monotonic() + 10
        while not cleaner.complete() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        cleaner.shutdown()
    assert cleaner.completed == 1
    assert len(records_of(read_all(log))) == 5
    assert old.read_bytes() == old_bytes
    assert log.cleaner_checkpoint == log.active_segment.base_offset
    assert not list(log.dir.glob("*.cleaned")) and not list(log.dir.glob("*.swap"))


def test_a_clean_overtaken_by_truncation_is_dropped(make_log: MakeLog) -> None:
    log = make_log(compacted())
    for round_ in range(10):
        put(log, [(b"k%d" % k, b"v%d" % round_) for k in range(5)])
    log.roll()
    log.high_watermark = log.log_end_offset
    cleaner = LogCleaner()
    try:
        cleaner.schedule([log])
        log.truncate_to(10)
        assert cleaner.complete(wait=True) == []
    finally:
        cleaner.shutdown()
    assert log.log_end_offset == 10
    assert [r.offset for r in records_of(read_all(log))] == list(range(10))
    assert not list(log.dir.glob("*.cleaned"))


def test_a_cleaned_log_reopens_the_same(make_log: MakeLog) -> None:
    log = make_log(compacted())
    for round_ in range(10):
        put(log, [(b"k%d" % k, b"v%d" % round_) for k in range(5)])
    log.roll()
    log.high_watermark = log.log_end_offset
    clean_now(log, force=True)
    put(log, [(b"k1", b"after")])
    expected = read_all(log)
    log.close()
    assert read_all(make_log(compacted(), clean=True)) == expected


def test_a_fetch_in_a_compacted_gap_gets_the_next_batch(make_log: MakeLog) -> None:
    log = make_log(compacted())
    for round_ in range(4):
        put(log, [(b"k%d" % k, b"v%d" % round_) for k in range(3)])
    log.roll()
    log.high_watermark = log.log_end_offset
    clean_now(log, force=True)
    piece = log.read(2, 1 << 20)
    assert piece is not None
    assert piece.first_offset == 9
    assert [r.offset for r in records_of(piece.read_bytes())] == [9, 10, 11]


def test_a_follower_takes_a_compacted_leaders_gaps(make_log: MakeLog, tmp_path: Path) -> None:
    leader = make_log(compacted())
    for round_ in range(4):
        put(leader, [(b"k%d" % k, b"v%d" % round_) for k in range(3)])
    leader.roll()
    leader.high_watermark = leader.log_end_offset
    clean_now(leader, force=True)
    follower = Log.open(
        tmp_path / "follower" / "orders-0",
        compacted(),
        topic_id=None,
        recovery_point=0,
        log_start_offset=None,
        high_watermark=None,
        had_clean_shutdown=False,
    )
    follower.append_as_follower(read_all(leader))
    assert follower.log_end_offset == 12
    assert read_all(follower) == read_all(leader)
    follower.close()


def test_an_aborted_transaction_never_wins_compaction(make_log: MakeLog) -> None:
    log = make_log(compacted())
    put(log, [(b"a", b"committed"), (b"b", b"committed")])
    put(
        log,
        [(b"a", b"aborted")],
        producer_id=7,
        producer_epoch=0,
        base_sequence=0,
        transactional=True,
    )
    log.append_as_leader(marker_batch(7, 0, False, 0, START_MS), 0, origin=AppendOrigin.COORDINATOR)
    put(log, [(b"b", b"later")])
    log.roll()
    log.high_watermark = log.log_end_offset
    clean_now(log, force=True)
    # The data records a consumer ends up with (the ABORT marker stays, as a control record).
    values = {r.key: r.value for r in records_of(read_all(log)) if r.key in (b"a", b"b")}
    assert values == {b"a": b"committed", b"b": b"later"}
    assert valid(log)
