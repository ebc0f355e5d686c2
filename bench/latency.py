"""End-to-end latency at 1,000 records/s: produce → broker → consumer, per record."""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

from bench.harness import Result, cluster, create_topic, quantile

RATE = 1000
# Records sent first and not counted: connections, metadata and the first fetches settle.
WARM_UP_S = 1.0


def measure(bootstrap: str, topic: str, acks: str, seconds: float) -> list[float]:
    """Latencies in ms. The producer paces itself by sleeping, so the consumer thread runs freely."""
    warm_up = int(RATE * WARM_UP_S)
    count = warm_up + int(RATE * seconds)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "latency",
            "enable.auto.commit": False,
            "socket.nagle.disable": True,
            "fetch.wait.max.ms": 100,
            "fetch.queue.backoff.ms": 0,
        }
    )
    consumer.assign([TopicPartition(topic, 0, 0)])
    latencies: list[float] = []

    def read() -> None:
        deadline = time.monotonic() + WARM_UP_S + seconds + 30
        while len(latencies) < count and time.monotonic() < deadline:
            message = consumer.poll(0.1)
            if message is not None and not message.error():
                latencies.append((time.perf_counter() - float(message.value())) * 1000)

    reader = threading.Thread(target=read)
    reader.start()
    producer = Producer(
        {"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 0, "socket.nagle.disable": True}
    )
    time.sleep(1)
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        producer.produce(topic, str(time.perf_counter()).encode())
        producer.poll(0)
    producer.flush(30)
    reader.join()
    consumer.close()
    return sorted(latencies[warm_up:])


def _results(label: str, latencies: list[float], p99_target: float) -> list[Result]:
    p99 = quantile(latencies, 0.99)
    return [
        Result("latency", f"{label} p50", quantile(latencies, 0.50), "ms"),
        Result("latency", f"{label} p99", p99, "ms", f"≤ {p99_target:g} ms", p99 <= p99_target),
        Result("latency", f"{label} p99.9", quantile(latencies, 0.999), "ms"),
    ]


def run(quick: bool = False) -> list[Result]:
    seconds = 3 if quick else 10
    results = []
    with cluster(brokers=1) as running:
        create_topic(running, "latency", 1, 1)
        latencies = measure(running.spec.bootstrap_servers, "latency", "1", seconds)
        results += _results("1 broker acks=1 at 1,000 rec/s", latencies, 1)
    with cluster(brokers=3) as running:
        create_topic(running, "latency", 1, 3)
        latencies = measure(running.spec.bootstrap_servers, "latency", "all", seconds)
        results += _results("3 brokers RF=3 acks=all at 1,000 rec/s", latencies, 3)
    return results
