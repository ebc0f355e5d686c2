"""The partition Log: append, read, lookups, rolls, delete records, truncation."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from brokers.log.batch import (
    CONTROL_COMMIT,
    GZIP,
    build_batch,
    compute_crc,
    control_record,
    control_record_type,
    decode_records,
    read_header,
)
from brokers.log.errors import (
    CorruptRecordError,
    InvalidRecordError,
    InvalidTimestampError,
    LogError,
    OffsetOutOfRangeError,
    RecordBatchTooLargeError,
    RecordTooLargeError,
)
from brokers.log.log import Log
from brokers.log.producer_state import AppendOrigin
from tests.log.conftest import (
    START_MS,
    Clock,
    batches_of,
    config,
    make_batch,
    read_all,
    records_of,
)

MakeLog = Callable[..., Log]


def fill(log: Log, batches: int, per_batch: int = 3, value_size: int = 10) -> None:
    for _ in range(batches):
        log.append_as_leader(make_batch(per_batch, value_size=value_size), leader_epoch=0)


def test_append_assigns_dense_offsets_from_the_log_end(make_log: MakeLog) -> None:
    log = make_log()
    first = log.append_as_leader(make_batch(3), leader_epoch=4)
    second = log.append_as_leader(make_batch(2), leader_epoch=4)
    assert (first.base_offset, first.last_offset, first.record_count) == (0, 2, 3)
    assert (second.base_offset, second.last_offset) == (3, 4)
    assert log.log_end_offset == 5
    assert first.max_timestamp == START_MS
    assert first.log_append_time == -1
    stored = log.read(0, 1 << 20)
    assert stored is not None
    data = stored.read_bytes()
    assert batches_of(data) == [(0, 2), (3, 4)]
    header = read_header(data)
    assert header.partition_leader_epoch == 4
    assert header.crc == compute_crc(data[: header.size])
    assert [r.offset for r in records_of(data)] == [0, 1, 2, 3, 4]


def test_fetch_inside_a_batch_returns_the_whole_batch(make_log: MakeLog) -> None:
    log = make_log()
    fill(log, 3, per_batch=5)
    for offset in range(5, 10):
        piece = log.read(offset, 1 << 20)
        assert piece is not None
        assert piece.first_offset == 5
        assert batches_of(piece.read_bytes())[0] == (5, 9)


def test_max_bytes_returns_whole_batches_only(make_log: MakeLog) -> None:
    log = make_log()
    fill(log, 10, per_batch=1, value_size=100)
    size = len(make_batch(1, value_size=100))
    piece = log.read(0, size * 3 + size // 2)
    assert piece is not None
    assert piece.length == size * 3
    assert batches_of(piece.read_bytes()) == [(0, 0), (1, 1), (2, 2)]


def test_first_batch_larger_than_max_bytes(make_log: MakeLog) -> None:
    log = make_log()
    fill(log, 2, per_batch=1, value_size=500)
    piece = log.read(0, 10)
    assert piece is not None
    assert batches_of(piece.read_bytes()) == [(0, 0)]
    assert log.read(0, 10, min_one_batch=False) is None


def test_max_offset_keeps_batches_at_or_above_it_out(make_log: MakeLog) -> None:
    log = make_log()
    fill(log, 4, per_batch=2)
    piece = log.read(0, 1 << 20, max_offset=4)
    assert piece is not None
    assert batches_of(piece.read_bytes()) == [(0, 1), (2, 3)]
    assert log.read(4, 1 << 20, max_offset=4) is None
    piece = log.read(2, 1 << 20, max_offset=8)
    assert piece is not None
    assert batches_of(piece.read_bytes()) == [(2, 3), (4, 5), (6, 7)]


def test_offsets_outside_the_log_are_out_of_range(make_log: MakeLog) -> None:
    log = make_log()
    fill(log, 2)
    assert log.read(6, 100) is None
    with pytest.raises(OffsetOutOfRangeError) as caught:
        log.read(7, 100)
    assert caught.value.error_code == 1
    log.high_watermark = 6
    log.delete_records_before(3)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(2, 100)


def test_a_read_stays_in_one_segment_and_continues_in_the_next(make_log: MakeLog) -> None:
    size = len(make_batch(1, value_size=100))
    log = make_log(config(segment_bytes=size * 4))
    fill(log, 10, per_batch=1, value_size=100)
    assert log.segment_count == 3
    assert [s.base_offset for s in log.segments] == [0, 4, 8]
    piece = log.read(1, 1 << 20)
    assert piece is not None
    assert batches_of(piece.read_bytes()) == [(1, 1), (2, 2), (3, 3)]
    piece = log.read(4, 1 << 20)
    assert piece is not None
    assert batches_of(piece.read_bytes())[0] == (4, 4)
    assert [b for b, _ in batches_of(read_all(log))] == list(range(10))


def test_reads_agree_before_and_after_reopening(make_log: MakeLog, log_dir: Path) -> None:
    cfg = config(segment_bytes=5000, index_interval_bytes=200)
    log = make_log(cfg)
    fill(log, 120, per_batch=3, value_size=20)
    before = {o: log.read(o, 700) for o in range(0, log.log_end_offset, 7)}
    expected = {o: (p.first_offset, p.read_bytes()) for o, p in before.items() if p}
    log.close()
    reopened = make_log(cfg, clean=True)
    for offset, (first, data) in expected.items():
        piece = reopened.read(offset, 700)
        assert piece is not None
        assert (piece.first_offset, piece.read_bytes()) == (first, data)


def test_offset_for_timestamp(make_log: MakeLog) -> None:
    log = make_log(config(segment_bytes=2000, index_interval_bytes=100))
    for i in range(50):
        batch = make_batch(2, timestamps=[START_MS + 10 * i, START_MS + 10 * i + 5])
        log.append_as_leader(batch, leader_epoch=0)
    assert log.segment_count > 1
    assert log.offset_for_timestamp(START_MS) == (0, START_MS)
    assert log.offset_for_timestamp(START_MS + 1) == (1, START_MS + 5)
    assert log.offset_for_timestamp(START_MS + 6) == (2, START_MS + 10)
    assert log.offset_for_timestamp(START_MS + 255) == (51, START_MS + 255)
    assert log.offset_for_timestamp(START_MS + 491) == (99, START_MS + 495)
    assert log.offset_for_timestamp(START_MS + 496) is None
    assert log.max_timestamp() == (99, START_MS + 495)


def test_max_timestamp_finds_the_record_inside_its_batch(make_log: MakeLog) -> None:
    log = make_log()
    log.append_as_leader(make_batch(3, timestamps=[START_MS, START_MS + 50, START_MS + 7]), 0)
    log.append_as_leader(make_batch(1, timestamp=START_MS + 20), 0)
    assert log.max_timestamp() == (1, START_MS + 50)


def test_roll_on_segment_bytes(make_log: MakeLog) -> None:
    size = len(make_batch(1))
    log = make_log(config(segment_bytes=size * 3))
    fill(log, 7, per_batch=1)
    assert [s.base_offset for s in log.segments] == [0, 3, 6]
    assert all(s.size <= size * 3 for s in log.segments)


def test_roll_on_segment_ms(make_log: MakeLog, clock: Clock) -> None:
    log = make_log(config(segment_ms=1000))
    log.append_as_leader(make_batch(1, timestamp=clock.ms), 0)
    clock.advance(500)
    log.append_as_leader(make_batch(1, timestamp=clock.ms), 0)
    assert log.segment_count == 1
    clock.advance(600)
    log.append_as_leader(make_batch(1, timestamp=clock.ms), 0)
    assert [s.base_offset for s in log.segments] == [0, 2]
    clock.advance(1001)
    assert log.roll_if_due(clock.ms)
    assert log.segment_count == 3


def test_roll_when_the_index_is_full(make_log: MakeLog) -> None:
    log = make_log(config(segment_index_bytes=16, index_interval_bytes=1))
    fill(log, 6, per_batch=1)
    assert log.segment_count > 1
    assert all(len(s.index) <= 2 for s in log.segments)
    assert [b for b, _ in batches_of(read_all(log))] == list(range(6))


def test_explicit_roll_and_empty_roll(make_log: MakeLog) -> None:
    log = make_log()
    assert log.roll() is log.active_segment
    assert log.segment_count == 1
    fill(log, 1)
    log.roll()
    assert [s.base_offset for s in log.segments] == [0, 3]
    fill(log, 1)
    assert log.log_end_offset == 6


def test_roll_flushes_the_old_segment_and_advances_the_recovery_point(make_log: MakeLog) -> None:
    log = make_log()
    fill(log, 2)
    assert log.recovery_point == 0
    log.roll()
    assert log.recovery_point == 6
    first = log.segments[0]
    assert first.index.path.exists() and first.time_index.path.exists()
    assert (log.dir / "00000000000000000006.snapshot").exists()


def test_log_append_time(make_log: MakeLog, clock: Clock) -> None:
    log = make_log(config(message_timestamp_type="LogAppendTime"))
    info = log.append_as_leader(make_batch(2, timestamp=5), leader_epoch=0)
    assert info.log_append_time == clock.ms
    assert info.max_timestamp == clock.ms
    data = read_all(log)
    header = read_header(data)
    assert header.timestamp_type == 1
    assert header.max_timestamp == clock.ms
    assert header.crc == compute_crc(data)
    assert [r.timestamp for r in records_of(data)] == [clock.ms, clock.ms]


def test_timestamps_out_of_bounds_are_rejected(make_log: MakeLog, clock: Clock) -> None:
    log = make_log(config(message_timestamp_before_max_ms=1000, message_timestamp_after_max_ms=100))
    log.append_as_leader(make_batch(1, timestamp=clock.ms - 900), 0)
    with pytest.raises(InvalidTimestampError) as caught:
        log.append_as_leader(make_batch(1, timestamp=clock.ms - 1001), 0)
    assert caught.value.error_code == 32
    with pytest.raises(InvalidTimestampError):
        log.append_as_leader(make_batch(1, timestamp=clock.ms + 101), 0)
    assert log.log_end_offset == 1


def test_one_bad_batch_means_nothing_is_appended(make_log: MakeLog) -> None:
    log = make_log()
    corrupt = bytearray(make_batch(2))
    corrupt[-1] ^= 1
    with pytest.raises(CorruptRecordError) as caught:
        log.append_as_leader(make_batch(1) + bytes(corrupt), 0)
    assert caught.value.error_code == 2
    assert log.log_end_offset == 0
    assert log.size_in_bytes == 0


def _bad(kind: str) -> bytes:
    good = bytearray(make_batch(3))
    if kind == "truncated":
        return bytes(good[:-5])
    if kind == "corrupt crc":
        good[70] ^= 0x01
    elif kind == "old magic":
        good[16] = 1
    elif kind == "bad length":
        good[8:12] = (10).to_bytes(4, "big")
    elif kind == "oversized":
        return make_batch(1, value_size=2000)
    return bytes(good)


@pytest.mark.parametrize(
    ("kind", "code"),
    [("truncated", 2), ("corrupt crc", 2), ("old magic", 43), ("bad length", 2), ("oversized", 10)],
)
def test_bad_input_gets_its_kafka_error_and_appends_nothing(
    make_log: MakeLog, kind: str, code: int
) -> None:
    log = make_log(config(max_message_bytes=1500))
    log.append_as_leader(make_batch(1), 0)
    before = read_all(log)
    with pytest.raises(LogError) as caught:
        log.append_as_leader(make_batch(1) + _bad(kind), 0)
    assert caught.value.error_code == code
    assert log.log_end_offset == 1
    assert read_all(log) == before
    assert log.append_as_leader(make_batch(2), 0).base_offset == 1


def test_oversized_batch_and_oversized_request(make_log: MakeLog) -> None:
    log = make_log(config(max_message_bytes=500, segment_bytes=1000))
    with pytest.raises(RecordTooLargeError):
        log.append_as_leader(make_batch(1, value_size=600), 0)
    with pytest.raises(RecordBatchTooLargeError) as caught:
        log.append_as_leader(make_batch(1, value_size=400) * 3, 0)
    assert caught.value.error_code == 18
    assert log.log_end_offset == 0


def test_clients_cannot_write_control_batches(make_log: MakeLog) -> None:
    log = make_log()
    marker = build_batch(
        [control_record(0, START_MS, CONTROL_COMMIT, coordinator_epoch=3)],
        control=True,
        transactional=True,
        producer_id=1,
        producer_epoch=0,
    )
    assert control_record_type(decode_records(marker)[0]) == CONTROL_COMMIT
    with pytest.raises(InvalidRecordError):
        log.append_as_leader(marker, 0)
    info = log.append_as_leader(marker, 0, origin=AppendOrigin.COORDINATOR)
    assert info.base_offset == 0


def test_compacted_topics_need_keys(make_log: MakeLog) -> None:
    log = make_log(config(cleanup_policy="compact"))
    with pytest.raises(InvalidRecordError, match="without key"):
        log.append_as_leader(make_batch([b"v"]), 0)
    log.append_as_leader(make_batch([b"v"], keys=[b"k"]), 0)
    assert log.log_end_offset == 1


def test_compression_type_recompresses(make_log: MakeLog) -> None:
    log = make_log(config(compression_type="gzip"))
    log.append_as_leader(make_batch([b"a" * 100, b"b" * 100], keys=[b"1", b"2"]), 0)
    data = read_all(log)
    assert read_header(data).compression == GZIP
    assert [(r.offset, r.key, r.value) for r in records_of(data)] == [
        (0, b"1", b"a" * 100),
        (1, b"2", b"b" * 100),
    ]


def test_delete_records_moves_the_log_start_offset(make_log: MakeLog) -> None:
    size = len(make_batch(2))
    log = make_log(config(segment_bytes=size * 2))
    fill(log, 6, per_batch=2)
    assert log.segment_count == 3
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(5)
    log.high_watermark = log.log_end_offset
    assert log.delete_records_before(5) == 5
    assert log.log_start_offset == 5
    assert [s.base_offset for s in log.segments] == [4, 8]
    piece = log.read(5, 1 << 20)
    assert piece is not None and piece.first_offset == 4
    with pytest.raises(OffsetOutOfRangeError):
        log.read(3, 100)
    assert log.delete_records_before(-1) == 12
    assert log.log_start_offset == 12


def test_deleted_segments_stay_readable_for_file_delete_delay(
    make_log: MakeLog, clock: Clock
) -> None:
    size = len(make_batch(2))
    log = make_log(config(segment_bytes=size * 2, file_delete_delay_ms=1000))
    fill(log, 4, per_batch=2)
    piece = log.read(0, 1 << 20)
    assert piece is not None
    before = piece.read_bytes()
    log.high_watermark = log.log_end_offset
    log.delete_records_before(4)
    assert not (log.dir / "00000000000000000000.log").exists()
    assert (log.dir / "00000000000000000000.log.deleted").exists()
    assert piece.read_bytes() == before
    log.delete_expired_files(clock.ms + 999)
    assert (log.dir / "00000000000000000000.log.deleted").exists()
    log.delete_expired_files(clock.ms + 1000)
    assert not (log.dir / "00000000000000000000.log.deleted").exists()


def test_truncate_to_drops_the_tail_and_appends_continue(make_log: MakeLog) -> None:
    size = len(make_batch(2))
    log = make_log(config(segment_bytes=size * 2))
    fill(log, 5, per_batch=2)
    log.high_watermark = 10
    log.truncate_to(6)
    assert log.log_end_offset == 6
    assert log.high_watermark == 6
    assert [s.base_offset for s in log.segments] == [0, 4]
    assert batches_of(read_all(log))[-1] == (4, 5)
    info = log.append_as_leader(make_batch(2), 0)
    assert info.base_offset == 6
    assert batches_of(read_all(log))[-1] == (6, 7)


def test_truncate_inside_a_batch_drops_the_whole_batch(make_log: MakeLog) -> None:
    log = make_log()
    fill(log, 3, per_batch=4)
    log.truncate_to(6)
    assert log.log_end_offset == 4
    assert batches_of(read_all(log)) == [(0, 3)]


def test_truncate_fully_and_start_at(make_log: MakeLog) -> None:
    log = make_log()
    fill(log, 3)
    log.truncate_fully_and_start_at(100)
    assert (log.log_start_offset, log.log_end_offset, log.segment_count) == (100, 100, 1)
    assert log.append_as_leader(make_batch(1), 0).base_offset == 100
    with pytest.raises(OffsetOutOfRangeError):
        log.read(5, 100)


def test_flush_advances_the_recovery_point(make_log: MakeLog) -> None:
    log = make_log()
    fill(log, 3)
    assert log.recovery_point == 0
    log.flush(up_to=4)
    assert log.recovery_point == 4
    log.flush()
    assert log.recovery_point == 9


def test_flush_messages(make_log: MakeLog) -> None:
    log = make_log(config(flush_messages=4))
    fill(log, 1)
    assert log.recovery_point == 0
    fill(log, 1)
    assert log.recovery_point == 6


def test_flush_ms(make_log: MakeLog, clock: Clock) -> None:
    log = make_log(config(flush_ms=1000))
    fill(log, 1)
    log.flush_if_due(clock.ms + 500)
    assert log.recovery_point == 0
    log.flush_if_due(clock.ms + 1000)
    assert log.recovery_point == 3


def test_follower_append_keeps_offsets_and_epochs(make_log: MakeLog, tmp_path: Path) -> None:
    leader = Log.open(
        tmp_path / "leader" / "orders-0",
        config(),
        topic_id=None,
        recovery_point=0,
        log_start_offset=None,
        high_watermark=None,
        had_clean_shutdown=False,
    )
    leader.append_as_leader(make_batch(2), leader_epoch=3)
    leader.append_as_leader(make_batch(1), leader_epoch=5)
    data = read_all(leader)
    follower = make_log()
    info = follower.append_as_follower(data)
    assert (info.base_offset, info.last_offset) == (0, 2)
    assert read_all(follower) == data
    assert follower.epoch_cache.entries == leader.epoch_cache.entries
    assert follower.end_offset_for_epoch(3) == (3, 2)
    with pytest.raises(CorruptRecordError):
        follower.append_as_follower(data)
    assert follower.log_end_offset == 3
    leader.close()


def test_high_watermark_is_clamped(make_log: MakeLog) -> None:
    log = make_log()
    fill(log, 2)
    log.high_watermark = 100
    assert log.high_watermark == 6
    log.high_watermark = -5
    assert log.high_watermark == 0


def test_delete_removes_the_directory(make_log: MakeLog, log_dir: Path, clock: Clock) -> None:
    log = make_log(config(file_delete_delay_ms=1000))
    fill(log, 2)
    piece = log.read(0, 1 << 20)
    assert piece is not None
    before = piece.read_bytes()
    log.delete()
    assert not log_dir.exists()
    assert not any(p.name.endswith("-delete") for p in log_dir.parent.iterdir())
    assert piece.read_bytes() == before
    log.delete_expired_files(clock.ms + 1000)
    assert not log.has_pending_deletes


def test_reads_serve_the_file_through_its_descriptor(make_log: MakeLog) -> None:
    log = make_log()
    fill(log, 3)
    piece = log.read(0, 1 << 20)
    assert piece is not None
    assert os.pread(piece.fd, piece.length, piece.position) == piece.read_bytes()
