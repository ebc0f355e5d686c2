"""Helpers for storage tests: real RecordBatch v2 bytes, a settable clock, logs in tmp dirs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from brokers.log.batch import NONE, Record, build_batch, decode_records, iter_headers
from brokers.log.config import LogConfig
from brokers.log.log import Log, ReadSlice

START_MS = 1_700_000_000_000


class Clock:
    """A time source the test moves by hand (seconds, like time.time)."""

    def __init__(self, ms: int = START_MS) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000

    def advance(self, ms: int) -> None:
        self.ms += ms


def make_batch(
    values: Sequence[bytes | None] | int = 1,
    *,
    keys: Sequence[bytes | None] | None = None,
    timestamp: int = START_MS,
    timestamps: Sequence[int] | None = None,
    compression: int = NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    value_size: int = 10,
    transactional: bool = False,
) -> bytes:
    """A batch as a producer sends it (base offset 0). An int gives that many values."""
    if isinstance(values, int):
        values = [b"v" * value_size for _ in range(values)]
    records = [
        Record(
            i,
            timestamps[i] if timestamps is not None else timestamp,
            keys[i] if keys is not None else None,
            value,
        )
        for i, value in enumerate(values)
    ]
    return build_batch(
        records,
        base_offset=0,
        compression=compression,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        transactional=transactional,
    )


def config(**overrides: object) -> LogConfig:
    """A LogConfig from Kafka names written with underscores: config(segment_bytes=1000)."""
    return LogConfig.from_properties({k.replace("_", "."): str(v) for k, v in overrides.items()})


def open_log(
    dir: Path,
    cfg: LogConfig | None = None,
    *,
    clock: Clock | None = None,
    clean: bool = False,
    recovery_point: int = 0,
    log_start_offset: int | None = None,
    high_watermark: int | None = None,
) -> Log:
    return Log.open(
        dir,
        cfg or LogConfig(),
        topic_id=None,
        recovery_point=recovery_point,
        log_start_offset=log_start_offset,
        high_watermark=high_watermark,
        had_clean_shutdown=clean,
        time=clock or Clock(),
    )


def crash(log: Log) -> None:
    """Let go of a log the way a killed process does: nothing more reaches its files."""
    for segment in log.segments:
        os.close(segment.fd)
    log._closed = True


def batches_of(data: bytes) -> list[tuple[int, int]]:
    """(base offset, last offset) of each batch in a fetch response's bytes."""
    view = memoryview(data)
    return [(h.base_offset, h.last_offset) for _, h in iter_headers(view)]


def records_of(data: bytes) -> list[Record]:
    view = memoryview(data)
    out: list[Record] = []
    for position, header in iter_headers(view):
        out.extend(decode_records(view[position : position + header.size]))
    return out


def read_all(log: Log, start: int | None = None, max_bytes: int = 1 << 20) -> bytes:
    """Every batch from `start` to the log end, following reads across segments."""
    offset = log.log_start_offset if start is None else start
    out = bytearray()
    while offset < log.log_end_offset:
        piece: ReadSlice | None = log.read(offset, max_bytes)
        if piece is None:
            break
        data = piece.read_bytes()
        out += data
        offset = batches_of(data)[-1][1] + 1
    return bytes(out)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "orders-0"


@pytest.fixture
def make_log(log_dir: Path, clock: Clock) -> Iterator[Callable[..., Log]]:
    """Open logs in `log_dir` with the test clock; closes them at the end."""
    opened: list[Log] = []

    def factory(cfg: LogConfig | None = None, **kwargs: object) -> Log:
        log = open_log(log_dir, cfg, clock=clock, **kwargs)  # type: ignore[arg-type]
        opened.append(log)
        return log

    yield factory
    for log in opened:
        if not log.closed:
            log.close()
