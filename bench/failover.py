"""Leader failover: from SIGKILL of a leader to the first acks=all write its successor acknowledges."""

from __future__ import annotations

import statistics
import threading
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from bench.harness import SESSION_TIMEOUT_MS, Result, cluster, create_topic


def run(quick: bool = False) -> list[Result]:
    rounds = 2 if quick else 5
    times = []
    with cluster(brokers=3, controllers=2) as running:
        bootstrap = running.spec.bootstrap_servers
        create_topic(running, "failover", 1, 3)
        admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 3000})
        # (created, acknowledged) wall-clock times of every acknowledged record.
        acked: list[tuple[float, float]] = []
        stop = threading.Event()

        def produce() -> None:
            producer = Producer(
                {
                    "bootstrap.servers": bootstrap,
                    "acks": "all",
                    "enable.idempotence": True,
                    "linger.ms": 0,
                    "retry.backoff.ms": 20,
                    "retry.backoff.max.ms": 100,
                }
            )
            while not stop.is_set():
                producer.produce(
                    "failover",
                    b"x",
                    on_delivery=lambda err, msg: (
                        err or acked.append((msg.timestamp()[1] / 1000, time.time()))
                    ),
                )
                producer.poll(0.001)
            producer.flush(30)

        writer = threading.Thread(target=produce)
        writer.start()
        try:
            for _ in range(rounds):
                time.sleep(2)
                leader = (
                    admin.list_topics("failover", timeout=10)
                    .topics["failover"]
                    .partitions[0]
                    .leader
                )
                killed_at = time.time()
                running.kill(f"broker-{leader}")
                # Only a record created after the kill can have been acknowledged by the successor.
                deadline = killed_at + 60
                first = None
                while first is None and time.time() < deadline:
                    time.sleep(0.005)
                    first = next((a for c, a in reversed(acked[-500:]) if c > killed_at), None)
                if first is not None:
                    first = min(a for c, a in acked[-2000:] if c > killed_at)
                    times.append(first - killed_at)
                running.start_broker(leader)
                time.sleep(3)
        finally:
            stop.set()
            writer.join()
    median = statistics.median(times) if times else float("nan")
    return [
        Result(
            "failover",
            f"SIGKILL of a leader → first acks=all ack on its successor (median of {len(times)})",
            median,
            "s",
            "≤ 3 s",
            median <= 3,
            note=f"broker.session.timeout.ms={SESSION_TIMEOUT_MS}; each: "
            + ", ".join(f"{t:.2f}" for t in times),
        )
    ]
