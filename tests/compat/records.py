"""The records every client produces, the partition Java's partitioner gives each key, and checks."""

from __future__ import annotations

import json
import struct
import subprocess
import time
from collections import Counter, defaultdict
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


def run_client(argv: Sequence[str], cwd: Path | None = None) -> list[dict]:
    """Run a client program of another language; the JSON lines it printed."""
    out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    return [json.loads(line) for line in out.stdout.splitlines()]


def assert_numbered_read_back(records: Sequence[Mapping], count: int) -> dict[int, list[Mapping]]:
    """Records numbered 0..count-1 in an "index" header, as another language's client read
    them back: each once, a key always in one partition, each partition in produce order."""
    assert sorted(int(r["headers"]["index"]) for r in records) == list(range(count))
    partitions: dict[int, list[Mapping]] = defaultdict(list)
    partition_of_key: dict[str, int] = {}
    for record in records:
        partitions[record["partition"]].append(record)
        assert (
            partition_of_key.setdefault(record["key"], record["partition"]) == record["partition"]
        )
        assert record["value"] == f"value-{record['headers']['index']}"
    for in_partition in partitions.values():
        offsets = [r["offset"] for r in in_partition]
        indexes = [int(r["headers"]["index"]) for r in in_partition]
        assert offsets == sorted(offsets) and indexes == sorted(indexes)
    return partitions
