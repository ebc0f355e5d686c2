"""Message search inside the broker that holds the data: segment files read, filtered, streamed.

The admin UI asks for a search with the Celery task `brokers.scan` on the leader's queue. The
task only starts a scan thread, so the broker's queue keeps serving control tasks. The thread
reads whole batches with `Log.read` (the lookups run on the broker's event loop, the file
reads and the filtering here), decompresses each batch once and looks for the filter in the
whole records section with `bytes.find` or a compiled bytes regex; only batches with a hit
are parsed, and only the records around each hit. Results go to the Redis stream the request
names, as entries with a JSON "d" field:

    {"type": "started",  "broker": 1, "partitions": {"0": {"start": 0, "end": 950}}}
    {"type": "records",  "broker": 1, "records": [{"partition": 0, "offset": 12, ...}]}
    {"type": "progress", "broker": 1, "scanned": 500000, "matches": 3, "elapsed_s": 0.4,
                          "partitions": {"0": 431}}             # each one's next offset
    {"type": "error",    "broker": 1, "partition": 2, "message": "..."}
    {"type": "done",     "broker": 1, "scanned": ..., "matches": ..., "elapsed_s": ...,
                          "partitions": {...}, "reason": "end" | "limit" | "cancelled" | "time"}

Records carry base64 keys, values and header values, the value cut to `max_value_bytes`.
A scan stops early when the key named by `cancel` appears in Redis.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import redis

from brokers.log.batch import (
    CODEC_NAMES,
    COMPRESSION_MASK,
    CONTROL_FLAG,
    HEADER,
    LOG_OVERHEAD,
    NONE,
    RECORD_BATCH_OVERHEAD,
    TIMESTAMP_TYPE_MASK,
    Record,
    _read_bytes,
    _read_varint,
    decompress,
)
from brokers.log.errors import OffsetOutOfRangeError
from brokers.log.log import Log

if TYPE_CHECKING:
    from brokers.node import BrokerNode

log = logging.getLogger(__name__)

T = TypeVar("T")

CHUNK_BYTES = 4 * 1024 * 1024
PUBLISH_INTERVAL_S = 0.2
MAX_SCANS = 2
STREAM_TTL_S = 600
FIRST_WINDOW = 10_000
MAX_WINDOW = 1_000_000
SEEKS = ("earliest", "latest", "offset", "timestamp")

_ZERO_WIDTH_ESCAPES = "AZbB"


def relaxed(pattern: str) -> str | None:
    """The pattern without its anchors and word boundaries, for searching whole records sections.

    They are the only syntax whose meaning depends on what surrounds a value; dropping a
    zero-width assertion only lets more text match, so a record that matches the pattern
    always holds a hit of the relaxed one. None for lookarounds: no prefilter then.
    """
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            if pattern[i + 1] not in _ZERO_WIDTH_ESCAPES:
                out.append(pattern[i : i + 2])
            i += 2
        elif char == "[":
            end = i + 1
            if end < len(pattern) and pattern[end] == "^":
                end += 1
            if end < len(pattern) and pattern[end] == "]":
                end += 1
            while end < len(pattern) and pattern[end] != "]":
                end += 2 if pattern[end] == "\\" else 1
            out.append(pattern[i : end + 1])
            i = end + 1
        elif pattern.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            return None
        else:
            if char not in "^$":
                out.append(char)
            i += 1
    return "".join(out)


# The request ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filter:
    """A condition on some bytes: a substring, or a regex; either may ignore ASCII case."""

    pattern: str
    regex: bool = False
    ignore_case: bool = False

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Filter | None:
        if not data or not data.get("pattern"):
            return None
        return cls(str(data["pattern"]), bool(data.get("regex")), bool(data.get("ignore_case")))

    def to_json(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "regex": self.regex, "ignore_case": self.ignore_case}

    def compile(self) -> Callable[[bytes], bool]:
        """A test for one key, value or header value."""
        if not self.regex and not self.ignore_case:
            needle = self.pattern.encode()
            return lambda data: needle in data
        search = self._regex().search
        return lambda data: search(data) is not None

    def finder(self) -> Callable[[bytes, int, int], int] | None:
        """Where the next possible hit starts in a records section, or None if no prefilter."""
        if not self.regex:
            if self.ignore_case:
                return _CaselessFinder(self.pattern.encode())
            needle = self.pattern.encode()
            return lambda data, start, end: data.find(needle, start, end)
        loose = relaxed(self.pattern)
        if loose is None:
            return None
        try:
            search = re.compile(loose.encode(), re.IGNORECASE if self.ignore_case else 0).search
        except re.error:
            return None

        def find(data: bytes, start: int, end: int) -> int:
            found = search(data, start, end)
            return -1 if found is None else found.start()

        return find

    def _regex(self) -> re.Pattern[bytes]:
        source = self.pattern.encode() if self.regex else re.escape(self.pattern.encode())
        return re.compile(source, re.IGNORECASE if self.ignore_case else 0)


class _CaselessFinder:
    """A substring ignoring ASCII case: `bytes.lower` once per buffer, then `bytes.find`.

    Far faster than an IGNORECASE regex; lowering keeps every byte where it was.
    """

    def __init__(self, needle: bytes) -> None:
        self.needle = needle.lower()
        self._source: bytes | None = None
        self._lowered = b""

    def __call__(self, data: bytes, start: int, end: int) -> int:
        if data is not self._source:
            self._source = data
            self._lowered = data.lower()
        return self._lowered.find(self.needle, start, end)


@dataclass(frozen=True, slots=True)
class HeaderFilter:
    """Records with a header of this name (exactly), whose value matches `value` if given."""

    name: str
    value: Filter | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": None if self.value is None else self.value.to_json()}


@dataclass(frozen=True, slots=True)
class ScanRequest:
    topic: str
    partitions: tuple[int, ...]
    stream: str
    cancel: str = ""
    seek: str = "earliest"
    offset: int = 0
    timestamp_ms: int = 0
    limit: int = 100
    key: Filter | None = None
    value: Filter | None = None
    headers: tuple[HeaderFilter, ...] = ()
    max_value_bytes: int = 4096
    time_budget_s: float = 120.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScanRequest:
        seek = str(data.get("seek", "earliest"))
        if seek not in SEEKS:
            raise ValueError(f"unknown seek {seek!r}")
        return cls(
            topic=str(data["topic"]),
            partitions=tuple(int(p) for p in data["partitions"]),
            stream=str(data["stream"]),
            cancel=str(data.get("cancel", "")),
            seek=seek,
            offset=int(data.get("offset", 0)),
            timestamp_ms=int(data.get("timestamp_ms", 0)),
            limit=max(1, int(data.get("limit", 100))),
            key=Filter.from_json(data.get("key")),
            value=Filter.from_json(data.get("value")),
            headers=tuple(
                HeaderFilter(str(h["name"]), Filter.from_json(h.get("value")))
                for h in data.get("headers") or ()
            ),
            max_value_bytes=int(data.get("max_value_bytes", 4096)),
            time_budget_s=float(data.get("time_budget_s", 120.0)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partitions": list(self.partitions),
            "stream": self.stream,
            "cancel": self.cancel,
            "seek": self.seek,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
            "limit": self.limit,
            "key": None if self.key is None else self.key.to_json(),
            "value": None if self.value is None else self.value.to_json(),
            "headers": [h.to_json() for h in self.headers],
            "max_value_bytes": self.max_value_bytes,
            "time_budget_s": self.time_budget_s,
        }


# Matching -------------------------------------------------------------------------------


class Matcher:
    """Every filter of a request: a prefilter for whole records sections and a record test."""

    def __init__(self, request: ScanRequest) -> None:
        tests: list[Callable[[Record], bool]] = []
        finder: Callable[[bytes, int, int], int] | None = None
        if request.value is not None:
            value_test = request.value.compile()
            tests.append(lambda r: r.value is not None and value_test(r.value))
            finder = request.value.finder()
        if request.key is not None:
            key_test = request.key.compile()
            tests.append(lambda r: r.key is not None and key_test(r.key))
            finder = finder or request.key.finder()
        for header in request.headers:
            tests.append(_header_test(header))
            if finder is None:
                finder = (
                    header.value.finder() if header.value is not None else _literal(header.name)
                )
        self.tests = tests
        # Every matching record contains a hit of `find`; None: every record is a candidate.
        self.find = finder

    @property
    def filtering(self) -> bool:
        return bool(self.tests)

    def matches(self, record: Record) -> bool:
        return all(test(record) for test in self.tests)


def _literal(text: str) -> Callable[[bytes, int, int], int]:
    needle = text.encode()
    return lambda data, start, end: data.find(needle, start, end)


def _header_test(header: HeaderFilter) -> Callable[[Record], bool]:
    name = header.name
    value_test = header.value.compile() if header.value is not None else None

    def test(record: Record) -> bool:
        for key, value in record.headers:
            if key == name and (value_test is None or (value is not None and value_test(value))):
                return True
        return False

    return test


# Batches and records --------------------------------------------------------------------

_unpack_header = HEADER.unpack_from


def _record(
    buf: bytes, body: int, base_offset: int, base_timestamp: int, log_append_time: int
) -> Record:
    """The record whose body (after its length) starts at `body`."""
    position = body + 1  # attributes, unused in v2
    timestamp_delta, position = _read_varint(buf, position)
    offset_delta, position = _read_varint(buf, position)
    key, position = _read_bytes(buf, position)
    value, position = _read_bytes(buf, position)
    count, position = _read_varint(buf, position)
    headers = []
    for _ in range(count):
        name, position = _read_bytes(buf, position)
        header_value, position = _read_bytes(buf, position)
        headers.append(((name or b"").decode("utf-8", "replace"), header_value))
    timestamp = log_append_time if log_append_time >= 0 else base_timestamp + timestamp_delta
    return Record(base_offset + offset_delta, timestamp, key, value, tuple(headers))


def _in_range(first: int, last: int, start: int, end: int) -> int:
    """How many offsets of [first, last] fall in [start, end)."""
    return max(0, min(last, end - 1) - max(first, start) + 1)


@dataclass(slots=True)
class ChunkResult:
    records: list[tuple[Record, str]] = field(default_factory=list)  # (record, codec name)
    scanned: int = 0
    next_offset: int = -1


def scan_chunk(
    chunk: bytes, start_offset: int, end_offset: int, matcher: Matcher, limit: int
) -> ChunkResult:
    """Matching records of the whole batches in `chunk` with offsets in [start, end).

    Stops after `limit` matches; `next_offset` is where to continue.
    """
    result = ChunkResult(next_offset=start_offset)
    find = matcher.find
    filtering = matcher.filtering
    found = result.records
    view = memoryview(chunk)
    size = len(chunk)
    position = 0
    # The next prefilter hit in the raw chunk: uncompressed batches before it are skipped
    # after reading only their headers.
    next_hit = -1
    while size - position >= RECORD_BATCH_OVERHEAD:
        header = _unpack_header(chunk, position)
        batch_end = position + header[1] + LOG_OVERHEAD
        if batch_end > size or header[1] + LOG_OVERHEAD < RECORD_BATCH_OVERHEAD:
            break
        base_offset = header[0]
        last_offset = base_offset + header[6]
        attributes = header[5]
        count = header[12]
        if base_offset >= end_offset:
            break
        if last_offset < start_offset or attributes & CONTROL_FLAG:
            position = batch_end
            result.next_offset = max(result.next_offset, last_offset + 1)
            continue
        codec = attributes & COMPRESSION_MASK
        body_start = position + RECORD_BATCH_OVERHEAD
        if codec != NONE:
            payload = decompress(codec, view[body_start:batch_end])
            first, stop = 0, len(payload)
            hit = first if find is None else find(payload, first, stop)
        elif find is None:
            payload, first, stop, hit = chunk, body_start, batch_end, body_start
        else:
            if next_hit < body_start:
                next_hit = find(chunk, body_start, size)
                if next_hit < 0:
                    next_hit = size
            if next_hit >= batch_end:
                result.scanned += _in_range(base_offset, last_offset, start_offset, end_offset)
                result.next_offset = last_offset + 1
                position = batch_end
                continue
            payload, first, stop, hit = chunk, body_start, batch_end, next_hit
        log_append_time = header[8] if attributes & TIMESTAMP_TYPE_MASK else -1
        codec_name = CODEC_NAMES[codec]
        record_position = first
        for _ in range(count):
            if hit < 0:
                break
            length, body = _read_varint(payload, record_position)
            record_end = body + length
            if hit < record_end:
                record = _record(payload, body, base_offset, header[7], log_append_time)
                if start_offset <= record.offset < end_offset and (
                    not filtering or matcher.matches(record)
                ):
                    found.append((record, codec_name))
                    if len(found) >= limit:
                        result.scanned += record.offset - max(base_offset, start_offset) + 1
                        result.next_offset = record.offset + 1
                        return result
                hit = record_end if find is None else find(payload, record_end, stop)
            record_position = record_end
        result.scanned += _in_range(base_offset, last_offset, start_offset, end_offset)
        result.next_offset = last_offset + 1
        position = batch_end
    return result


# Partitions -----------------------------------------------------------------------------


class PartitionSource(Protocol):
    """One partition's log as a scan sees it."""

    def bounds(self) -> tuple[int, int]:
        """(log start offset, high watermark)."""
        ...

    def read(self, offset: int, max_bytes: int, max_offset: int) -> bytes:
        """Whole batches from the one holding `offset`; empty at the end."""
        ...

    def offset_for_timestamp(self, timestamp_ms: int) -> int | None: ...


