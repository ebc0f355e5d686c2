"""Consumer groups: rebalance time, offset commit rate, and the lag cycle's cost.

`python -m bench.groups [--quick]` prints a table; `run(quick)` returns the figures.

- Rebalance: a group of three confluent-kafka consumers (range assignor, heartbeat every
  300 ms) on a three-broker cluster; the time from a fourth consumer subscribing (or one
  closing) until every remaining member holds its new assignment.
- Commits: synchronous OffsetCommits per second from 20 consumers of 20 groups at once,
  each acknowledged only once durable.
- Lag cycle: what `manage.py monitor` does each second — read every committed offset and the
  published partition offsets, compute lag, push it over Channels and record its history —
  with 1,000 groups and 10,000 committed offsets, in a process of its own against a private
  Redis and database.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import BENCH_DIR, Result, cluster, create_topic
from kafkaweb import env
from kafkaweb.cluster import PYTHON, Cluster, ClusterSpec

GROUP_CONFIG = "group.initial.rebalance.delay.ms=0,group.min.session.timeout.ms=1000"
PARTITIONS = 12
LAG_GROUPS = 1000
LAG_OFFSETS = 10000
LAG_TARGET_S = 1.0
COMMITTERS = 20


class _Member:
    """A consumer polling in its own thread; remembers when it got each assignment."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        from confluent_kafka import Consumer

        self.assigned_at: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 300,
                "partition.assignment.strategy": "range",
            }
        )
        self._consumer.subscribe(
            [topic], on_assign=lambda c, ps: self.assigned_at.append((time.monotonic(), len(ps)))
        )
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._consumer.poll(0.05)
        self._consumer.close()

    def latest_since(self, t0: float) -> tuple[float, int] | None:
        """(when, partitions) of the latest assignment after t0 (None: none yet)."""
        after = [a for a in self.assigned_at if a[0] >= t0]
        return after[-1] if after else None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(30)


