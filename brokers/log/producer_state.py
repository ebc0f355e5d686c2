"""ProducerStateManager: idempotent producers' sequence state per partition, and its snapshots."""

from __future__ import annotations

import logging
import os
import struct
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import crc32c

from brokers.log.batch import (
    INT32_MAX,
    NO_PRODUCER_EPOCH,
    NO_SEQUENCE,
    BatchHeader,
    decrement_sequence,
)
from brokers.log.checkpoints import fsync_dir
from brokers.log.errors import InvalidProducerEpochError, OutOfOrderSequenceError
from brokers.log.segment import file_name

logger = logging.getLogger(__name__)

SNAPSHOT_SUFFIX = ".snapshot"
SNAPSHOT_VERSION = 1
NUM_BATCHES_TO_RETAIN = 5
DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000

_SNAPSHOT_HEADER = struct.Struct(">hIi")  # version, crc, entry count
# producer id, epoch, last sequence, last offset, offset delta, timestamp, coordinator epoch,
# current transaction first offset
_SNAPSHOT_ENTRY = struct.Struct(">qhiqiqiq")


class AppendOrigin(Enum):
    """Who is appending: clients are checked, replicated data is trusted."""

    CLIENT = "client"
    COORDINATOR = "coordinator"
    REPLICATION = "replication"


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    """What is remembered of one of a producer's recent batches."""

    last_seq: int
    last_offset: int
    offset_delta: int
    timestamp: int

    @property
    def first_seq(self) -> int:
        return decrement_sequence(self.last_seq, self.offset_delta)

    @property
    def first_offset(self) -> int:
        return self.last_offset - self.offset_delta


@dataclass(slots=True)
class ProducerStateEntry:
    """One producer's epoch, last batches and open transaction on this partition."""

    producer_id: int
    producer_epoch: int = NO_PRODUCER_EPOCH
    batches: deque[BatchMetadata] = field(
        default_factory=lambda: deque(maxlen=NUM_BATCHES_TO_RETAIN)
    )
    coordinator_epoch: int = -1
    last_timestamp: int = -1
    current_txn_first_offset: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else NO_SEQUENCE

    @property
    def last_offset(self) -> int:
        return self.batches[-1].last_offset if self.batches else -1

    def find_duplicate(self, header: BatchHeader) -> BatchMetadata | None:
        if header.producer_epoch != self.producer_epoch:
            return None
        first_seq = header.base_sequence
        last_seq = header.last_sequence
        for metadata in self.batches:
            if metadata.first_seq == first_seq and metadata.last_seq == last_seq:
                return metadata
        return None


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