class LogSource:
    """A Log read from the calling thread (tests, benchmarks, tools)."""

    def __init__(self, partition_log: Log) -> None:
        self.log = partition_log

    def bounds(self) -> tuple[int, int]:
        return self.log.log_start_offset, self.log.high_watermark

    def read(self, offset: int, max_bytes: int, max_offset: int) -> bytes:
        offset = max(offset, self.log.log_start_offset)
        try:
            found = self.log.read(offset, max_bytes, max_offset=max_offset)
        except OffsetOutOfRangeError:
            return b""
        return b"" if found is None else found.read_bytes()

    def offset_for_timestamp(self, timestamp_ms: int) -> int | None:
        found = self.log.offset_for_timestamp(timestamp_ms)
        return None if found is None else found[0]


class NodeSource:
    """A partition of a running broker: index lookups on its event loop, file reads here."""

    def __init__(self, node: BrokerNode, topic: str, partition: int) -> None:
        self.node = node
        self.topic = topic
        self.partition = partition

    def _log(self) -> Log:
        replica = self.node.replicas.partition(self.topic, self.partition)
        if replica is None:
            raise LookupError(
                f"broker {self.node.node_id} holds no replica of {self.topic}-{self.partition}"
            )
        return replica.log

    def _on_loop(self, fn: Callable[[], T]) -> T:
        loop = self.node.loop
        if loop is None:
            raise LookupError(f"broker {self.node.node_id} is not running")

        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(30)

    def bounds(self) -> tuple[int, int]:
        return self._on_loop(lambda: LogSource(self._log()).bounds())

    def read(self, offset: int, max_bytes: int, max_offset: int) -> bytes:
        def lookup() -> Any:
            partition_log = self._log()
            start = max(offset, partition_log.log_start_offset)
            try:
                return partition_log.read(start, max_bytes, max_offset=max_offset)
            except OffsetOutOfRangeError:
                return None

        found = self._on_loop(lookup)
        # The descriptor outlives a deleted segment for file.delete.delay.ms.
        return b"" if found is None else found.read_bytes()

    def offset_for_timestamp(self, timestamp_ms: int) -> int | None:
        return self._on_loop(lambda: LogSource(self._log()).offset_for_timestamp(timestamp_ms))


