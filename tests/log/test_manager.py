"""LogManager: a data directory's logs, checkpoints, clean-shutdown marker and upkeep."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from brokers.log.checkpoints import TopicPartition, read_offsets, read_partition_metadata
from brokers.log.config import LogConfig
from brokers.log.errors import InvalidTopicError, KafkaStorageError
from brokers.log.manager import LogManager
from tests.log.conftest import Clock, config, make_batch, read_all, records_of

ORDERS = uuid.UUID(int=1)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "broker-1"


@pytest.fixture
def managers(data_dir: Path, clock: Clock) -> Iterator[list[LogManager]]:
    started: list[LogManager] = []
    yield started
    for manager in started:
        if manager.is_open:
            manager.shutdown()


def start(
    managers: list[LogManager], data_dir: Path, clock: Clock, cfg: LogConfig | None = None
) -> LogManager:
    manager = LogManager(data_dir, cfg or LogConfig(), time=clock)
    manager.open()
    managers.append(manager)
    return manager


def test_shutdown_then_open_trusts_the_checkpoints(
    managers: list[LogManager], data_dir: Path, clock: Clock
) -> None:
    manager = start(managers, data_dir, clock)
    log = manager.get_or_create("orders", 0, ORDERS)
    for _ in range(3):
        log.append_as_leader(make_batch(2), 0)
    log.high_watermark = 6
    log.delete_records_before(2)
    manager.shutdown()
    assert (data_dir / ".clean-shutdown").exists()
    tp = TopicPartition("orders", 0)
    assert read_offsets(data_dir / "recovery-point-offset-checkpoint") == {tp: 6}
    assert read_offsets(data_dir / "replication-offset-checkpoint") == {tp: 6}
    assert read_offsets(data_dir / "log-start-offset-checkpoint") == {tp: 2}
    assert read_partition_metadata(data_dir / "orders-0" / "partition.metadata") == ORDERS

    again = start(managers, data_dir, clock)
    assert again.had_clean_shutdown
    assert not (data_dir / ".clean-shutdown").exists()
    reopened = again.get("orders", 0)
    assert reopened is not None
    assert (reopened.log_start_offset, reopened.log_end_offset, reopened.high_watermark) == (
        2,
        6,
        6,
    )
    assert reopened.topic_id == ORDERS
    assert again.get_or_create("orders", 0, ORDERS) is reopened


def test_without_the_marker_logs_recover(
    managers: list[LogManager], data_dir: Path, clock: Clock
) -> None:
    manager = start(managers, data_dir, clock)
    log = manager.get_or_create("orders", 0, ORDERS)
    log.append_as_leader(make_batch(2), 0)
    manager.shutdown()
    (data_dir / ".clean-shutdown").unlink()
    with open(data_dir / "orders-0" / "00000000000000000000.log", "ab") as out:
        out.write(b"junk" * 20)
    again = start(managers, data_dir, clock)
    assert not again.had_clean_shutdown
    reopened = again.get("orders", 0)
    assert reopened is not None and reopened.log_end_offset == 2
    assert len(records_of(read_all(reopened))) == 2


def test_a_replica_of_a_deleted_topic_with_the_same_name_is_replaced(
    managers: list[LogManager], data_dir: Path, clock: Clock
) -> None:
    manager = start(managers, data_dir, clock)
    manager.get_or_create("orders", 0, ORDERS).append_as_leader(make_batch(2), 0)
    manager.shutdown()
    again = start(managers, data_dir, clock)
    fresh = again.get_or_create("orders", 0, uuid.UUID(int=2))
    assert fresh.log_end_offset == 0
    assert fresh.topic_id == uuid.UUID(int=2)
    assert read_partition_metadata(data_dir / "orders-0" / "partition.metadata") == uuid.UUID(int=2)


def test_delete_removes_the_partition(
    managers: list[LogManager], data_dir: Path, clock: Clock
) -> None:
    manager = start(managers, data_dir, clock)
    manager.get_or_create("orders", 0, ORDERS)
    manager.get_or_create("orders", 1, ORDERS)
    manager.delete("orders", 0)
    assert manager.get("orders", 0) is None
    assert [log.partition for log in manager.logs()] == [1]
    assert not (data_dir / "orders-0").exists()
    manager.shutdown()
    (data_dir / "orders-2.0123abcd-delete").mkdir()
    start(managers, data_dir, clock)
    assert not (data_dir / "orders-2.0123abcd-delete").exists()


def test_maintain_applies_retention_and_writes_checkpoints(
    managers: list[LogManager], data_dir: Path, clock: Clock
) -> None:
    manager = start(managers, data_dir, clock, config(retention_ms=60_000, segment_bytes=300))
    log = manager.get_or_create("events", 0, ORDERS)
    for _ in range(6):
        log.append_as_leader(make_batch(2, timestamp=clock.ms), 0)
    log.high_watermark = log.log_end_offset
    segments = log.segment_count
    assert segments > 1
    manager.maintain(clock.ms + 30_000)
    assert log.segment_count == segments
    manager.maintain(clock.ms + 60_001)
    manager.wait_for_checkpoints()
    assert log.log_start_offset == log.log_end_offset == 12
    assert read_offsets(data_dir / "log-start-offset-checkpoint") == {
        TopicPartition("events", 0): 12
    }


def test_maintain_compacts_compacted_topics(
    managers: list[LogManager], data_dir: Path, clock: Clock
) -> None:
    manager = start(managers, data_dir, clock, config(cleanup_policy="compact", segment_bytes=1000))
    log = manager.get_or_create("state", 0, ORDERS)
    for round_ in range(20):
        log.append_as_leader(make_batch([b"v%d" % round_] * 3, keys=[b"a", b"b", b"c"]), 0)
    log.roll()
    log.high_watermark = log.log_end_offset
    deadline = time.monotonic() + 10
    while len(records_of(read_all(log))) > 3 and time.monotonic() < deadline:
        manager.maintain(clock.ms)
        time.sleep(0.01)
    assert [(r.key, r.value) for r in records_of(read_all(log))] == [
        (b"a", b"v19"),
        (b"b", b"v19"),
        (b"c", b"v19"),
    ]
    manager.checkpoint()
    assert read_offsets(data_dir / "cleaner-offset-checkpoint") == {
        TopicPartition("state", 0): log.active_segment.base_offset
    }


def test_one_manager_per_directory(
    managers: list[LogManager], data_dir: Path, clock: Clock
) -> None:
    start(managers, data_dir, clock)
    with pytest.raises(KafkaStorageError):
        LogManager(data_dir, LogConfig()).open()


@pytest.mark.parametrize("name", ["", "a/b", "..", "x" * 250, "spaces are bad"])
def test_illegal_topic_names_are_refused(
    managers: list[LogManager], data_dir: Path, clock: Clock, name: str
) -> None:
    manager = start(managers, data_dir, clock)
    with pytest.raises(InvalidTopicError):
        manager.get_or_create(name, 0, None)