class ProducerStateManager:
    """Kafka's ProducerStateManager for idempotence (and open transactions' first offsets).

    Built from batch headers only. A snapshot `<offset>.snapshot` (Kafka's format) is taken
    at each roll and at close so that loading replays only the batches after it.
    """

    __slots__ = ("dir", "expiration_ms", "last_map_offset", "ongoing", "producers")

    def __init__(self, dir: Path, expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS) -> None:
        self.dir = dir
        self.expiration_ms = expiration_ms
        self.producers: dict[int, ProducerStateEntry] = {}
        # Open transactions: producer id -> first offset. Usually empty, so the last stable
        # offset costs nothing on a partition without transactions.
        self.ongoing: dict[int, int] = {}
        self.last_map_offset = 0

    def get(self, producer_id: int) -> ProducerStateEntry | None:
        return self.producers.get(producer_id)

    @property
    def first_unstable_offset(self) -> int | None:
        """The first offset of the oldest open transaction, if any is open."""
        return min(self.ongoing.values()) if self.ongoing else None

    def check_append(self, headers: Iterable[BatchHeader]) -> BatchMetadata | None:
        """Kafka's duplicate, epoch and sequence checks for a client append.

        Returns the original batch if the append is a retry of one of a producer's last five
        batches; raises if a batch is fenced or out of sequence. Changes nothing.
        """
        pending: dict[int, tuple[int, int]] = {}
        for header in headers:
            producer_id = header.producer_id
            if producer_id < 0:
                continue
            entry = self.producers.get(producer_id)
            if entry is not None:
                duplicate = entry.find_duplicate(header)
                if duplicate is not None:
                    return duplicate
            if producer_id in pending:
                current_epoch, last_seq = pending[producer_id]
                known_epoch = True
            elif entry is not None:
                current_epoch, last_seq = entry.producer_epoch, entry.last_seq
                known_epoch = entry.producer_epoch != NO_PRODUCER_EPOCH
            else:
                current_epoch, last_seq, known_epoch = NO_PRODUCER_EPOCH, NO_SEQUENCE, False
            epoch = header.producer_epoch
            if epoch < current_epoch:
                raise InvalidProducerEpochError(
                    f"Epoch of producer {producer_id} at offset {header.base_offset} is {epoch}, "
                    f"which is smaller than the last seen epoch {current_epoch}"
                )
            if epoch != current_epoch:
                if header.base_sequence != 0 and known_epoch:
                    raise OutOfOrderSequenceError(
                        f"Invalid sequence number for new epoch of producer {producer_id}: "
                        f"{epoch} (request epoch), {header.base_sequence} (seq. number), "
                        f"{current_epoch} (current producer epoch)"
                    )
            elif known_epoch and not _in_sequence(last_seq, header.base_sequence):
                raise OutOfOrderSequenceError(
                    f"Out of order sequence number for producer {producer_id}: "
                    f"{header.base_sequence} (incoming seq. number), {last_seq} (current end "
                    f"sequence number)"
                )
            pending[producer_id] = (epoch, header.last_sequence)
        return None

    def update(self, header: BatchHeader, coordinator_epoch: int = -1) -> int:
        """Apply one appended (or replayed) batch whose offsets are final.

        For a transaction marker (with the coordinator epoch it carries), returns the first
        offset of the transaction it ends (-1 if the producer had none open here); otherwise -1.
        """
        ended = -1
        producer_id = header.producer_id
        entry = self.producers.get(producer_id)
        if entry is None:
            entry = self.producers[producer_id] = ProducerStateEntry(producer_id)
        if header.producer_epoch != entry.producer_epoch:
            entry.batches.clear()
            entry.producer_epoch = header.producer_epoch
        entry.last_timestamp = header.max_timestamp
        last_offset = header.base_offset + header.last_offset_delta
        if header.is_control:
            if coordinator_epoch > entry.coordinator_epoch:
                entry.coordinator_epoch = coordinator_epoch
            ended = entry.current_txn_first_offset
            entry.current_txn_first_offset = -1
            self.ongoing.pop(producer_id, None)
        else:
            entry.batches.append(
                BatchMetadata(
                    header.last_sequence,
                    last_offset,
                    header.last_offset_delta,
                    header.max_timestamp,
                )
            )
            if header.is_transactional and entry.current_txn_first_offset < 0:
                entry.current_txn_first_offset = header.base_offset
                self.ongoing[producer_id] = header.base_offset
        self.last_map_offset = last_offset + 1
        return ended

    def update_all(self, headers: Sequence[BatchHeader]) -> None:
        for header in headers:
            if header.producer_id >= 0:
                self.update(header)

    def remove_expired(self, now_ms: int) -> None:
        """Forget producers idle for producer.id.expiration.ms that have no open transaction."""
        expired = [
            producer_id
            for producer_id, entry in self.producers.items()
            if entry.current_txn_first_offset < 0
            and now_ms - entry.last_timestamp >= self.expiration_ms
        ]
        for producer_id in expired:
            del self.producers[producer_id]

    def clear(self) -> None:
        self.producers.clear()
        self.ongoing.clear()

    # Snapshots

    def snapshot_offsets(self) -> list[int]:
        offsets: list[int] = []
        for path in self.dir.glob("*" + SNAPSHOT_SUFFIX):
            stem = path.name[: -len(SNAPSHOT_SUFFIX)]
            if stem.isdigit():
                offsets.append(int(stem))
        return sorted(offsets)

    def snapshot_path(self, offset: int) -> Path:
        return self.dir / file_name(offset, SNAPSHOT_SUFFIX)

    def snapshot_bytes(self) -> bytes:
        body = bytearray()
        for entry in self.producers.values():
            last = entry.batches[-1] if entry.batches else None
            body += _SNAPSHOT_ENTRY.pack(
                entry.producer_id,
                entry.producer_epoch,
                last.last_seq if last else NO_SEQUENCE,
                last.last_offset if last else -1,
                last.offset_delta if last else 0,
                entry.last_timestamp,
                entry.coordinator_epoch,
                entry.current_txn_first_offset,
            )
        count = struct.pack(">i", len(self.producers))
        crc = crc32c.crc32c(count + body)
        return struct.pack(">hI", SNAPSHOT_VERSION, crc) + count + bytes(body)

    def write_snapshot(self, offset: int, data: bytes, *, sync: bool) -> Path:
        """Write a snapshot file; without `sync` the caller fsyncs it later (or a crash may
        lose it, and loading falls back to an older snapshot)."""
        path = self.snapshot_path(offset)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as out:
            out.write(data)
            if sync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
        if sync:
            fsync_dir(self.dir)
        return path

    def take_snapshot(self, *, sync: bool = True) -> None:
        """Snapshot the state as of the log end offset (kept in last_map_offset)."""
        self.write_snapshot(self.last_map_offset, self.snapshot_bytes(), sync=sync)

    def load_snapshot(self, max_offset: int, now_ms: int) -> int | None:
        """Load the newest readable snapshot at or below `max_offset`; returns its offset.

        Unreadable snapshots are deleted, as Kafka does, and the next older one is tried.
        """
        self.clear()
        for offset in reversed(self.snapshot_offsets()):
            if offset > max_offset:
                continue
            path = self.snapshot_path(offset)
            try:
                entries = _read_snapshot(path.read_bytes())
            except (OSError, ValueError, struct.error) as exc:
                logger.warning("Deleting unreadable producer snapshot %s: %s", path, exc)
                path.unlink(missing_ok=True)
                continue
            for entry in entries:
                if entry.current_txn_first_offset >= 0 or (
                    now_ms - entry.last_timestamp < self.expiration_ms
                ):
                    self.producers[entry.producer_id] = entry
                    if entry.current_txn_first_offset >= 0:
                        self.ongoing[entry.producer_id] = entry.current_txn_first_offset
            self.last_map_offset = offset
            return offset
        return None

    def delete_snapshots_after(self, offset: int) -> None:
        for snapshot in self.snapshot_offsets():
            if snapshot > offset:
                self.snapshot_path(snapshot).unlink(missing_ok=True)

    def delete_snapshots_before(self, offset: int) -> None:
        for snapshot in self.snapshot_offsets():
            if snapshot < offset:
                self.snapshot_path(snapshot).unlink(missing_ok=True)


def _read_snapshot(data: bytes) -> list[ProducerStateEntry]:
    version, crc, count = _SNAPSHOT_HEADER.unpack_from(data, 0)
    if version != SNAPSHOT_VERSION:
        raise ValueError(f"snapshot version {version} is not supported")
    if crc32c.crc32c(data[6:]) != crc:
        raise ValueError("snapshot checksum does not match")
    if len(data) != _SNAPSHOT_HEADER.size + count * _SNAPSHOT_ENTRY.size:
        raise ValueError("snapshot length does not match its entry count")
    entries: list[ProducerStateEntry] = []
    for fields in _SNAPSHOT_ENTRY.iter_unpack(data[_SNAPSHOT_HEADER.size :]):
        producer_id, epoch, last_seq, last_offset, delta, timestamp, coordinator, txn = fields
        entry = ProducerStateEntry(producer_id, epoch, coordinator_epoch=coordinator)
        entry.last_timestamp = timestamp
        entry.current_txn_first_offset = txn
        if last_offset >= 0:
            entry.batches.append(BatchMetadata(last_seq, last_offset, delta, timestamp))
        entries.append(entry)
    return entries
