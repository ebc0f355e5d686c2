"""`__consumer_offsets`: the internal topic whose partition leaders are the group coordinators."""

from __future__ import annotations

OFFSETS_TOPIC = "__consumer_offsets"
_INT32_MIN = -(2**31)


def java_string_hashcode(value: str) -> int:
    """Java's String.hashCode: 31-based over UTF-16 code units, wrapped to a signed int32."""
    data = value.encode("utf-16-be")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group_id: str, partition_count: int) -> int:
    """The offsets partition of a group, as Kafka computes it (Utils.abs maps MIN_VALUE to 0)."""
    h = java_string_hashcode(group_id)
    return (0 if h == _INT32_MIN else abs(h)) % partition_count