@dataclass(slots=True)
class Step:
    """What one partition cursor did since it last yielded."""

    records: list[tuple[Record, str]]
    scanned: int
    position: int


def start_offset(source: PartitionSource, request: ScanRequest) -> tuple[int, int]:
    """(first offset to read, high watermark) for the request's seek."""
    log_start, high_watermark = source.bounds()
    if request.seek == "offset":
        start = min(max(request.offset, log_start), high_watermark)
    elif request.seek == "timestamp":
        found = source.offset_for_timestamp(request.timestamp_ms)
        start = high_watermark if found is None else min(max(found, log_start), high_watermark)
    elif request.seek == "latest":
        start = max(log_start, high_watermark - request.limit)
    else:
        start = log_start
    return start, high_watermark


def scan_forward(
    source: PartitionSource, matcher: Matcher, start: int, end: int, limit: int
) -> Iterator[Step]:
    """Matches in [start, end), oldest first, one chunk per step."""
    position = start
    remaining = limit
    while position < end and remaining > 0:
        chunk = source.read(position, CHUNK_BYTES, end)
        if not chunk:
            return
        result = scan_chunk(chunk, position, end, matcher, remaining)
        if result.next_offset <= position:
            return
        remaining -= len(result.records)
        yield Step(result.records, result.scanned, result.next_offset)
        position = result.next_offset


