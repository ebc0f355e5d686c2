"""LeaderEpochCache: which leader epoch wrote which offsets (Kafka's LeaderEpochFileCache)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from pathlib import Path

from brokers.log.checkpoints import (
    LEADER_EPOCH_CHECKPOINT,
    EpochEntry,
    read_leader_epochs,
    write_leader_epochs,
)

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1


class LeaderEpochCache:
    """Epochs in increasing order with the first offset of each, persisted in
    `leader-epoch-checkpoint` whenever they change."""

    __slots__ = ("_epochs", "_offsets", "path")

    def __init__(self, path: Path, entries: list[EpochEntry] | None = None) -> None:
        self.path = path
        self._epochs: list[int] = []
        self._offsets: list[int] = []
        for entry in entries or []:
            self._assign(entry.epoch, entry.start_offset)

    @classmethod
    def load(cls, dir: Path) -> LeaderEpochCache:
        path = dir / LEADER_EPOCH_CHECKPOINT
        return cls(path, read_leader_epochs(path))

    @property
    def entries(self) -> list[EpochEntry]:
        return [EpochEntry(e, o) for e, o in zip(self._epochs, self._offsets, strict=True)]

    @property
    def latest_epoch(self) -> int:
        return self._epochs[-1] if self._epochs else UNDEFINED_EPOCH

    @property
    def latest_entry(self) -> EpochEntry | None:
        return EpochEntry(self._epochs[-1], self._offsets[-1]) if self._epochs else None

    def assign(self, epoch: int, start_offset: int, *, persist: bool = True) -> bool:
        """Record that `epoch` starts at `start_offset`; returns whether anything changed.

        As Kafka does, entries that conflict (an epoch >= this one, or a start offset >=
        this one) are removed first, so epochs and offsets both keep increasing.
        """
        if epoch < 0:
            return False
        changed = self._assign(epoch, start_offset)
        if changed and persist:
            self.flush()
        return changed

    def _assign(self, epoch: int, start_offset: int) -> bool:
        if self._epochs and epoch == self._epochs[-1] and start_offset >= self._offsets[-1]:
            return False
        while self._epochs and (self._epochs[-1] >= epoch or self._offsets[-1] >= start_offset):
            self._epochs.pop()
            self._offsets.pop()
        self._epochs.append(epoch)
        self._offsets.append(start_offset)
        return True

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> tuple[int, int]:
        """Kafka's endOffsetFor: (the largest epoch <= requested, the start of the next one).

        For the latest epoch the end is the log end offset; for an unknown (too new or
        undefined) epoch, (-1, -1).
        """
        if requested_epoch == UNDEFINED_EPOCH or not self._epochs:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if requested_epoch == self._epochs[-1]:
            return requested_epoch, log_end_offset
        higher = bisect_right(self._epochs, requested_epoch)
        if higher == len(self._epochs):
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if higher == 0:
            return requested_epoch, self._offsets[0]
        return self._epochs[higher - 1], self._offsets[higher]

    def epoch_for_offset(self, offset: int) -> int | None:
        """The epoch that wrote `offset`, if known."""
        i = bisect_right(self._offsets, offset) - 1
        return self._epochs[i] if i >= 0 else None

    def truncate_from_end(self, end_offset: int, *, persist: bool = True) -> None:
        """Forget epochs starting at or after `end_offset` (the log was truncated there)."""
        keep = bisect_left(self._offsets, end_offset)
        if end_offset >= 0 and keep < len(self._offsets):
            del self._epochs[keep:]
            del self._offsets[keep:]
            if persist:
                self.flush()

    def truncate_from_start(self, start_offset: int, *, persist: bool = True) -> None:
        """The log now starts at `start_offset`: the epoch covering it starts there."""
        if not self._offsets or self._offsets[0] >= start_offset:
            return
        covering = bisect_right(self._offsets, start_offset) - 1
        del self._epochs[:covering]
        del self._offsets[:covering]
        self._offsets[0] = start_offset
        if persist:
            self.flush()

    def clear(self, *, persist: bool = True) -> None:
        self._epochs.clear()
        self._offsets.clear()
        if persist:
            self.flush()

    def flush(self) -> None:
        write_leader_epochs(self.path, self.entries)
