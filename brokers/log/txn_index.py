"""TransactionIndex: the aborted transactions of a partition, as Kafka's `.txnindex` records them.

One file per partition (`aborted-transactions.txnindex`) holding Kafka's 34-byte entries —
version, producer id, first offset, last offset (the ABORT marker's offset) and the last stable
offset when the marker was written — in marker order. A read_committed fetch asks which aborted
transactions overlap the range it returns. Entries at or above a producer snapshot are rebuilt
by replaying the log after it (recovery, truncation), so the file only needs to be as durable
as the snapshots that precede its entries; appends are fsynced all the same (aborts are rare).
"""

from __future__ import annotations

import os
import struct
from bisect import bisect_left
from dataclasses import dataclass
from pathlib import Path

from brokers.log.checkpoints import fsync_dir

FILE_NAME = "aborted-transactions.txnindex"
VERSION = 0
_ENTRY = struct.Struct(">hqqqq")


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class TransactionIndex:
    __slots__ = ("_entries", "_last_offsets", "path")

    def __init__(self, dir: Path) -> None:
        self.path = dir / FILE_NAME
        self._entries: list[AbortedTxn] = []
        self._last_offsets: list[int] = []

    @property
    def entries(self) -> list[AbortedTxn]:
        return list(self._entries)

    def load(self) -> None:
        """Read the file; a torn last entry (a crash mid-write) is dropped."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        whole = len(data) - len(data) % _ENTRY.size
        entries = []
        for version, producer_id, first, last, lso in _ENTRY.iter_unpack(data[:whole]):
            if version != VERSION:
                break
            entries.append(AbortedTxn(producer_id, first, last, lso))
        self._set(entries)
        if whole != len(data) or len(entries) * _ENTRY.size != whole:
            self._rewrite()

    def _set(self, entries: list[AbortedTxn]) -> None:
        self._entries = entries
        self._last_offsets = [e.last_offset for e in entries]

    def append(self, entry: AbortedTxn) -> None:
        if self._last_offsets and entry.last_offset <= self._last_offsets[-1]:
            raise ValueError(
                f"aborted transaction at {entry.last_offset} is not after {self._last_offsets[-1]}"
            )
        packed = _ENTRY.pack(
            VERSION, entry.producer_id, entry.first_offset, entry.last_offset,
            entry.last_stable_offset,
        )  # fmt: skip
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, packed)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._entries.append(entry)
        self._last_offsets.append(entry.last_offset)

    def truncate_to(self, offset: int) -> None:
        """Forget the aborts whose marker is at or above `offset` (it is gone or replayed)."""
        keep = bisect_left(self._last_offsets, offset)
        if keep < len(self._entries):
            self._set(self._entries[:keep])
            self._rewrite()

    def trim_before(self, offset: int) -> None:
        """Forget the aborts that ended below the log start offset (retention removed them)."""
        drop = bisect_left(self._last_offsets, offset)
        if drop:
            self._set(self._entries[drop:])
            self._rewrite()

    def clear(self) -> None:
        self._set([])
        self.path.unlink(missing_ok=True)

    def collect(self, start: int, upper: int) -> tuple[tuple[int, int], ...]:
        """(producer id, first offset) of aborted transactions with data in [start, upper)."""
        if not self._entries:
            return ()
        out = []
        for entry in self._entries[bisect_left(self._last_offsets, start) :]:
            if entry.first_offset < upper:
                out.append((entry.producer_id, entry.first_offset))
        return tuple(out)

    def _rewrite(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as out:
            for e in self._entries:
                out.write(
                    _ENTRY.pack(
                        VERSION, e.producer_id, e.first_offset, e.last_offset, e.last_stable_offset
                    )
                )
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
