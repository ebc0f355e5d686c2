"""Offset and time indexes: sparse entries, lookups, truncation, files in Kafka's layout."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from brokers.log.errors import CorruptRecordError
from brokers.log.index import OffsetIndex
from brokers.log.time_index import TimeIndex


def test_offset_index_lookup_finds_the_floor_entry(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "00000000000000000100.index", 100, 1024)
    for i in range(1, 6):
        index.append(100 + 10 * i, 1000 * i)
    assert index.lookup(99) == (100, 0)
    assert index.lookup(109) == (100, 0)
    assert index.lookup(110) == (110, 1000)
    assert index.lookup(135) == (130, 3000)
    assert index.lookup(10**9) == (150, 5000)
    assert index.span_of_position(2500) == (2000, 3000)
    assert index.span_of_offset(135) == (3000, 4000)
    assert index.span_of_offset(99) == (0, 1000)
    assert index.span_of_offset(200) == (5000, -1)


def test_offset_index_file_is_big_endian_relative_entries(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000000100.index"
    index = OffsetIndex(path, 100, 1024)
    index.append(110, 4096)
    index.append(125, 9000)
    index.flush()
    assert path.read_bytes() == struct.pack(">iiii", 10, 4096, 25, 9000)
    index.append(130, 12000)
    index.flush()
    assert path.read_bytes() == struct.pack(">iiiiii", 10, 4096, 25, 9000, 30, 12000)
    loaded = OffsetIndex(path, 100, 1024)
    loaded.load(segment_size=20000)
    assert loaded.lookup(127) == (125, 9000)


def test_offset_index_truncation_rewrites_the_file(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000000000.index"
    index = OffsetIndex(path, 0, 1024)
    for i in range(1, 5):
        index.append(i * 10, i * 100)
    index.flush()
    index.truncate_to(25)
    assert len(index) == 2
    index.flush()
    assert path.stat().st_size == 16


def test_offset_index_is_full_at_segment_index_bytes(tmp_path: Path) -> None:
    index = OffsetIndex(tmp_path / "0.index", 0, 24)
    for i in range(3):
        assert not index.is_full
        index.append(i + 1, i * 10)
    assert index.is_full


def test_a_damaged_index_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000000000.index"
    path.write_bytes(b"\x00" * 12)
    with pytest.raises(CorruptRecordError):
        OffsetIndex(path, 0, 1024).load(100)
    path.write_bytes(struct.pack(">ii", 5, 5000))
    with pytest.raises(CorruptRecordError):
        OffsetIndex(path, 0, 1024).load(100)


def test_time_index_only_grows_and_looks_up_the_floor(tmp_path: Path) -> None:
    path = tmp_path / "00000000000000000050.timeindex"
    index = TimeIndex(path, 50, 1200)
    index.maybe_append(1000, 55)
    index.maybe_append(1000, 58)
    index.maybe_append(900, 60)
    index.maybe_append(2000, 70)
    assert len(index) == 2
    assert index.lookup(999) == (-1, 50)
    assert index.lookup(1500) == (1000, 55)
    assert index.lookup(2000) == (2000, 70)
    assert index.last_entry == (2000, 70)
    index.flush()
    assert path.read_bytes() == struct.pack(">qiqi", 1000, 5, 2000, 20)
    loaded = TimeIndex(path, 50, 1200)
    loaded.load()
    assert loaded.lookup(5000) == (2000, 70)
    loaded.truncate_to(70)
    assert loaded.last_entry == (1000, 55)
