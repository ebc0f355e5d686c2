"""TimeIndex: a segment's sparse map from timestamps to offsets (Kafka's `.timeindex`)."""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_right
from pathlib import Path

from brokers.log.errors import CorruptRecordError
from brokers.log.index import write_entries

ENTRY_SIZE = 12  # timestamp int64, relative offset int32, big-endian
NO_TIMESTAMP = -1


class TimeIndex:
    """Entries (timestamp, relative offset), added only when the segment's max timestamp grows.

    Timestamps only increase along the index, so lookups bisect.
    """

    __slots__ = ("_offsets", "_persisted", "_timestamps", "base_offset", "max_entries", "path")

    def __init__(self, path: Path, base_offset: int, max_index_size: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max(1, max_index_size // ENTRY_SIZE)
        self._timestamps = array("q")
        self._offsets = array("i")
        self._persisted = 0

    def __len__(self) -> int:
        return len(self._timestamps)

    @property
    def is_full(self) -> bool:
        return len(self._timestamps) >= self.max_entries

    @property
    def last_entry(self) -> tuple[int, int]:
        """(timestamp, offset) of the last entry, or (-1, base offset)."""
        if not self._timestamps:
            return NO_TIMESTAMP, self.base_offset
        return self._timestamps[-1], self.base_offset + self._offsets[-1]

    def maybe_append(self, timestamp: int, offset: int) -> bool:
        """Append unless the timestamp is not larger than the last one indexed; returns
        whether the index is full."""
        timestamps = self._timestamps
        relative = offset - self.base_offset
        if (not timestamps or timestamp > timestamps[-1]) and (
            not self._offsets or relative >= self._offsets[-1]
        ):
            timestamps.append(timestamp)
            self._offsets.append(relative)
        return len(timestamps) >= self.max_entries

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """The entry with the largest timestamp <= `timestamp`, or (-1, base offset)."""
        i = bisect_right(self._timestamps, timestamp) - 1
        if i < 0:
            return NO_TIMESTAMP, self.base_offset
        return self._timestamps[i], self.base_offset + self._offsets[i]

    def truncate_to(self, offset: int) -> None:
        """Remove every entry whose offset is >= `offset`."""
        relative = offset - self.base_offset
        keep = len(self._offsets)
        while keep and self._offsets[keep - 1] >= relative:
            keep -= 1
        del self._timestamps[keep:]
        del self._offsets[keep:]
        self._persisted = min(self._persisted, keep)

    def clear(self) -> None:
        self.truncate_to(self.base_offset)

    def flush(self) -> None:
        count = len(self._timestamps)
        start = self._persisted
        pairs = [
            value for i in range(start, count) for value in (self._timestamps[i], self._offsets[i])
        ]
        data = struct.pack(">" + "qi" * (count - start), *pairs)
        write_entries(self.path, data, start * ENTRY_SIZE, count * ENTRY_SIZE)
        self._persisted = count

    def load(self) -> None:
        """Read the time index file; raises FileNotFoundError or CorruptRecordError."""
        data = self.path.read_bytes()
        if len(data) % ENTRY_SIZE:
            raise CorruptRecordError(f"Time index file {self.path} has a partial entry")
        timestamps = array("q")
        offsets = array("i")
        for timestamp, relative in struct.iter_unpack(">qi", data):
            timestamps.append(timestamp)
            offsets.append(relative)
        if timestamps and (timestamps[-1] < timestamps[0] or offsets[0] < 0):
            raise CorruptRecordError(f"Time index file {self.path} is not in order")
        self._timestamps = timestamps
        self._offsets = offsets
        self._persisted = len(timestamps)
