"""Admin UI benchmarks: server time of each page with 10,000 topics and 1,000 groups in the
metadata, and the rate at which a broker scans a partition for a message search.

Each measurement runs in a child process (`python -m bench.ui pages|scan`) whose Django
settings point at the database and Redis of its own cluster; it prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness
from bench.harness import BENCH_DIR, Result
from kafkaweb import env
from kafkaweb.cluster import PYTHON, Cluster, ClusterSpec

TOPICS = 10_000
PARTITIONS = 3
BROKERS = 3
GROUPS = 1_000
EVENTS = 20_000
PAGE_TARGET_MS = 200.0
SCAN_TARGET = 1_000_000


def results(quick: bool) -> list[Result]:
    return pages(quick) + scan(quick)


def _child(args: list[str], environment: dict[str, str], timeout_s: float) -> Any:
    done = subprocess.run(
        [PYTHON, "-m", "bench.ui", *args],
        cwd=env.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.ui {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


# Pages ----------------------------------------------------------------------------------


def pages(quick: bool) -> list[Result]:
    """Server time (middleware, view, queries, template) per page, median of several runs."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as tmp:
        spec = ClusterSpec.isolated(Path(tmp))
        cluster = Cluster(spec)
        try:
            cluster.start_redis()
            cluster.migrate()
            timings = _child(["pages", "--runs", "5" if quick else "15"], spec.environment(), 900)
        finally:
            cluster.stop()
    out = []
    for name, samples in timings.items():
        median = statistics.median(samples)
        out.append(
            Result(
                "ui",
                f"page {name}",
                round(median, 1),
                "ms",
                target=f"≤ {PAGE_TARGET_MS:.0f} ms",
                ok=median <= PAGE_TARGET_MS,
                note=f"{TOPICS:,} topics, {GROUPS:,} groups; max {max(samples):.0f} ms",
            )
        )
    return out


PAGES = [
    ("overview", "/"),
    ("topics", "/topics/"),
    ("topics search", "/topics/?q=07"),
    ("topics by size", "/topics/?sort=size&order=desc"),
    ("topics by partitions", "/topics/?sort=partitions&order=desc"),
    ("topics page 150", "/topics/?page=150"),
    ("topic", "/topics/topic-05000/"),
    ("messages", "/topics/topic-05000/messages/"),
    ("tail", "/topics/topic-05000/tail/"),
    ("groups", "/groups/"),
    ("groups by lag", "/groups/?sort=lag&order=desc"),
    ("group", "/groups/group-0500/"),
    ("events", "/events/"),
    ("api topics", "/api/topics"),
    ("api groups", "/api/groups"),
]


