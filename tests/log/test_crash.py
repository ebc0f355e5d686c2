"""Crash safety: a writer killed with SIGKILL at random points loses no completed append."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from brokers.log.batch import Record, build_batch, compute_crc, iter_headers
from brokers.log.config import LogConfig
from brokers.log.manager import LogManager
from tests.log.conftest import read_all, records_of

KILLS = 24
CONFIG = LogConfig.from_properties({"segment.bytes": "300000", "index.interval.bytes": "512"})


def writer(data_dir: Path, seq: int, report: int) -> None:
    """Append batches (key = sequence number) forever, reporting each completed append;
    flush, checkpoint and run maintenance along the way so kills land in all of them."""
    manager = LogManager(data_dir, CONFIG, cleaner_enabled=False)
    manager.open()
    log = manager.get_or_create("crash", 0, None)
    while True:
        # Now and then a large batch, so that some kills land inside a write.
        value = str(seq).encode() * (seq % 40 + 1 if seq % 9 else 25_000)
        now = int(time.time() * 1000)
        batch = build_batch([Record(i, now, str(seq).encode(), value) for i in range(seq % 3 + 1)])
        info = log.append_as_leader(batch, leader_epoch=seq // 500)
        os.write(report, f"{seq} {info.base_offset} {info.last_offset}\n".encode())
        seq += 1
        if seq % 17 == 0:
            log.flush()
        if seq % 41 == 0:
            manager.checkpoint()
        if seq % 97 == 0:
            log.high_watermark = log.log_end_offset
            manager.maintain()


def spawn(data_dir: Path, seq: int) -> tuple[int, int]:
    """Fork a writer; returns its pid and the read end of its report pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            writer(data_dir, seq, write_end)
        finally:
            os._exit(1)
    os.close(write_end)
    return pid, read_end


def read_reports(fd: int, data: bytearray, lines: int | None) -> None:
    """Read the report pipe into `data` until it holds `lines` lines (None: until EOF)."""
    while lines is None or data.count(b"\n") < lines:
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        data += chunk


def verify(data_dir: Path, completed: dict[int, tuple[int, int]]) -> int:
    """Reopen after a kill; return the log end offset."""
    manager = LogManager(data_dir, LogConfig(), cleaner_enabled=False)
    manager.open()
    try:
        assert not manager.had_clean_shutdown
        log = manager.get("crash", 0)
        assert log is not None
        data = read_all(log)
        view = memoryview(data)
        expected_base = log.log_start_offset
        end = 0
        for position, header in iter_headers(view):
            assert header.crc == compute_crc(view[position : position + header.size])
            assert header.base_offset == expected_base, "offsets must be dense"
            expected_base = header.last_offset + 1
            end = position + header.size
        assert end == len(data), "every byte served belongs to a valid batch"
        assert log.log_end_offset == expected_base
        by_offset = {r.offset: r for r in records_of(data)}
        for seq, (base, last) in completed.items():
            for offset in range(base, last + 1):
                record = by_offset.get(offset)
                assert record is not None, f"completed append {seq} at {offset} was lost"
                assert record.key == str(seq).encode()
        return log.log_end_offset
    finally:
        manager.shutdown()


def test_sigkilled_writer_loses_nothing_it_reported(tmp_path: Path) -> None:
    rng = random.Random(20261128)
    data_dir = tmp_path / "broker"
    completed: dict[int, tuple[int, int]] = {}
    next_seq = 0
    for _ in range(KILLS):
        pid, report = spawn(data_dir, next_seq)
        data = bytearray()
        read_reports(report, data, rng.randint(1, 250))
        time.sleep(rng.random() * 0.005)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        read_reports(report, data, None)
        os.close(report)
        # Each report is one small write, so whole; the text after the last newline is none.
        for line in data.decode().split("\n")[:-1]:
            seq, base, last = map(int, line.split())
            completed[seq] = (base, last)
        end = verify(data_dir, completed)
        next_seq = max(completed, default=-1) + 10_000
        assert end >= max((last + 1 for _, last in completed.values()), default=0)
    assert len(completed) > KILLS
