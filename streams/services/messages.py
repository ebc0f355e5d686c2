"""Reading messages: searches that run on the brokers holding the data, and live tails.

A search (`scan_start`) sends the Celery task `brokers.scan` to the queue of each partition's
leader, naming a Redis stream for the answers (the format is in brokers/scan.py). The page's
websocket and the JSON API read that stream (`scan_read`); `ScanState` folds what came back.
A live tail reads new messages with a confluent-kafka consumer from the end of each partition.
"""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import OffsetSpec

from brokers import control
from kafkaweb.celery import app
from streams.models import Partition
from streams.selectors import redis_client
from streams.services.kafka import ServiceError, admin, bootstrap_servers, result

SEEKS = ("earliest", "latest", "offset", "timestamp")
SCAN_PREFIX = "kafkaweb:scan:"
# A broker that has not begun a scan by then is taken as down.
START_TIMEOUT_S = 10.0
MAX_LIMIT = 10_000
DETAIL_VALUE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TextFilter:
    pattern: str
    regex: bool = False
    ignore_case: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "regex": self.regex, "ignore_case": self.ignore_case}


@dataclass(frozen=True, slots=True)
class ScanQuery:
    """What to look for: where to start, how many, and the filters every match passes."""

    topic: str
    partition: int | None = None  # None: every partition
    seek: str = "earliest"
    offset: int = 0
    timestamp: datetime.datetime | None = None
    limit: int = 100
    key: TextFilter | None = None
    value: TextFilter | None = None
    headers: tuple[tuple[str, TextFilter | None], ...] = ()
    max_value_bytes: int = 4096
    time_budget_s: float = 120.0

    @property
    def newest_first(self) -> bool:
        return self.seek == "latest"


@dataclass(frozen=True, slots=True)
class Scan:
    """A search under way: which broker scans which partitions, and where answers arrive."""

    id: str
    query: ScanQuery
    brokers: dict[int, tuple[int, ...]]
    offline: tuple[int, ...]
    started_at: float

    @property
    def stream(self) -> str:
        return f"{SCAN_PREFIX}{self.id}"

    @property
    def cancel_key(self) -> str:
        return f"{SCAN_PREFIX}{self.id}:cancel"

    def request(self, partitions: Iterable[int]) -> dict[str, Any]:
        q = self.query
        return {
            "topic": q.topic,
            "partitions": list(partitions),
            "stream": self.stream,
            "cancel": self.cancel_key,
            "seek": q.seek,
            "offset": q.offset,
            "timestamp_ms": int(q.timestamp.timestamp() * 1000) if q.timestamp else 0,
            "limit": q.limit,
            "key": q.key.to_json() if q.key else None,
            "value": q.value.to_json() if q.value else None,
            "headers": [
                {"name": name, "value": value.to_json() if value else None}
                for name, value in q.headers
            ],
            "max_value_bytes": q.max_value_bytes,
            "time_budget_s": q.time_budget_s,
        }


