"""The tests' murmur2 is the Java client's: expected partitions are computed, not trusted."""

from __future__ import annotations

import pytest

from tests.compat.records import java_partition, murmur2


def _signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Values from the Java client's Utils.murmur2.
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_java(data: bytes, expected: int) -> None:
    assert _signed(murmur2(data)) == expected


def test_partition_is_positive_hash_modulo_count() -> None:
    assert java_partition(b"foobar", 3) == (-790332482 & 0x7FFFFFFF) % 3
    assert {java_partition(f"key-{i}".encode(), 3) for i in range(100)} == {0, 1, 2}
