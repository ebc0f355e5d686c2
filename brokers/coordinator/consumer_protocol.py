"""Reading the "consumer" embedded protocol: a member's subscription and its assignment.

The coordinator passes both through as opaque bytes; it decodes them only to show them (and,
like Kafka, to know which topics a group subscribes to). Every version starts with the v0
layout, so reading that prefix works for versions not yet written.
"""

from __future__ import annotations

import struct

CONSUMER_PROTOCOL_TYPE = "consumer"

_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")


class ProtocolDecodeError(ValueError):
    pass


class _Reader:
    __slots__ = ("data", "position")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def _take(self, size: int) -> bytes:
        end = self.position + size
        if size < 0 or end > len(self.data):
            raise ProtocolDecodeError("truncated consumer protocol data")
        chunk = self.data[self.position : end]
        self.position = end
        return chunk

    def int16(self) -> int:
        (value,) = _INT16.unpack(self._take(2))
        return int(value)

    def int32(self) -> int:
        (value,) = _INT32.unpack(self._take(4))
        return int(value)

    def string(self) -> str:
        size = self.int16()
        if size < 0:
            raise ProtocolDecodeError("null topic name")
        return self._take(size).decode("utf-8", errors="replace")

    def count(self) -> int:
        size = self.int32()
        if size < 0 or size > len(self.data):
            raise ProtocolDecodeError(f"bad array length {size}")
        return size


def subscribed_topics(metadata: bytes) -> tuple[str, ...]:
    """The topics of a ConsumerProtocolSubscription (any version)."""
    reader = _Reader(metadata)
    reader.int16()  # version
    return tuple(reader.string() for _ in range(reader.count()))


def assigned_partitions(assignment: bytes) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The (topic, partitions) of a ConsumerProtocolAssignment (any version); empty bytes: none."""
    if not assignment:
        return ()
    reader = _Reader(assignment)
    reader.int16()  # version
    out = []
    for _ in range(reader.count()):
        topic = reader.string()
        partitions = tuple(reader.int32() for _ in range(reader.count()))
        out.append((topic, partitions))
    return tuple(out)
