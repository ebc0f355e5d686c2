"""Loading and recovery: what a restart after a clean or unclean stop leaves."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from brokers.log.batch import compute_crc, iter_headers
from brokers.log.checkpoints import EpochEntry
from brokers.log.log import Log
from tests.log.conftest import batches_of, config, crash, make_batch, read_all

MakeLog = Callable[..., Log]
SIZE = len(make_batch(2))


def fill(log: Log, count: int) -> None:
    for _ in range(count):
        log.append_as_leader(make_batch(2), 0)


def all_valid(data: bytes) -> bool:
    view = memoryview(data)
    ends = 0
    for position, header in iter_headers(view):
        if header.crc != compute_crc(view[position : position + header.size]):
            return False
        ends = position + header.size
    return ends == len(data)


def test_garbage_after_the_last_batch_is_cut_off(make_log: MakeLog, log_dir: Path) -> None:
    log = make_log()
    fill(log, 3)
    crash(log)
    with open(log_dir / "00000000000000000000.log", "ab") as out:
        out.write(b"\x00\x01garbage" * 10)
    recovered = make_log()
    assert recovered.log_end_offset == 6
    assert recovered.size_in_bytes == 3 * SIZE
    assert recovered.append_as_leader(make_batch(1), 0).base_offset == 6
    assert all_valid(read_all(recovered))


def test_a_torn_batch_at_the_end_is_cut_off(make_log: MakeLog, log_dir: Path) -> None:
    log = make_log()
    fill(log, 3)
    crash(log)
    os.truncate(log_dir / "00000000000000000000.log", 3 * SIZE - 7)
    recovered = make_log()
    assert recovered.log_end_offset == 4
    assert batches_of(read_all(recovered)) == [(0, 1), (2, 3)]


def test_a_corrupt_batch_cuts_the_log_there_and_drops_later_segments(
    make_log: MakeLog, log_dir: Path
) -> None:
    log = make_log(config(segment_bytes=SIZE * 3))
    fill(log, 8)
    assert log.segment_count == 3
    crash(log)
    path = log_dir / "00000000000000000006.log"
    data = bytearray(path.read_bytes())
    data[SIZE + 70] ^= 0xFF
    path.write_bytes(bytes(data))
    recovered = make_log(recovery_point=6)
    assert recovered.log_end_offset == 8
    assert [s.base_offset for s in recovered.segments] == [0, 6]
    assert not (log_dir / "00000000000000000012.log").exists()
    assert all_valid(read_all(recovered))
    assert recovered.recovery_point == 8


def test_lost_index_files_are_rebuilt(make_log: MakeLog, log_dir: Path) -> None:
    cfg = config(segment_bytes=SIZE * 20, index_interval_bytes=SIZE)
    log = make_log(cfg)
    fill(log, 30)
    expected = {o: log.read(o, SIZE * 3) for o in range(0, 60, 5)}
    wanted = {o: p.read_bytes() for o, p in expected.items() if p}
    log.close()
    for path in log_dir.glob("*.index"):
        path.unlink()
    (log_dir / "00000000000000000000.timeindex").write_bytes(b"\x01" * 7)
    reopened = make_log(cfg, clean=True)
    for offset, data in wanted.items():
        piece = reopened.read(offset, SIZE * 3)
        assert piece is not None and piece.read_bytes() == data
    assert len(reopened.segments[0].index) > 5
    assert reopened.offset_for_timestamp(0) == (0, make_batch_timestamp())


def make_batch_timestamp() -> int:
    return next(iter_headers(memoryview(make_batch(1))))[1].max_timestamp


def test_a_clean_shutdown_still_checks_the_tail(make_log: MakeLog, log_dir: Path) -> None:
    log = make_log()
    fill(log, 3)
    log.close()
    with open(log_dir / "00000000000000000000.log", "ab") as out:
        out.write(b"\xff" * 30)
    reopened = make_log(clean=True)
    assert reopened.log_end_offset == 6
    assert reopened.size_in_bytes == 3 * SIZE


def test_leftovers_of_interrupted_deletes_and_cleans_are_removed(
    make_log: MakeLog, log_dir: Path
) -> None:
    log = make_log()
    fill(log, 2)
    log.close()
    (log_dir / "00000000000000000099.log.deleted").write_bytes(b"x")
    (log_dir / "00000000000000000000.log.cleaned").write_bytes(b"x")
    (log_dir / "00000000000000000077.index").write_bytes(b"")
    reopened = make_log(clean=True)
    names = {p.name for p in log_dir.iterdir()}
    assert not {n for n in names if n.endswith((".deleted", ".cleaned"))}
    assert "00000000000000000077.index" not in names
    assert reopened.log_end_offset == 4


def test_an_interrupted_swap_is_completed(make_log: MakeLog, log_dir: Path) -> None:
    log = make_log(config(segment_bytes=SIZE * 2))
    fill(log, 5)
    crash(log)
    # A cleaned segment covering offsets 0..7 was committed (renamed .swap) before the crash.
    merged = (log_dir / "00000000000000000000.log").read_bytes() + (
        log_dir / "00000000000000000004.log"
    ).read_bytes()
    (log_dir / "00000000000000000000.log.swap").write_bytes(merged)
    recovered = make_log()
    assert [s.base_offset for s in recovered.segments] == [0, 8]
    assert not list(log_dir.glob("*.swap"))
    assert [b for b, _ in batches_of(read_all(recovered))] == [0, 2, 4, 6, 8]


def test_epochs_past_the_recovered_end_are_forgotten(make_log: MakeLog, log_dir: Path) -> None:
    log = make_log()
    log.append_as_leader(make_batch(2), 1)
    log.append_as_leader(make_batch(2), 2)
    log.append_as_leader(make_batch(2), 3)
    crash(log)
    os.truncate(log_dir / "00000000000000000000.log", SIZE * 2 - 1)
    recovered = make_log()
    assert recovered.log_end_offset == 2
    assert recovered.epoch_cache.entries == [EpochEntry(1, 0)]


def test_a_log_start_beyond_the_surviving_data_starts_an_empty_log(
    make_log: MakeLog, log_dir: Path
) -> None:
    log = make_log()
    fill(log, 2)
    crash(log)
    recovered = make_log(log_start_offset=50)
    assert (recovered.log_start_offset, recovered.log_end_offset) == (50, 50)
    assert recovered.append_as_leader(make_batch(1), 0).base_offset == 50


def test_a_copied_directory_opens_the_same(
    make_log: MakeLog, log_dir: Path, tmp_path: Path
) -> None:
    log = make_log(config(segment_bytes=SIZE * 3))
    fill(log, 7)
    log.close()
    copy = tmp_path / "copy" / "orders-0"
    shutil.copytree(log_dir, copy)
    other = Log.open(
        copy,
        config(segment_bytes=SIZE * 3),
        topic_id=None,
        recovery_point=0,
        log_start_offset=None,
        high_watermark=None,
        had_clean_shutdown=False,
    )
    assert read_all(other) == read_all(make_log(config(segment_bytes=SIZE * 3), clean=True))
    other.close()
