"""Idempotent producers: duplicates, sequence gaps, fencing, expiry, snapshots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from brokers.log.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from brokers.log.log import Log
from brokers.log.producer_state import ProducerStateManager
from tests.log.conftest import Clock, batches_of, config, crash, make_batch, read_all

MakeLog = Callable[..., Log]


def produce(log: Log, seq: int, count: int = 2, *, pid: int = 1000, epoch: int = 0):  # type: ignore[no-untyped-def]
    batch = make_batch(count, producer_id=pid, producer_epoch=epoch, base_sequence=seq)
    return log.append_as_leader(batch, leader_epoch=0)


def test_a_retried_batch_returns_its_original_offsets(make_log: MakeLog) -> None:
    log = make_log()
    first = produce(log, 0)
    produce(log, 2)
    retry = produce(log, 0)
    assert retry.duplicate
    assert (retry.base_offset, retry.last_offset) == (first.base_offset, first.last_offset)
    assert log.log_end_offset == 4
    assert len(batches_of(read_all(log))) == 2


def test_only_the_last_five_batches_are_remembered(make_log: MakeLog) -> None:
    log = make_log()
    for seq in range(0, 12, 2):
        produce(log, seq)
    assert produce(log, 2).duplicate
    with pytest.raises(OutOfOrderSequenceError):
        produce(log, 0)


def test_a_sequence_gap_is_out_of_order(make_log: MakeLog) -> None:
    log = make_log()
    produce(log, 0)
    with pytest.raises(OutOfOrderSequenceError) as caught:
        produce(log, 5)
    assert caught.value.error_code == 45
    assert log.log_end_offset == 2


def test_an_older_epoch_is_fenced(make_log: MakeLog) -> None:
    log = make_log()
    produce(log, 0, epoch=3)
    with pytest.raises(InvalidProducerEpochError) as caught:
        produce(log, 2, epoch=2)
    assert caught.value.error_code == 47


def test_a_new_epoch_starts_at_sequence_zero(make_log: MakeLog) -> None:
    log = make_log()
    produce(log, 0, epoch=0)
    with pytest.raises(OutOfOrderSequenceError):
        produce(log, 7, epoch=1)
    assert not produce(log, 0, epoch=1).duplicate


def test_an_unknown_producer_may_start_at_any_sequence(make_log: MakeLog) -> None:
    log = make_log()
    assert produce(log, 42, pid=77).base_offset == 0
    assert produce(log, 44, pid=77).base_offset == 2


def test_sequences_wrap_at_int32_max(make_log: MakeLog) -> None:
    log = make_log()
    produce(log, 2**31 - 2, count=1)
    produce(log, 2**31 - 1, count=1)
    produce(log, 0, count=1)
    assert log.log_end_offset == 3


def test_non_idempotent_batches_skip_every_check(make_log: MakeLog) -> None:
    log = make_log()
    for _ in range(3):
        log.append_as_leader(make_batch(1), 0)
    assert log.log_end_offset == 3
    assert not log.producer_state.producers


def test_several_batches_of_one_producer_in_one_request(make_log: MakeLog) -> None:
    log = make_log()
    request = make_batch(2, producer_id=5, producer_epoch=0, base_sequence=0) + make_batch(
        2, producer_id=5, producer_epoch=0, base_sequence=2
    )
    log.append_as_leader(request, 0)
    bad = make_batch(2, producer_id=5, producer_epoch=0, base_sequence=4) + make_batch(
        2, producer_id=5, producer_epoch=0, base_sequence=9
    )
    with pytest.raises(OutOfOrderSequenceError):
        log.append_as_leader(bad, 0)
    assert log.log_end_offset == 4


def test_producer_state_survives_clean_and_unclean_restarts(make_log: MakeLog) -> None:
    log = make_log()
    first = produce(log, 0)
    produce(log, 2)
    log.close()
    reopened = make_log(clean=True)
    assert produce(reopened, 2).duplicate
    assert produce(reopened, 4).base_offset == 4
    reopened.flush()
    crash(reopened)
    crashed = make_log()
    assert produce(crashed, 4).duplicate
    with pytest.raises(OutOfOrderSequenceError):
        produce(crashed, 9)
    assert first.base_offset == 0


def test_producer_state_is_rebuilt_after_truncation(make_log: MakeLog) -> None:
    log = make_log()
    produce(log, 0)
    produce(log, 2)
    log.truncate_to(2)
    assert produce(log, 2).base_offset == 2


def test_snapshots_are_taken_at_roll_and_used_on_load(make_log: MakeLog, log_dir: Path) -> None:
    log = make_log(config(segment_bytes=len(make_batch(2, producer_id=1000)) * 2))
    for seq in range(0, 8, 2):
        produce(log, seq)
    snapshots = sorted(p.name for p in log_dir.glob("*.snapshot"))
    assert snapshots == ["00000000000000000004.snapshot"]
    state = ProducerStateManager(log_dir)
    assert state.load_snapshot(10**9, now_ms=Clock().ms) == 4
    entry = state.get(1000)
    assert entry is not None and entry.last_seq == 3 and entry.last_offset == 3


def test_a_corrupt_snapshot_is_ignored(make_log: MakeLog, log_dir: Path) -> None:
    log = make_log()
    produce(log, 0)
    log.close()
    snapshot = next(log_dir.glob("*.snapshot"))
    snapshot.write_bytes(b"garbage")
    reopened = make_log(clean=True)
    assert produce(reopened, 0).duplicate


def test_producers_expire(make_log: MakeLog, clock: Clock) -> None:
    log = make_log()
    produce(log, 0)
    log.expire_producers(clock.ms + 86_400_000 - 1)
    assert log.producer_state.get(1000) is not None
    log.expire_producers(clock.ms + 86_400_000)
    assert log.producer_state.get(1000) is None