def _seed() -> None:
    """Metadata for 10,000 topics and 1,000 groups, and what leaders and the monitor publish."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from brokers import control
    from streams import events, selectors
    from streams.models import (
        Broker,
        ClusterEvent,
        CommittedOffset,
        ConsumerGroup,
        Partition,
        Replica,
        Topic,
    )

    get_user_model().objects.create_user("bench", password="bench-password", is_staff=True)
    Broker.objects.bulk_create(
        Broker(id=b, host="127.0.0.1", port=9091 + b, state=Broker.State.UP)
        for b in range(1, BROKERS + 1)
    )
    topics = Topic.objects.bulk_create(
        (Topic(name=f"topic-{n:05d}") for n in range(TOPICS)), batch_size=2000
    )

    def leader(n: int, p: int) -> int:
        return 1 + (n + p) % BROKERS

    partitions = Partition.objects.bulk_create(
        (
            Partition(topic=t, index=p, leader_id=leader(n, p))
            for n, t in enumerate(topics)
            for p in range(PARTITIONS)
        ),
        batch_size=2000,
    )
    Replica.objects.bulk_create(
        (
            Replica(
                partition=row,
                broker_id=1 + (leader(*divmod(i, PARTITIONS)) - 1 + k) % BROKERS,
                position=k,
            )
            for i, row in enumerate(partitions)
            for k in range(BROKERS)
        ),
        batch_size=5000,
    )
    now = timezone.now()
    groups = ConsumerGroup.objects.bulk_create(
        ConsumerGroup(
            group_id=f"group-{g:04d}",
            state="Stable" if g % 3 else "Empty",
            protocol_type="consumer",
            protocol="range",
            members=[
                {
                    "member_id": f"m-{g}",
                    "client_id": "bench",
                    "client_host": "/127.0.0.1",
                    "assignment": [{"topic": f"topic-{g:05d}", "partitions": [0, 1, 2]}],
                }
            ]
            if g % 3
            else [],
        )
        for g in range(GROUPS)
    )
    CommittedOffset.objects.bulk_create(
        (
            CommittedOffset(
                group=group, topic=f"topic-{g:05d}", partition=p, offset=100 * p, committed_at=now
            )
            for g, group in enumerate(groups)
            for p in range(PARTITIONS)
        ),
        batch_size=5000,
    )
    ClusterEvent.objects.bulk_create(
        (
            ClusterEvent(
                kind="leader",
                message=f"topic-{n % TOPICS:05d}-0: leader 1 → 2",
                topic=f"topic-{n % TOPICS:05d}",
                partition=0,
            )
            for n in range(EVENTS)
        ),
        batch_size=5000,
    )
    client = selectors.redis_client()
    pipe = client.pipeline(transaction=False)
    for broker in range(1, BROKERS + 1):
        pipe.sadd(control.BROKER_IDS_KEY, broker)
    for i, row in enumerate(partitions):
        pipe.hset(
            control.partitions_key(leader(*divmod(i, PARTITIONS))),
            f"{row.topic.name}/{row.index}",
            json.dumps(
                {
                    "log_start": 0,
                    "high_watermark": 1000 + i,
                    "log_end": 1000 + i,
                    "size": 4096 * i,
                    "leader_epoch": 0,
                    "isr": [1, 2, 3],
                }
            ),
        )
    pipe.execute()
    # What the monitor sums every few seconds for sorting topics by size.
    asyncio.run(_topic_totals())
    client.set(
        events.STATS_LATEST_KEY,
        json.dumps(
            {
                "type": events.STATS_UPDATE,
                "at": int(time.time() * 1000),
                "controller": {"id": 1, "epoch": 1},
                "brokers": [
                    {
                        "id": b,
                        "alive": True,
                        "partitions": TOPICS * PARTITIONS,
                        "leaders": TOPICS,
                        "under_replicated": 0,
                        "disk_bytes": 10**9,
                        "connections": 10,
                        "bytes_in_per_s": 1e6,
                        "bytes_out_per_s": 2e6,
                        "messages_in_per_s": 1e4,
                    }
                    for b in range(1, BROKERS + 1)
                ],
                "totals": {
                    "bytes_in_per_s": 3e6,
                    "bytes_out_per_s": 6e6,
                    "messages_in_per_s": 3e4,
                    "disk_bytes": 3 * 10**9,
                    "under_replicated": 0,
                    "connections": 30,
                },
                "topics": {
                    f"topic-{n:05d}": [1000.0 * n, 10.0, 2000.0] for n in range(0, TOPICS, 20)
                },
            }
        ),
    )
    client.set(
        events.LAG_LATEST_KEY,
        json.dumps(
            {
                "type": events.LAG_UPDATE,
                "at": timezone.now().isoformat(),
                "groups": [
                    {
                        "group": f"group-{g:04d}",
                        "state": "Stable",
                        "members": 1,
                        "total_lag": g * 3,
                        "partitions": [
                            {
                                "topic": f"topic-{g:05d}",
                                "partition": p,
                                "committed": 100 * p,
                                "log_end": 100 * p + g,
                                "lag": g,
                            }
                            for p in range(PARTITIONS)
                        ],
                    }
                    for g in range(GROUPS)
                ],
            }
        ),
    )


async def _topic_totals() -> None:
    import redis.asyncio as aioredis
    from django.conf import settings

    from streams.services.live import publish_topic_totals

    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        await publish_topic_totals(client)
    finally:
        await client.aclose()


def _time_pages(runs: int) -> dict[str, list[float]]:
    from django.test import Client

    _seed()
    client = Client()
    assert client.login(username="bench", password="bench-password")
    timings: dict[str, list[float]] = {}
    for name, path in PAGES:
        response = client.get(path)  # warm: template compilation, first connections
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}")
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            client.get(path)
            samples.append((time.perf_counter() - started) * 1000)
        timings[name] = samples
    return timings


# The broker-side scan ----------------------------------------------------------------------


def scan(quick: bool) -> list[Result]:
    records = 500_000 if quick else 3_000_000
    with harness.cluster(brokers=1) as cluster:
        found = _child(["scan", "--records", str(records)], cluster.spec.environment(), 1200)
    out = []
    for case in found:
        rate = case["records_per_s"]
        out.append(
            Result(
                "ui",
                f"message scan, {case['name']}",
                round(rate),
                "records/s",
                target=f"≥ {SCAN_TARGET:,}",
                ok=rate >= SCAN_TARGET,
                note=f"{case['scanned']:,} records in {case['elapsed_s']:.2f} s on the broker, "
                f"{case['matches']} matches; {case['wall_s']:.2f} s end to end",
            )
        )
    return out


def _produce(bootstrap: str, topic: str, records: int, compression: str) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(60)
    deadline = time.monotonic() + 60
    while admin.list_topics(topic, timeout=10).topics[topic].partitions[0].leader < 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no leader for {topic}")
        time.sleep(0.1)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "compression.type": compression,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    for i in range(records):
        value = b'{"order": %d, "customer": "c-%d", "amount": %d, "status": "paid"}' % (
            i,
            i % 997,
            i % 5000,
        )
        while True:
            try:
                producer.produce(topic, value, key=b"order-%d" % i)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(300) != 0:
        raise RuntimeError("records were not delivered")


def _time_scans(records: int) -> list[dict[str, Any]]:
    from streams import services

    bootstrap = env.bootstrap_servers()
    out = []
    for compression in ("lz4", "none"):
        topic = f"scan-{compression}-{uuid.uuid4().hex[:6]}"
        _produce(bootstrap, topic, records, compression)
        rare = f'"order": {records - 7},'
        cases: list[tuple[str, dict[str, Any]]] = [
            ("value contains", {"value": services.TextFilter(rare)}),
            (
                "value regex",
                {
                    "value": services.TextFilter(
                        r'"customer": "c-99[0-6]", "amount": 499\d\b', regex=True
                    )
                },
            ),
            ("key contains", {"key": services.TextFilter(f"order-{records // 2}x")}),
        ]
        if compression == "none":
            cases = cases[:1]
        for name, filters in cases:
            query = services.ScanQuery(topic, seek="earliest", limit=1000, **filters)
            started = time.perf_counter()
            state = services.scan_run(query, timeout_s=600)
            wall = time.perf_counter() - started
            summary = state.summary()
            if summary["errors"]:
                raise RuntimeError("; ".join(summary["errors"]))
            out.append(
                {
                    "name": f"{name}, {records:,} records ({compression})",
                    "scanned": summary["scanned"],
                    "matches": summary["matches"],
                    "elapsed_s": summary["elapsed_s"],
                    "records_per_s": summary["scanned"] / max(summary["elapsed_s"], 1e-6),
                    "wall_s": wall,
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ui")
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("pages").add_argument("--runs", type=int, default=15)
    sub.add_parser("scan").add_argument("--records", type=int, default=3_000_000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kafkaweb.settings")
    import django

    django.setup()
    result = _time_pages(args.runs) if args.what == "pages" else _time_scans(args.records)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