@dataclass
class ScanState:
    """Everything a scan's brokers have sent so far."""

    scan: Scan
    records: list[dict[str, Any]] = field(default_factory=list)
    ranges: dict[str, dict[str, int]] = field(default_factory=dict)
    progress: dict[int, dict[str, Any]] = field(default_factory=dict)
    done: dict[int, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    last_id: str = "0-0"

    def apply(self, entry: dict[str, Any]) -> None:
        broker = int(entry.get("broker", -1))
        kind = entry.get("type")
        if kind == "started":
            self.ranges.update(entry.get("partitions") or {})
            self.progress.setdefault(broker, {"scanned": 0, "matches": 0, "elapsed_s": 0.0})
        elif kind == "records":
            self.records += entry.get("records") or []
        elif kind == "progress":
            self.progress[broker] = entry
        elif kind == "error":
            partition = entry.get("partition")
            where = f"partition {partition}" if partition is not None else f"broker {broker}"
            self.errors.append(f"{where}: {entry.get('message')}")
        elif kind == "done":
            self.done[broker] = entry
            self.progress[broker] = entry
            if entry.get("reason") == "error":
                self.errors.append(f"broker {broker}: {entry.get('message')}")

    def check_stalled(self) -> None:
        """Brokers that never began (down, or their queue stuck) end with an error."""
        if time.monotonic() - self.scan.started_at < START_TIMEOUT_S:
            return
        for broker in self.scan.brokers:
            if broker not in self.progress and broker not in self.done:
                self.errors.append(f"broker {broker} did not answer; its partitions were not read")
                self.done[broker] = {"reason": "unavailable", "scanned": 0, "matches": 0}

    @property
    def finished(self) -> bool:
        return all(b in self.done for b in self.scan.brokers)

    @property
    def scanned(self) -> int:
        return sum(int(p.get("scanned", 0)) for p in self.progress.values())

    @property
    def to_scan(self) -> int:
        return sum(max(0, r["end"] - r["start"]) for r in self.ranges.values())

    def summary(self) -> dict[str, Any]:
        elapsed = max((float(p.get("elapsed_s", 0)) for p in self.progress.values()), default=0)
        reasons = sorted({str(d.get("reason")) for d in self.done.values()})
        return {
            "scan": self.scan.id,
            "finished": self.finished,
            "scanned": self.scanned,
            "to_scan": self.to_scan,
            "matches": len(self.records),
            "elapsed_s": round(elapsed, 3),
            "records_per_s": round(self.scanned / elapsed) if elapsed > 0 else None,
            "reasons": reasons,
            "errors": self.errors,
            "offline_partitions": list(self.scan.offline),
        }

    def sorted_records(self) -> list[dict[str, Any]]:
        """Oldest first (newest first for "latest"), at most the query's limit."""
        newest = self.scan.query.newest_first
        ordered = sorted(
            self.records,
            key=lambda r: (r["timestamp"], r["partition"], r["offset"]),
            reverse=newest,
        )
        return ordered[: self.scan.query.limit]


def scan_start(query: ScanQuery) -> Scan:
    """Ask each leader to search its partitions of the topic; raises if the topic is unknown."""
    rows = list(
        Partition.objects.filter(topic__name=query.topic)
        .order_by("index")
        .values_list("index", "leader_id")
    )
    if not rows:
        raise ServiceError(f"Topic {query.topic} does not exist.", "topic")
    if query.partition is not None:
        rows = [r for r in rows if r[0] == query.partition]
        if not rows:
            raise ServiceError(
                f"Topic {query.topic} has no partition {query.partition}.", "partition"
            )
    brokers: dict[int, list[int]] = {}
    offline: list[int] = []
    for index, leader in rows:
        if leader is None:
            offline.append(index)
        else:
            brokers.setdefault(leader, []).append(index)
    scan = Scan(
        uuid.uuid4().hex,
        query,
        {b: tuple(p) for b, p in brokers.items()},
        tuple(offline),
        time.monotonic(),
    )
    for broker, partitions in scan.brokers.items():
        app.send_task(
            "brokers.scan",
            kwargs={"request": scan.request(partitions)},
            queue=control.broker_queue(broker),
            expires=START_TIMEOUT_S,
            ignore_result=True,
        )
    return scan


def _entries(raw: Any, state: ScanState) -> list[dict[str, Any]]:
    out = []
    for _, messages in raw or ():
        for entry_id, fields in messages:
            state.last_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
            entry = json.loads(fields[b"d"])
            state.apply(entry)
            out.append(entry)
    return out


def scan_read(state: ScanState, block_ms: int = 500) -> list[dict[str, Any]]:
    """The entries that arrived since the last read (waiting up to `block_ms` for one)."""
    raw = redis_client().xread({state.scan.stream: state.last_id}, count=1000, block=block_ms)
    entries = _entries(raw, state)
    state.check_stalled()
    return entries


async def scan_read_async(
    client: aioredis.Redis, state: ScanState, block_ms: int = 500
) -> list[dict[str, Any]]:
    raw = await client.xread({state.scan.stream: state.last_id}, count=1000, block=block_ms)
    entries = _entries(raw, state)
    state.check_stalled()
    return entries


def scan_cancel(scan: Scan) -> None:
    redis_client().set(scan.cancel_key, b"1", ex=600)


def scan_run(query: ScanQuery, timeout_s: float = 60.0) -> ScanState:
    """Run a scan to its end (or `timeout_s`) and return everything it found."""
    state = ScanState(scan_start(query))
    deadline = time.monotonic() + timeout_s
    while not state.finished:
        if time.monotonic() > deadline:
            scan_cancel(state.scan)
            state.errors.append(f"the search was stopped after {timeout_s:.0f} s")
            break
        scan_read(state)
    return state


def message_get(topic: str, partition: int, offset: int) -> dict[str, Any] | None:
    """One message with its whole value (up to 1 MiB), or None if no record has that offset."""
    query = ScanQuery(
        topic,
        partition=partition,
        seek="offset",
        offset=offset,
        limit=1,
        max_value_bytes=DETAIL_VALUE_BYTES,
    )
    state = scan_run(query, timeout_s=30.0)
    if state.errors and not state.records:
        raise ServiceError("; ".join(state.errors))
    for record in state.records:
        if record["offset"] == offset:
            return record
    return None


# Presenting records ---------------------------------------------------------------------


def decode_text(data: str | None) -> str | None:
    """A base64 field of a record as text (invalid UTF-8 replaced)."""
    if data is None:
        return None
    return base64.b64decode(data).decode("utf-8", "replace")


def export_row(record: dict[str, Any]) -> dict[str, Any]:
    """A record for JSON or CSV export: text key and value, headers as an object."""
    timestamp = record.get("timestamp")
    return {
        "partition": record["partition"],
        "offset": record["offset"],
        "timestamp": timestamp,
        "timestamp_iso": (
            datetime.datetime.fromtimestamp(timestamp / 1000, datetime.UTC).isoformat()
            if isinstance(timestamp, int) and timestamp >= 0
            else None
        ),
        "key": decode_text(record.get("key")),
        "value": decode_text(record.get("value")),
        "headers": {name: decode_text(value) for name, value in record.get("headers") or []},
        "value_size": record.get("value_size"),
    }


# Live tail --------------------------------------------------------------------------------


def record_json(message: Any) -> dict[str, Any]:
    """A consumed confluent-kafka message in the shape scans return."""
    key = message.key()
    value = message.value()
    _, timestamp = message.timestamp()
    return {
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": timestamp,
        "key": None if key is None else base64.b64encode(key[:4096]).decode(),
        "key_size": None if key is None else len(key),
        "value": None if value is None else base64.b64encode(value[:4096]).decode(),
        "value_size": None if value is None else len(value),
        "headers": [
            [name, None if v is None else base64.b64encode(v[:4096]).decode()]
            for name, v in message.headers() or []
        ],
    }


class Tail:
    """New messages of a topic, read from the end of every partition by a consumer of its own.

    Blocking calls: run them in a thread. The consumer never joins a group nor commits.
    """

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.consumer: Consumer | None = None

    def open(self) -> dict[int, int]:
        """Assign every partition at its current end; returns partition → start offset."""
        client = admin()
        described = client.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if described is None or described.error is not None or not described.partitions:
            raise ServiceError(f"Topic {self.topic} does not exist.")
        partitions = [TopicPartition(self.topic, p) for p in sorted(described.partitions)]
        ends = client.list_offsets({tp: OffsetSpec.latest() for tp in partitions})
        starts = {tp.partition: result(ends[tp]).offset for tp in partitions}
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers(),
                "group.id": "kafkaweb-ui-tail",
                "client.id": "kafkaweb-ui-tail",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "isolation.level": "read_uncommitted",
                "fetch.wait.max.ms": 100,
                "fetch.queue.backoff.ms": 10,
                "socket.nagle.disable": True,
            }
        )
        self.consumer.assign([TopicPartition(self.topic, p, o) for p, o in starts.items()])
        return starts

    def poll(self, max_messages: int = 2000, timeout_s: float = 0.2) -> list[Any]:
        """What arrived: returns as soon as one message is there, with all that are ready."""
        assert self.consumer is not None
        first = self.consumer.poll(timeout_s)
        if first is None:
            return []
        rest = self.consumer.consume(max_messages - 1, 0) if max_messages > 1 else []
        return [m for m in (first, *rest) if m.error() is None]

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()
            self.consumer = None
