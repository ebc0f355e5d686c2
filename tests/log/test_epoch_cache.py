"""Leader epochs: Kafka's endOffsetFor, truncation, and the leader-epoch-checkpoint file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from brokers.log.checkpoints import EpochEntry
from brokers.log.epoch_cache import LeaderEpochCache
from brokers.log.log import Log
from tests.log.conftest import make_batch


def cache_with(tmp_path: Path, *entries: tuple[int, int]) -> LeaderEpochCache:
    cache = LeaderEpochCache(tmp_path / "leader-epoch-checkpoint")
    for epoch, offset in entries:
        cache.assign(epoch, offset)
    return cache


def test_end_offset_for_epoch_is_kafkas(tmp_path: Path) -> None:
    cache = cache_with(tmp_path, (1, 0), (3, 100), (6, 250))
    assert cache.end_offset_for(6, log_end_offset=300) == (6, 300)
    assert cache.end_offset_for(3, 300) == (3, 250)
    assert cache.end_offset_for(4, 300) == (3, 250)
    assert cache.end_offset_for(1, 300) == (1, 100)
    assert cache.end_offset_for(0, 300) == (0, 0)
    assert cache.end_offset_for(7, 300) == (-1, -1)
    assert cache.end_offset_for(-1, 300) == (-1, -1)
    assert LeaderEpochCache(tmp_path / "x").end_offset_for(2, 10) == (-1, -1)


def test_epoch_for_offset(tmp_path: Path) -> None:
    cache = cache_with(tmp_path, (1, 0), (3, 100))
    assert cache.epoch_for_offset(50) == 1
    assert cache.epoch_for_offset(100) == 3
    assert cache.latest_entry == EpochEntry(3, 100)


def test_a_new_leader_starts_its_epoch_at_the_log_end(make_log: Callable[..., Log]) -> None:
    log = make_log()
    log.append_as_leader(make_batch(2), leader_epoch=1)
    log.maybe_assign_epoch_start_offset(2, log.log_end_offset)
    assert log.end_offset_for_epoch(1) == (1, 2)
    assert log.append_as_leader(make_batch(1), leader_epoch=2).base_offset == 2
    assert log.end_offset_for_epoch(2) == (2, 3)


def test_assign_ignores_repeats_and_removes_conflicts(tmp_path: Path) -> None:
    cache = cache_with(tmp_path, (1, 0), (3, 100))
    assert not cache.assign(3, 150)
    assert cache.assign(2, 120)
    assert cache.entries == [EpochEntry(1, 0), EpochEntry(2, 120)]


def test_truncation_from_both_ends(tmp_path: Path) -> None:
    cache = cache_with(tmp_path, (1, 0), (3, 100), (6, 250))
    cache.truncate_from_end(250)
    assert cache.latest_epoch == 3
    cache.truncate_from_start(120)
    assert cache.entries == [EpochEntry(3, 120)]


def test_epochs_are_persisted(tmp_path: Path) -> None:
    cache_with(tmp_path, (1, 0), (3, 100))
    assert (tmp_path / "leader-epoch-checkpoint").read_text() == "0\n2\n1 0\n3 100\n"
    assert LeaderEpochCache.load(tmp_path).entries == [EpochEntry(1, 0), EpochEntry(3, 100)]


def test_the_log_records_new_leader_epochs(make_log: Callable[..., Log]) -> None:
    log = make_log()
    log.append_as_leader(make_batch(2), leader_epoch=0)
    log.append_as_leader(make_batch(2), leader_epoch=0)
    log.append_as_leader(make_batch(2), leader_epoch=2)
    assert log.latest_epoch == 2
    assert log.end_offset_for_epoch(0) == (0, 4)
    assert log.end_offset_for_epoch(1) == (0, 4)
    assert log.end_offset_for_epoch(2) == (2, 6)
    log.truncate_to(4)
    assert log.latest_epoch == 0
    assert log.end_offset_for_epoch(0) == (0, 4)


def test_epochs_survive_reopening_and_are_rebuilt_after_a_crash(
    make_log: Callable[..., Log], log_dir: Path
) -> None:
    log = make_log()
    log.append_as_leader(make_batch(2), leader_epoch=1)
    log.append_as_leader(make_batch(2), leader_epoch=4)
    log.close()
    assert make_log(clean=True).epoch_cache.entries == [EpochEntry(1, 0), EpochEntry(4, 2)]
    (log_dir / "leader-epoch-checkpoint").unlink()
    recovered = make_log()
    assert recovered.epoch_cache.entries == [EpochEntry(1, 0), EpochEntry(4, 2)]
