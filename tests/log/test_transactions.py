"""Transactions in a partition's log: last stable offset, aborted-transaction index, recovery."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from brokers.log.batch import marker_batch
from brokers.log.errors import (
    InvalidProducerEpochError,
    InvalidRecordError,
    TransactionCoordinatorFencedError,
)
from brokers.log.log import Log
from brokers.log.producer_state import AppendOrigin
from brokers.log.txn_index import FILE_NAME
from tests.log.conftest import START_MS, crash, make_batch, read_all, records_of

MakeLog = Callable[..., Log]


def txn(log: Log, pid: int, seq: int, count: int = 2, epoch: int = 0) -> int:
    """A transactional batch; returns its base offset."""
    batch = make_batch(
        count, producer_id=pid, producer_epoch=epoch, base_sequence=seq, transactional=True
    )
    return log.append_as_leader(batch, leader_epoch=0).base_offset


def plain(log: Log, count: int = 1) -> int:
    return log.append_as_leader(make_batch(count), leader_epoch=0).base_offset


def end(log: Log, pid: int, commit: bool, epoch: int = 0, coordinator_epoch: int = 0) -> int:
    marker = marker_batch(pid, epoch, commit, coordinator_epoch, START_MS)
    return log.append_as_leader(marker, leader_epoch=0, origin=AppendOrigin.COORDINATOR).base_offset


def test_last_stable_offset_stops_at_the_oldest_open_transaction(make_log: MakeLog) -> None:
    log = make_log()
    plain(log)
    first = txn(log, 1, 0)
    txn(log, 2, 0)
    plain(log)
    log.high_watermark = log.log_end_offset
    assert log.last_stable_offset == first
    end(log, 1, commit=True)
    log.high_watermark = log.log_end_offset
    assert log.last_stable_offset == 3  # producer 2's transaction is still open
    end(log, 2, commit=False)
    log.high_watermark = log.log_end_offset
    assert log.last_stable_offset == log.log_end_offset
    # Never above the high watermark.
    log.high_watermark = 2
    assert log.last_stable_offset == 2


def test_aborted_transactions_overlapping_a_fetch_are_listed(make_log: MakeLog) -> None:
    log = make_log()
    a = txn(log, 7, 0)  # 0-1
    b = txn(log, 8, 0)  # 2-3
    end(log, 7, commit=False)  # 4
    end(log, 8, commit=True)  # 5
    c = txn(log, 7, 2, epoch=0)  # 6-7
    end(log, 7, commit=False)  # 8
    assert (a, b, c) == (0, 2, 6)
    assert log.aborted_transactions(0, 9) == ((7, 0), (7, 6))
    assert log.aborted_transactions(5, 9) == ((7, 6),)
    assert log.aborted_transactions(0, 4) == ((7, 0),)
    assert log.aborted_transactions(9, 10) == ()


def test_markers_are_only_for_the_coordinator(make_log: MakeLog) -> None:
    log = make_log()
    txn(log, 1, 0)
    with pytest.raises(InvalidRecordError):
        log.append_as_leader(marker_batch(1, 0, True, 0, START_MS), leader_epoch=0)
    # A marker of an older epoch than the partition has seen is stale.
    txn(log, 2, 0, epoch=3)
    with pytest.raises(InvalidProducerEpochError):
        end(log, 2, commit=False, epoch=2)


def test_a_fencing_marker_bumps_the_epoch_and_fences_the_zombie(make_log: MakeLog) -> None:
    log = make_log()
    txn(log, 1, 0, epoch=0)
    end(log, 1, commit=False, epoch=1)
    with pytest.raises(InvalidProducerEpochError):
        txn(log, 1, 2, epoch=0)
    assert log.aborted_transactions(0, 10) == ((1, 0),)


def test_a_marker_from_an_older_coordinator_is_fenced(make_log: MakeLog) -> None:
    """A coordinator that lost its partition must not end a transaction its successor owns."""
    log = make_log()
    txn(log, 5, 0)
    end(log, 5, commit=True, coordinator_epoch=3)
    txn(log, 5, 2)
    before = log.log_end_offset
    with pytest.raises(TransactionCoordinatorFencedError):
        end(log, 5, commit=False, coordinator_epoch=2)
    assert log.log_end_offset == before
    log.high_watermark = log.log_end_offset
    assert log.last_stable_offset == before - 2  # still open
    end(log, 5, commit=True, coordinator_epoch=3)
    log.high_watermark = log.log_end_offset
    assert log.last_stable_offset == log.log_end_offset
    # A newer coordinator's marker goes through, and from then on it is the bar.
    txn(log, 5, 4)
    end(log, 5, commit=True, coordinator_epoch=4)
    txn(log, 5, 6)
    with pytest.raises(TransactionCoordinatorFencedError):
        end(log, 5, commit=True, coordinator_epoch=3)


def test_markers_are_control_records_and_never_data(make_log: MakeLog) -> None:
    log = make_log()
    txn(log, 1, 0, count=3)
    end(log, 1, commit=True)
    data = read_all(log)
    assert len(records_of(data)) == 4  # the marker batch holds one control record
    assert log.log_end_offset == 4


def test_index_and_open_transactions_survive_a_crash(make_log: MakeLog, log_dir) -> None:  # type: ignore[no-untyped-def]
    log = make_log()
    txn(log, 1, 0)
    end(log, 1, commit=False)
    open_first = txn(log, 2, 0)
    log.roll()
    txn(log, 3, 0)
    end(log, 3, commit=False)
    crash(log)
    recovered = make_log()
    recovered.high_watermark = recovered.log_end_offset
    assert recovered.aborted_transactions(0, 100) == ((1, 0), (3, 5))
    assert recovered.last_stable_offset == open_first
    crash(recovered)
    # Without the index and the producer snapshots, replaying the whole log rebuilds both.
    (log_dir / FILE_NAME).unlink()
    for snapshot in log_dir.glob("*.snapshot"):
        snapshot.unlink()
    rebuilt = make_log()
    rebuilt.high_watermark = rebuilt.log_end_offset
    assert rebuilt.aborted_transactions(0, 100) == ((1, 0), (3, 5))
    assert rebuilt.last_stable_offset == open_first


def test_clean_reopen_keeps_the_index(make_log: MakeLog) -> None:
    log = make_log()
    txn(log, 1, 0)
    end(log, 1, commit=False)
    log.close()
    reopened = make_log(clean=True, recovery_point=3)
    assert reopened.aborted_transactions(0, 100) == ((1, 0),)


def test_truncation_drops_aborts_above_the_new_end(make_log: MakeLog) -> None:
    log = make_log()
    txn(log, 1, 0)  # 0-1
    end(log, 1, commit=False)  # 2
    txn(log, 2, 0)  # 3-4
    end(log, 2, commit=False)  # 5
    log.truncate_to(5)
    assert log.aborted_transactions(0, 100) == ((1, 0),)
    log.high_watermark = log.log_end_offset
    # Producer 2's transaction is open again: its marker was truncated away.
    assert log.last_stable_offset == 3


def test_a_follower_indexes_the_aborts_it_replicates(make_log: MakeLog, tmp_path) -> None:  # type: ignore[no-untyped-def]
    leader = make_log()
    txn(leader, 5, 0)
    end(leader, 5, commit=False)
    txn(leader, 6, 0)
    follower = Log.open(
        tmp_path / "orders-1",
        leader.config,
        topic_id=None,
        recovery_point=0,
        log_start_offset=None,
        high_watermark=None,
        had_clean_shutdown=False,
    )
    try:
        follower.append_as_follower(read_all(leader))
        follower.high_watermark = follower.log_end_offset
        assert follower.aborted_transactions(0, 100) == ((5, 0),)
        assert follower.last_stable_offset == 3
    finally:
        follower.close()