def scan_backward(
    source: PartitionSource, matcher: Matcher, log_start: int, end: int, limit: int
) -> Iterator[Step]:
    """Matches below `end`, newest first: windows read forward, each further back, growing."""
    window = max(limit, FIRST_WINDOW) if matcher.filtering else limit
    remaining = limit
    while end > log_start and remaining > 0:
        start = max(log_start, end - window)
        found: list[tuple[Record, str]] = []
        for step in scan_forward(source, matcher, start, end, 1 << 62):
            found += step.records
            yield Step([], step.scanned, step.position)
        newest = found[::-1][:remaining]
        remaining -= len(newest)
        yield Step(newest, 0, start)
        end = start
        window = min(window * 2, MAX_WINDOW)


# Running inside a broker ----------------------------------------------------------------


def record_json(record: Record, partition: int, codec: str, max_value_bytes: int) -> dict[str, Any]:
    value = record.value
    return {
        "partition": partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "key": _b64(record.key, max_value_bytes),
        "key_size": None if record.key is None else len(record.key),
        "value": _b64(value, max_value_bytes),
        "value_size": None if value is None else len(value),
        "headers": [[k, _b64(v, max_value_bytes)] for k, v in record.headers],
        "compression": codec,
    }


def _b64(data: bytes | None, limit: int) -> str | None:
    if data is None:
        return None
    return base64.b64encode(data[:limit]).decode()


