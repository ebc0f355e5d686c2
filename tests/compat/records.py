"""The records every client produces, the partition Java's partitioner gives each key, and checks."""

from __future__ import annotations

import struct
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

COUNT = 10_000
PARTITIONS = 3
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
# Record batch attributes: the codec is the low three bits.
CODEC_IDS = {name: index for index, name in enumerate(CODECS)}

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as an unsigned 32-bit int."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length % 4
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def java_partition(key: bytes, partitions: int = PARTITIONS) -> int:
    """The partition the Java client's default partitioner picks for a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class Rec:
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int

    @property
    def partition(self) -> int:
        return java_partition(self.key)


@dataclass(frozen=True, slots=True)
class Consumed:
    """A record as a consumer returned it."""

    partition: int
    offset: int
    rec: Rec


def make_records(tag: str, count: int = COUNT) -> list[Rec]:
    """Keys of every murmur2 tail length, compressible values, two headers, distinct timestamps.

    Timestamps are a little in the past: far enough from now to be distinct, recent enough
    that retention (7 days by default) keeps them.
    """
    base = int(time.time() * 1000) - 10 * 60 * 1000
    return [
        Rec(
            key=f"key-{i % 1013}".encode(),
            value=f"{tag} record {i:05d} ".encode() + b"payload " * (i % 13),
            headers=(("seq", str(i).encode()), ("origin", tag.encode())),
            timestamp=base + i,
        )
        for i in range(count)
    ]


def by_partition(records: Iterable[Rec]) -> dict[int, list[Rec]]:
    out: dict[int, list[Rec]] = {p: [] for p in range(PARTITIONS)}
    for rec in records:
        out[rec.partition].append(rec)
    return out


def assert_read_back(expected: Sequence[Rec], consumed: Sequence[Consumed]) -> None:
    """Every record is where murmur2 puts it, identical, in produce order, at dense offsets."""
    got: dict[int, list[Consumed]] = {p: [] for p in range(PARTITIONS)}
    for c in consumed:
        got[c.partition].append(c)
    assert len(consumed) == len(expected)
    for partition, want in by_partition(expected).items():
        have = got[partition]
        assert [c.offset for c in have] == list(range(len(have))), f"offsets of {partition}"
        mismatched = [
            (i, w, h.rec) for i, (w, h) in enumerate(zip(want, have, strict=True)) if w != h.rec
        ]
        assert not mismatched, f"partition {partition}: first difference {mismatched[0]}"


def assert_partitions(placed: Mapping[bytes, set[int]]) -> None:
    """Each key landed only in the partition Java's partitioner picks."""
    wrong = {k: p for k, p in placed.items() if p != {java_partition(k)}}
    assert not wrong, f"keys in the wrong partition: {dict(list(wrong.items())[:5])}"


_BATCH_PREFIX = struct.Struct(">qi")
_ATTRIBUTES = struct.Struct(">h")
_CONTROL = 0x20


def stored_codecs(data_dir: Path, topic: str) -> Counter[str]:
    """How many data batches of each codec one replica of every partition holds on disk."""
    counts: Counter[str] = Counter()
    for partition in range(PARTITIONS):
        replicas = sorted(data_dir.glob(f"broker-*/{topic}-{partition}"))
        assert replicas, f"no replica of {topic}-{partition} under {data_dir}"
        for segment in sorted(replicas[0].glob("*.log")):
            data = segment.read_bytes()
            position = 0
            while position + 61 <= len(data):
                _, length = _BATCH_PREFIX.unpack_from(data, position)
                (attributes,) = _ATTRIBUTES.unpack_from(data, position + 21)
                if not attributes & _CONTROL:
                    counts[CODECS[attributes & 0x07]] += 1
                position += 12 + length
    return counts
