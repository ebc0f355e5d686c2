"""OffsetIndex: a segment's sparse map from offsets to file positions (Kafka's `.index`)."""

from __future__ import annotations

import os
import sys
from array import array
from bisect import bisect_right
from pathlib import Path

from brokers.log.errors import CorruptRecordError

ENTRY_SIZE = 8  # relative offset int32, position int32, big-endian


def write_entries(path: Path, data: bytes, start: int, end: int) -> None:
    """Write bytes [start, end) of an index file's content and cut the file at `end`.

    Indexes live in memory and reach disk at roll, flush and close; only the entries added
    since the last write are written, so flushing an active segment stays cheap.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        position = start
        while view:
            written = os.pwrite(fd, view, position)
            view = view[written:]
            position += written
        os.ftruncate(fd, end)
        os.fsync(fd)
    finally:
        os.close(fd)


class OffsetIndex:
    """Entries (relative offset, position) appended once `index.interval.bytes` have passed.

    Kept as two int32 arrays so lookups are a C-level bisect.
    """

    __slots__ = ("_offsets", "_persisted", "_positions", "base_offset", "max_entries", "path")

    def __init__(self, path: Path, base_offset: int, max_index_size: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max(1, max_index_size // ENTRY_SIZE)
        self._offsets = array("i")
        self._positions = array("i")
        self._persisted = 0

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def is_full(self) -> bool:
        return len(self._offsets) >= self.max_entries

    @property
    def last_offset(self) -> int:
        return self.base_offset + self._offsets[-1] if self._offsets else self.base_offset

    @property
    def positions(self) -> array[int]:
        return self._positions

    def append(self, offset: int, position: int) -> bool:
        """Add an entry; returns whether the index is now full."""
        offsets = self._offsets
        relative = offset - self.base_offset
        if offsets and relative <= offsets[-1]:
            raise ValueError(
                f"Attempt to append offset {offset} to index {self.path} whose last offset is "
                f"{self.last_offset}"
            )
        offsets.append(relative)
        self._positions.append(position)
        return len(offsets) >= self.max_entries

    def lookup(self, offset: int) -> tuple[int, int]:
        """The entry with the largest offset <= `offset`, or (base offset, 0)."""
        i = bisect_right(self._offsets, offset - self.base_offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.base_offset + self._offsets[i], self._positions[i]

    def span_of_offset(self, offset: int) -> tuple[int, int]:
        """Where the batch holding `offset` must start: (position of the floor entry, or 0;
        position of the next entry, or -1 when it is the last)."""
        return self._span(bisect_right(self._offsets, offset - self.base_offset) - 1)

    def span_of_position(self, position: int) -> tuple[int, int]:
        """(largest indexed position <= `position`, or 0; the next indexed one, or -1)."""
        return self._span(bisect_right(self._positions, position) - 1)

    def _span(self, i: int) -> tuple[int, int]:
        positions = self._positions
        following = positions[i + 1] if i + 1 < len(positions) else -1
        return (positions[i] if i >= 0 else 0), following

    def truncate_to(self, offset: int) -> None:
        """Remove every entry whose offset is >= `offset`."""
        keep = bisect_right(self._offsets, offset - self.base_offset - 1)
        del self._offsets[keep:]
        del self._positions[keep:]
        self._persisted = min(self._persisted, keep)

    def clear(self) -> None:
        self.truncate_to(self.base_offset)

    def flush(self) -> None:
        """Write the entries not yet on disk and fsync the file."""
        count = len(self._offsets)
        start = self._persisted
        interleaved = array("i", bytes(ENTRY_SIZE * (count - start)))
        interleaved[0::2] = self._offsets[start:]
        interleaved[1::2] = self._positions[start:]
        if sys.byteorder == "little":
            interleaved.byteswap()
        write_entries(self.path, interleaved.tobytes(), start * ENTRY_SIZE, count * ENTRY_SIZE)
        self._persisted = count

    def load(self, segment_size: int) -> None:
        """Read the index file and check it the way Kafka's sanityCheck does.

        Raises FileNotFoundError or CorruptRecordError; the loader rebuilds the index then.
        """
        data = self.path.read_bytes()
        if len(data) % ENTRY_SIZE:
            raise CorruptRecordError(f"Index file {self.path} has a partial entry")
        interleaved = array("i")
        interleaved.frombytes(data)
        if sys.byteorder == "little":
            interleaved.byteswap()
        offsets = interleaved[0::2]
        positions = interleaved[1::2]
        if offsets and (offsets[0] < 0 or positions[-1] >= max(segment_size, 1)):
            raise CorruptRecordError(f"Index file {self.path} points outside its segment")
        self._offsets = offsets
        self._positions = positions
        self._persisted = len(offsets)