def _settled(members: list[_Member], t0: float, timeout_s: float = 60) -> float:
    """Seconds from t0 until every member holds a new assignment, together every partition."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        latest = [m.latest_since(t0) for m in members]
        if all(latest) and sum(n for _, n in latest) == PARTITIONS:  # type: ignore[misc]
            return max(t for t, _ in latest) - t0  # type: ignore[misc]
        time.sleep(0.01)
    raise TimeoutError("the group did not settle")


def _rebalances(bootstrap: str, rounds: int) -> tuple[list[float], list[float]]:
    joins, leaves = [], []
    members = [_Member(bootstrap, "bench", "rebalance") for _ in range(3)]
    try:
        _settled(members, 0.0)
        for _ in range(rounds):
            time.sleep(1)
            t0 = time.monotonic()
            members.append(_Member(bootstrap, "bench", "rebalance"))
            joins.append(_settled(members, t0))
            time.sleep(1)
            t0 = time.monotonic()
            members.pop(0).close()
            leaves.append(_settled(members, t0))
    finally:
        for member in members:
            member.close()
    return joins, leaves


def _commit_rate(bootstrap: str, committers: int, seconds: float) -> float:
    """Synchronous OffsetCommits per second from consumers of as many groups, together."""
    from confluent_kafka import Consumer, TopicPartition

    counts = [0] * committers
    stop = threading.Event()

    def commit(index: int) -> None:
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"committer-{index}"})
        offset = 0
        while not stop.is_set():
            offset += 1
            consumer.commit(
                offsets=[TopicPartition("rebalance", index % PARTITIONS, offset)],
                asynchronous=False,
            )
            counts[index] += 1
        consumer.close()

    threads = [threading.Thread(target=commit, args=(i,)) for i in range(committers)]
    for thread in threads:
        thread.start()
    time.sleep(2)  # coordinators found, connections up
    before, t0 = sum(counts), time.monotonic()
    time.sleep(seconds)
    done, elapsed = sum(counts) - before, time.monotonic() - t0
    stop.set()
    for thread in threads:
        thread.join(30)
    return done / elapsed


def _create_topic(running: Cluster, name: str) -> None:
    from confluent_kafka import KafkaError, KafkaException

    for attempt in range(3):
        try:
            create_topic(running, name, PARTITIONS, 3)
            return
        except KafkaException as exc:
            # A fresh client can lose its first request while it swaps bootstrap connections.
            if exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def cluster_figures(quick: bool) -> dict[str, Any]:
    with cluster(brokers=3, broker_config=GROUP_CONFIG) as running:
        bootstrap = running.spec.bootstrap_servers
        _create_topic(running, "rebalance")
        joins, leaves = _rebalances(bootstrap, 2 if quick else 5)
        commits = _commit_rate(bootstrap, COMMITTERS, 3 if quick else 10)
    return {"joins": joins, "leaves": leaves, "commits_per_s": commits}


def lag_cycle_times(quick: bool) -> dict[str, Any]:
    """Run _lag_worker in a process configured for a private Redis and database."""
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as tmp:
        spec = ClusterSpec.isolated(Path(tmp), brokers=0, controllers=0)
        running = Cluster(spec)
        try:
            running.start_redis()
            running.migrate()
            out = subprocess.run(
                [PYTHON, "-m", "bench.groups", "--lag-worker", "5" if quick else "20"],
                cwd=env.BASE_DIR,
                env=spec.environment(),
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            )
        finally:
            running.stop()
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _lag_worker(cycles: int) -> None:
    """Seed 1,000 groups and 10,000 offsets, then time monitor cycles; prints JSON."""
    import asyncio
    import datetime

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kafkaweb.settings")
    django.setup()
    import redis
    from asgiref.sync import sync_to_async
    from django.conf import settings

    from brokers import control
    from streams import selectors, services
    from streams.models import CommittedOffset, ConsumerGroup

    per_group = LAG_OFFSETS // LAG_GROUPS
    groups = ConsumerGroup.objects.bulk_create(
        ConsumerGroup(group_id=f"group-{g:04d}", state="Stable", members=[{"member_id": "m"}])
        for g in range(LAG_GROUPS)
    )
    now = datetime.datetime.now(datetime.UTC)
    CommittedOffset.objects.bulk_create(
        (
            CommittedOffset(
                group=group, topic=f"topic-{g % 100}", partition=p, offset=1000, committed_at=now
            )
            for g, group in enumerate(groups)
            for p in range(per_group)
        ),
        batch_size=2000,
    )
    # What three brokers would publish for the partitions those offsets belong to.
    client = redis.Redis.from_url(settings.REDIS_URL)
    for broker in (1, 2, 3):
        client.sadd(control.BROKER_IDS_KEY, broker)
        client.hset(
            control.partitions_key(broker),
            mapping={
                f"topic-{t}/{p}": json.dumps(
                    {"log_start": 0, "high_watermark": 1500, "log_end": 1500, "size": 0}
                )
                for t in range(100)
                for p in range(per_group)
                if (t + p) % 3 == broker - 1
            },
        )

    async def measure() -> dict[str, Any]:
        snapshot_of = sync_to_async(selectors.group_lag_snapshot, thread_sensitive=True)
        read, push = [], []
        size = 0
        for _ in range(cycles):
            t0 = time.perf_counter()
            snapshot = await snapshot_of()
            t1 = time.perf_counter()
            await services.lag_publish(snapshot)
            push.append(time.perf_counter() - t1)
            read.append(t1 - t0)
            size = len(json.dumps(snapshot.to_message()))
        assert sum(len(g.partitions) for g in snapshot.groups) == LAG_OFFSETS
        return {"read": read, "push": push, "message_bytes": size}

    print(json.dumps(asyncio.run(measure())))


def run(quick: bool = False) -> dict[str, Any]:
    figures = cluster_figures(quick)
    joins, leaves = figures["joins"], figures["leaves"]
    lag = lag_cycle_times(quick)
    cycles = sorted(r + p for r, p in zip(lag["read"], lag["push"], strict=True))
    return {
        "rebalance_join_s": statistics.median(joins),
        "rebalance_leave_s": statistics.median(leaves),
        "rebalance_rounds": len(joins),
        "offset_commits_per_s": figures["commits_per_s"],
        "lag_cycle_s": statistics.median(cycles),
        "lag_cycle_max_s": cycles[-1],
        "lag_read_s": statistics.median(lag["read"]),
        "lag_push_s": statistics.median(lag["push"]),
        "lag_message_bytes": lag["message_bytes"],
        "lag_groups": LAG_GROUPS,
        "lag_offsets": LAG_OFFSETS,
    }


def results(quick: bool = False) -> list[Result]:
    figures = run(quick)
    rounds = figures["rebalance_rounds"]
    return [
        Result(
            "groups",
            f"rebalance of a group of 3 when a 4th joins (median of {rounds})",
            figures["rebalance_join_s"],
            "s",
            note="heartbeat.interval.ms 300",
        ),
        Result(
            "groups",
            f"rebalance of a group of 4 when one leaves (median of {rounds})",
            figures["rebalance_leave_s"],
            "s",
            note="heartbeat.interval.ms 300",
        ),
        Result(
            "groups",
            f"synchronous OffsetCommits, {COMMITTERS} consumers at once",
            figures["offset_commits_per_s"],
            "commits/s",
            note="each answered once durable in the metadata DB (SQLite)",
        ),
        Result(
            "groups",
            f"lag cycle, {LAG_GROUPS:,} groups / {LAG_OFFSETS:,} offsets (median)",
            figures["lag_cycle_s"],
            "s",
            target=f"< {LAG_TARGET_S:g} s",
            ok=figures["lag_cycle_max_s"] < LAG_TARGET_S,
            note=f"read {figures['lag_read_s']:.3f} s, push {figures['lag_push_s']:.3f} s, "
            f"max {figures['lag_cycle_max_s']:.3f} s, message {figures['lag_message_bytes'] / 1e6:.1f} MB",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.groups")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--lag-worker", type=int, metavar="CYCLES", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.lag_worker:
        _lag_worker(args.lag_worker)
        return
    from bench.report import table

    print(table(results(args.quick)))


if __name__ == "__main__":
    main()
