"""Produce and consume throughput: one broker acks=1, and three brokers RF=3 acks=all.

Each figure is the best of ROUNDS runs (fresh topics each time), as for Redis Streams: other
work on a shared machine only ever slows a run down.
"""

from __future__ import annotations

from bench import clients
from bench.harness import ROUNDS, CpuMeter, Result, broker_pids, cluster, create_topic

PARTITIONS = 6


def single_broker(quick: bool) -> list[Result]:
    results = []
    workloads = [(200_000 if quick else 1_000_000, 100), (50_000 if quick else 200_000, 1024)]
    with cluster(brokers=1) as running:
        bootstrap = running.spec.bootstrap_servers
        for count, size in workloads:
            seconds = read_seconds = float("inf")
            for round_ in range(1 if quick else ROUNDS):
                topic = f"throughput-{size}-{round_}"
                create_topic(running, topic, PARTITIONS, 1)
                meter = CpuMeter(broker_pids(running))
                took = clients.produce(bootstrap, topic, count, size, acks="1")
                if took < seconds:
                    seconds, produce_cpu = took, meter.percent()[0]
                meter = CpuMeter(broker_pids(running))
                took = clients.consume(bootstrap, topic, PARTITIONS, count)
                if took < read_seconds:
                    read_seconds, consume_cpu = took, meter.percent()[0]
            label = f"1 broker, {count:,} × {size} B, acks=1"
            target = "≥ 1,000,000 rec/s" if size == 100 else ""
            results += [
                Result(
                    "throughput",
                    f"produce: {label}",
                    count / seconds,
                    "rec/s",
                    target,
                    (count / seconds >= 1_000_000) if size == 100 else None,
                    note=f"{count * size / seconds / 1e6:.0f} MB/s; broker CPU {produce_cpu:.0f}%",
                ),
                Result(
                    "throughput",
                    f"consume: {label}",
                    count / read_seconds,
                    "rec/s",
                    target,
                    (count / read_seconds >= 1_000_000) if size == 100 else None,
                    note=f"{count * size / read_seconds / 1e6:.0f} MB/s; broker CPU {consume_cpu:.0f}%",
                ),
            ]
    return results


def replicated(quick: bool) -> list[Result]:
    count = 200_000 if quick else 1_000_000
    with cluster(brokers=3) as running:
        bootstrap = running.spec.bootstrap_servers
        seconds = read_seconds = float("inf")
        for round_ in range(1 if quick else ROUNDS):
            topic = f"replicated-{round_}"
            create_topic(running, topic, PARTITIONS, 3)
            meter = CpuMeter(broker_pids(running))
            took = clients.produce(bootstrap, topic, count, 100, acks="all")
            if took < seconds:
                seconds, cpu = took, meter.percent()
            read_seconds = min(read_seconds, clients.consume(bootstrap, topic, PARTITIONS, count))
    return [
        Result(
            "throughput",
            f"produce: 3 brokers RF=3, {count:,} × 100 B, acks=all",
            count / seconds,
            "rec/s",
            "≥ 400,000 rec/s",
            count / seconds >= 400_000,
            note="broker CPU " + ", ".join(f"{c:.0f}%" for c in cpu),
        ),
        Result(
            "throughput",
            f"consume: 3 brokers RF=3, {count:,} × 100 B",
            count / read_seconds,
            "rec/s",
        ),
    ]


def run(quick: bool = False) -> list[Result]:
    return single_broker(quick) + replicated(quick)
