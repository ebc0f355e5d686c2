"""Checkpoint files in Kafka's formats, written atomically."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from brokers.log.checkpoints import (
    EpochEntry,
    TopicPartition,
    read_leader_epochs,
    read_offsets,
    read_partition_metadata,
    topic_id_from_str,
    topic_id_to_str,
    write_leader_epochs,
    write_offsets,
    write_partition_metadata,
)
from brokers.log.errors import KafkaStorageError


def test_offset_checkpoint_is_kafkas_format(tmp_path: Path) -> None:
    path = tmp_path / "recovery-point-offset-checkpoint"
    write_offsets(path, {TopicPartition("orders", 1): 42, TopicPartition("orders", 0): 7})
    assert path.read_text() == "0\n2\norders 0 7\norders 1 42\n"
    assert read_offsets(path) == {TopicPartition("orders", 0): 7, TopicPartition("orders", 1): 42}
    assert not (tmp_path / "recovery-point-offset-checkpoint.tmp").exists()


def test_a_missing_checkpoint_is_empty(tmp_path: Path) -> None:
    assert read_offsets(tmp_path / "nothing") == {}


@pytest.mark.parametrize("text", ["1\n0\n", "0\n2\norders 0 7\n", "0\n1\norders x 7\n", ""])
def test_a_malformed_checkpoint_is_a_storage_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "replication-offset-checkpoint"
    path.write_text(text)
    with pytest.raises(KafkaStorageError):
        read_offsets(path)


def test_leader_epoch_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    write_leader_epochs(path, [EpochEntry(0, 0), EpochEntry(3, 120)])
    assert path.read_text() == "0\n2\n0 0\n3 120\n"
    assert read_leader_epochs(path) == [EpochEntry(0, 0), EpochEntry(3, 120)]


def test_partition_metadata_holds_the_topic_id_as_kafka_prints_it(tmp_path: Path) -> None:
    topic_id = uuid.UUID("7b9c5a3e-1f2d-4c8b-9a6e-0d1e2f3a4b5c")
    path = tmp_path / "partition.metadata"
    write_partition_metadata(path, topic_id)
    assert path.read_text() == f"version: 0\ntopic_id: {topic_id_to_str(topic_id)}\n"
    assert topic_id_to_str(topic_id) == "e5xaPh8tTIuabg0eLzpLXA"
    assert topic_id_from_str("e5xaPh8tTIuabg0eLzpLXA") == topic_id
    assert read_partition_metadata(path) == topic_id
    assert read_partition_metadata(tmp_path / "missing") is None
