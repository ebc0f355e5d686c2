"""The broker-side message scan (brokers/scan.py) over real segment files.

Every search is checked against the obvious answer: decode every record and test it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from brokers import scan
from brokers.log.batch import (
    GZIP,
    LZ4,
    NONE,
    SNAPPY,
    ZSTD,
    Record,
    build_batch,
    control_record,
    decode_records,
)
from brokers.log.config import LogConfig
from brokers.log.log import Log
from brokers.log.producer_state import AppendOrigin

START_MS = 1_700_000_000_000
WORDS = ["alpha", "beta", "Gamma", "delta", "needle", "epsilon", "zeta"]


def value_of(i: int) -> bytes:
    word = WORDS[(i * 3 + i // 7) % len(WORDS)]
    return f'{{"id": {i}, "word": "{word}", "pad": "{"x" * (i % 13)}"}}'.encode()


def headers_of(i: int) -> tuple[tuple[str, bytes | None], ...]:
    return (("source", b"web" if i % 5 == 0 else b"batch"),) if i % 2 == 0 else ()


def make_log(tmp_path: Path, codec: int = NONE, batches: int = 60, per_batch: int = 50) -> Log:
    log = Log.open(
        tmp_path / "t-0",
        LogConfig.from_properties({"segment.bytes": "65536"}),
        topic_id=None,
        recovery_point=0,
        log_start_offset=None,
        high_watermark=None,
        had_clean_shutdown=False,
    )
    offset = 0
    for b in range(batches):
        records = [
            Record(
                i,
                START_MS + offset + i,
                f"key-{offset + i}".encode() if (offset + i) % 11 else None,
                value_of(offset + i),
                headers_of(offset + i),
            )
            for i in range(per_batch)
        ]
        log.append_as_leader(build_batch(records, base_offset=0, compression=codec), 0)
        offset += per_batch
        if b == 30:  # a transaction marker mid-log: never a message
            marker = build_batch(
                [control_record(0, START_MS, 1, 0)],
                base_offset=0,
                control=True,
                producer_id=7,
                producer_epoch=0,
                transactional=True,
            )
            log.append_as_leader(marker, 0, origin=AppendOrigin.COORDINATOR)
            offset += 1
    log.high_watermark = log.log_end_offset
    return log


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    opened = make_log(tmp_path)
    yield opened
    opened.close()


def everything(log: Log) -> list[Any]:
    found = []
    for segment in log.segments:
        data = Path(segment.log_path).read_bytes()
        position = 0
        while position < len(data):
            size = int.from_bytes(data[position + 8 : position + 12], "big") + 12
            batch = data[position : position + size]
            if not batch[21 + 1] & 0x20:  # attributes low byte: the control flag
                found += decode_records(batch)
            position += size
    return found


def run(log: Log, **request: Any) -> list[scan.Record]:
    req = scan.ScanRequest.from_json({"topic": "t", "partitions": [0], "stream": "s", **request})
    source = scan.LogSource(log)
    matcher = scan.Matcher(req)
    start, end = scan.start_offset(source, req)
    steps = (
        scan.scan_backward(source, matcher, source.bounds()[0], end, req.limit)
        if req.seek == "latest"
        else scan.scan_forward(source, matcher, start, end, req.limit)
    )
    return [record for step in steps for record, _ in step.records]


def offsets(found: list[Any]) -> list[int]:
    return [r.offset for r in found]


@pytest.mark.parametrize(
    ("request_json", "keep"),
    [
        ({"value": {"pattern": "needle"}}, lambda r: b"needle" in r.value),
        (
            {"value": {"pattern": "NEEDLE", "ignore_case": True}},
            lambda r: b"needle" in r.value.lower(),
        ),
        ({"key": {"pattern": "key-12"}}, lambda r: r.key is not None and b"key-12" in r.key),
        (
            {"key": {"pattern": r"key-1\d5$", "regex": True}},
            lambda r: r.key is not None and re.search(rb"key-1\d5$", r.key),
        ),
        (
            {"value": {"pattern": r'"id": 2\d\b', "regex": True}},
            lambda r: re.search(rb'"id": 2\d\b', r.value),
        ),
        (
            {"value": {"pattern": r"^\{\"id\": 7", "regex": True}},
            lambda r: r.value.startswith(b'{"id": 7'),
        ),
        (
            {"headers": [{"name": "source", "value": {"pattern": "web"}}]},
            lambda r: ("source", b"web") in r.headers,
        ),
        ({"headers": [{"name": "source"}]}, lambda r: any(k == "source" for k, _ in r.headers)),
        (
            {"value": {"pattern": "beta"}, "key": {"pattern": "key-3"}},
            lambda r: b"beta" in r.value and r.key is not None and b"key-3" in r.key,
        ),
        ({"value": {"pattern": "no such thing"}}, lambda r: False),
    ],
)
@pytest.mark.parametrize("codec", [NONE, LZ4, ZSTD, GZIP, SNAPPY])
def test_filters_find_exactly_the_matching_records(
    tmp_path: Path, codec: int, request_json: dict[str, Any], keep: Any
) -> None:
    log = make_log(tmp_path, codec)
    try:
        expected = [r.offset for r in everything(log) if keep(r)]
        assert expected or request_json.get("value", {}).get("pattern") == "no such thing"
        assert offsets(run(log, limit=100_000, **request_json)) == expected
    finally:
        log.close()


def test_records_come_back_whole(log: Log) -> None:
    (found,) = run(log, seek="offset", offset=1234, limit=1)
    assert found.offset == 1234
    assert found.value == value_of(1234)
    assert found.timestamp == START_MS + 1234
    assert found.key == b"key-1234"
    assert found.headers == (("source", b"batch"),)


def test_seek_by_offset_starts_inside_a_batch_and_stops_at_the_limit(log: Log) -> None:
    assert offsets(run(log, seek="offset", offset=127, limit=5)) == [127, 128, 129, 130, 131]
    assert offsets(run(log, seek="offset", offset=10**9)) == []
    assert (
        offsets(run(log, seek="offset", offset=0, limit=3, value={"pattern": "needle"}))
        == [r.offset for r in everything(log) if b"needle" in r.value][:3]
    )


def test_seek_by_timestamp(log: Log) -> None:
    found = run(log, seek="timestamp", timestamp_ms=START_MS + 500, limit=3)
    assert offsets(found) == [500, 501, 502]
    assert run(log, seek="timestamp", timestamp_ms=START_MS + 10**9) == []


def test_latest_is_newest_first_even_with_a_filter(log: Log) -> None:
    end = log.high_watermark
    assert offsets(run(log, seek="latest", limit=4)) == [end - 1, end - 2, end - 3, end - 4]
    matching = [r.offset for r in everything(log) if b"needle" in r.value]
    assert (
        offsets(run(log, seek="latest", limit=5, value={"pattern": "needle"})) == matching[::-1][:5]
    )
    rare = [r.offset for r in everything(log) if r.key == b"key-3"]
    assert (
        offsets(run(log, seek="latest", limit=5, key={"pattern": "key-3", "regex": True}))
        == [r.offset for r in everything(log) if r.key is not None and b"key-3" in r.key][::-1][:5]
    )
    assert rare


def test_nothing_above_the_high_watermark_is_read(tmp_path: Path) -> None:
    log = make_log(tmp_path, batches=4)
    try:
        log.high_watermark = 150
        assert max(offsets(run(log, limit=10_000))) == 149
        assert offsets(run(log, seek="latest", limit=2)) == [149, 148]
    finally:
        log.close()


def test_scanned_counts_every_record_in_range(log: Log) -> None:
    req = scan.ScanRequest.from_json(
        {
            "topic": "t",
            "partitions": [0],
            "stream": "s",
            "limit": 10**6,
            "value": {"pattern": "zzz"},
        }
    )
    source = scan.LogSource(log)
    steps = list(scan.scan_forward(source, scan.Matcher(req), 100, log.high_watermark, 10**6))
    assert sum(s.scanned for s in steps) == log.high_watermark - 100 - 1  # minus the control record


def test_anchors_are_dropped_only_where_they_are_anchors() -> None:
    assert scan.relaxed(r"^a\bb$") == "ab"
    assert scan.relaxed(r"[^^$]x\$\^") == r"[^^$]x\$\^"
    assert scan.relaxed(r"[]^]\Aq\Z") == "[]^]q"
    assert scan.relaxed(r"\d{2,}\B") == r"\d{2,}"
    assert scan.relaxed("(?=a)b") is None
    assert scan.relaxed("(?<!a)b") is None


def test_random_regexes_agree_with_decoding_everything(tmp_path: Path) -> None:
    log = make_log(tmp_path, LZ4, batches=20)
    rng = random.Random(7)
    pieces = ["a", "e", "ta", "[0-9]", r"\d", ".", "id", '"', "x+", "(al|ze)", "^", "$"]
    pieces += [r"\b", "lt", "[^a]", r"\B", "(^|x)", r"\$", "7", "(?=d)"]
    try:
        records = everything(log)
        for _ in range(150):
            pattern = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 4)))
            try:
                compiled = re.compile(pattern.encode())
            except re.error:
                continue
            expected = [r.offset for r in records if compiled.search(r.value)]
            found = offsets(run(log, limit=10**6, value={"pattern": pattern, "regex": True}))
            assert found == expected, pattern
    finally:
        log.close()


class Collector:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def send(self, kind: str, **data: Any) -> None:
        self.entries.append({"type": kind, **data})

    def cancelled(self) -> bool:
        return False


def test_a_scan_reports_start_matches_progress_and_end(log: Log) -> None:
    req = scan.ScanRequest.from_json(
        {
            "topic": "t",
            "partitions": [0],
            "stream": "s",
            "limit": 3,
            "value": {"pattern": "needle"},
            "max_value_bytes": 8,
        }
    )
    out = Collector()
    summary = scan.run_scan({0: scan.LogSource(log)}, req, out)  # type: ignore[arg-type]
    kinds = [e["type"] for e in out.entries]
    assert kinds[0] == "started" and kinds[-1] == "done"
    assert out.entries[0]["partitions"] == {"0": {"start": 0, "end": log.high_watermark}}
    records = [r for e in out.entries if e["type"] == "records" for r in e["records"]]
    assert len(records) == 3 and summary["reason"] == "limit"
    assert all(r["value_size"] > 8 for r in records)
    import base64

    assert len(base64.b64decode(records[0]["value"])) == 8
