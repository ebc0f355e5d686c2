"""Kafka's checkpoint file formats, each written atomically (tmp file, fsync, rename, fsync dir)."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from brokers.log.errors import KafkaStorageError

CHECKPOINT_VERSION = 0

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_OFFSET_CHECKPOINT = "log-start-offset-checkpoint"
REPLICATION_OFFSET_CHECKPOINT = "replication-offset-checkpoint"
CLEANER_OFFSET_CHECKPOINT = "cleaner-offset-checkpoint"
LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"
PARTITION_METADATA = "partition.metadata"
CLEAN_SHUTDOWN = ".clean-shutdown"

T = TypeVar("T")


@dataclass(frozen=True, slots=True, order=True)
class TopicPartition:
    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


@dataclass(frozen=True, slots=True)
class EpochEntry:
    """A leader epoch and the first offset written in it."""

    epoch: int
    start_offset: int


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (new, renamed or deleted files) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace a file so that a crash leaves either the old or the new content."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise KafkaStorageError(f"Error while writing {path}: {exc}") from exc


def write_checkpoint(path: Path, lines: Iterable[str]) -> None:
    body = list(lines)
    text = f"{CHECKPOINT_VERSION}\n{len(body)}\n" + "".join(line + "\n" for line in body)
    write_atomically(path, text.encode())


def read_checkpoint(path: Path, parse: Callable[[list[str]], T]) -> list[T] | None:
    """The entries of a checkpoint file, or None if it does not exist.

    A malformed file raises KafkaStorageError, as Kafka fails the log directory on one.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KafkaStorageError(f"Error while reading checkpoint file {path}: {exc}") from exc
    lines = text.splitlines()
    try:
        if int(lines[0]) != CHECKPOINT_VERSION:
            raise ValueError(f"unrecognised version {lines[0]}")
        count = int(lines[1])
        entries = [parse(line.split()) for line in lines[2 : 2 + count]]
        if len(entries) != count:
            raise ValueError(f"expected {count} entries, found {len(entries)}")
    except (IndexError, ValueError) as exc:
        raise KafkaStorageError(f"Malformed checkpoint file {path}: {exc}") from exc
    return entries


def _offset_line(parts: list[str]) -> tuple[TopicPartition, int]:
    topic, partition, offset = parts
    return TopicPartition(topic, int(partition)), int(offset)


def read_offsets(path: Path) -> dict[TopicPartition, int]:
    """An offset checkpoint (`topic partition offset` lines); empty if the file is missing."""
    return dict(read_checkpoint(path, _offset_line) or [])


def write_offsets(path: Path, offsets: Mapping[TopicPartition, int]) -> None:
    write_checkpoint(
        path, (f"{tp.topic} {tp.partition} {off}" for tp, off in sorted(offsets.items()))
    )


def _epoch_line(parts: list[str]) -> EpochEntry:
    epoch, start_offset = parts
    return EpochEntry(int(epoch), int(start_offset))


def read_leader_epochs(path: Path) -> list[EpochEntry]:
    return read_checkpoint(path, _epoch_line) or []


def write_leader_epochs(path: Path, entries: Iterable[EpochEntry]) -> None:
    write_checkpoint(path, (f"{entry.epoch} {entry.start_offset}" for entry in entries))


def topic_id_to_str(topic_id: uuid.UUID) -> str:
    """Kafka's Uuid.toString: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(topic_id.bytes).decode().rstrip("=")


def topic_id_from_str(text: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def read_partition_metadata(path: Path) -> uuid.UUID | None:
    """The topic id in a `partition.metadata` file, or None if there is none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KafkaStorageError(f"Error while reading {path}: {exc}") from exc
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    if fields.get("version") != "0" or "topic_id" not in fields:
        raise KafkaStorageError(f"Malformed partition metadata file {path}")
    try:
        return topic_id_from_str(fields["topic_id"].strip())
    except ValueError as exc:
        raise KafkaStorageError(f"Malformed topic id in {path}") from exc


def write_partition_metadata(path: Path, topic_id: uuid.UUID) -> None:
    write_atomically(path, f"version: 0\ntopic_id: {topic_id_to_str(topic_id)}\n".encode())