class Publisher:
    """Appends a scan's entries to its Redis stream."""

    def __init__(self, client: redis.Redis, request: ScanRequest, broker: int) -> None:
        self.client = client
        self.request = request
        self.broker = broker

    def send(self, kind: str, **data: Any) -> None:
        entry = json.dumps({"type": kind, "broker": self.broker, **data}, separators=(",", ":"))
        pipe = self.client.pipeline(transaction=False)
        pipe.xadd(self.request.stream, {"d": entry})
        pipe.expire(self.request.stream, STREAM_TTL_S)
        pipe.execute()

    def cancelled(self) -> bool:
        return bool(self.request.cancel) and bool(self.client.exists(self.request.cancel))


def run_scan(
    sources: dict[int, PartitionSource], request: ScanRequest, publisher: Publisher
) -> dict[str, Any]:
    """Scan every partition round-robin, a chunk at a time, publishing as it goes."""
    started = time.monotonic()
    matcher = Matcher(request)
    cursors: dict[int, Iterator[Step]] = {}
    positions: dict[str, int] = {}
    ranges: dict[str, dict[str, int]] = {}
    for partition, source in sources.items():
        try:
            start, end = start_offset(source, request)
            log_start = source.bounds()[0]
        except Exception as exc:
            publisher.send("error", partition=partition, message=str(exc))
            continue
        if request.seek == "latest":
            cursors[partition] = scan_backward(source, matcher, log_start, end, request.limit)
            ranges[str(partition)] = {
                "start": log_start if matcher.filtering else start,
                "end": end,
            }
        else:
            cursors[partition] = scan_forward(source, matcher, start, end, request.limit)
            ranges[str(partition)] = {"start": start, "end": end}
        positions[str(partition)] = start
    publisher.send("started", partitions=ranges)
    scanned = matches = 0
    # Each partition finds up to `limit`: the newest (or oldest) `limit` of the whole topic
    # may all sit in one partition. The caller merges and keeps `limit`.
    found: dict[int, int] = dict.fromkeys(cursors, 0)
    pending: list[dict[str, Any]] = []
    last_publish = started
    stopped = ""
    while cursors and not stopped:
        for partition in list(cursors):
            try:
                step = next(cursors[partition])
            except StopIteration:
                del cursors[partition]
                continue
            except Exception as exc:
                log.warning("scan of %s-%s failed", request.topic, partition, exc_info=True)
                publisher.send("error", partition=partition, message=str(exc))
                del cursors[partition]
                continue
            scanned += step.scanned
            positions[str(partition)] = step.position
            found[partition] += len(step.records)
            matches += len(step.records)
            pending += [
                record_json(record, partition, codec, request.max_value_bytes)
                for record, codec in step.records
            ]
        now = time.monotonic()
        if now - started > request.time_budget_s:
            stopped = "time"
        due = now - last_publish >= PUBLISH_INTERVAL_S
        if due:
            last_publish = now
            if publisher.cancelled():
                stopped = "cancelled"
        if pending and (due or stopped or not cursors):
            publisher.send("records", records=pending)
            pending = []
        if due:
            publisher.send(
                "progress",
                scanned=scanned,
                matches=matches,
                elapsed_s=round(now - started, 3),
                partitions=positions,
            )
    reason = stopped or ("limit" if any(n >= request.limit for n in found.values()) else "end")
    summary = {
        "scanned": scanned,
        "matches": matches,
        "elapsed_s": round(time.monotonic() - started, 4),
        "partitions": positions,
        "reason": reason,
    }
    publisher.send("done", **summary)
    return summary


_executor = concurrent.futures.ThreadPoolExecutor(MAX_SCANS, thread_name_prefix="scan")
_redis_lock = threading.Lock()
_redis_clients: dict[str, redis.Redis] = {}


def _redis(url: str) -> redis.Redis:
    with _redis_lock:
        client = _redis_clients.get(url)
        if client is None:
            client = _redis_clients[url] = redis.Redis.from_url(url)
        return client


def start(node: BrokerNode, data: dict[str, Any], redis_url: str) -> None:
    """Begin a scan on a thread of its own; the caller (a Celery task) returns at once."""
    request = ScanRequest.from_json(data)
    publisher = Publisher(_redis(redis_url), request, node.node_id)
    sources: dict[int, PartitionSource] = {
        p: NodeSource(node, request.topic, p) for p in request.partitions
    }

    def run() -> None:
        try:
            run_scan(sources, request, publisher)
        except Exception as exc:
            log.exception("scan of %s failed", request.topic)
            publisher.send("done", reason="error", message=str(exc), scanned=0, matches=0)

    _executor.submit(run)
