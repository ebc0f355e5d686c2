"""A producer under load and the checks Kafka's own fault tests make afterwards."""

from __future__ import annotations

import struct
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from kafkaweb.cluster import Cluster


@dataclass
class ProducerLoad:
    """An idempotent acks=all producer writing numbered records until stopped."""

    bootstrap: str
    topic: str
    config: dict[str, object] = field(default_factory=dict)
    acked: list[tuple[int, int, int]] = field(default_factory=list)  # (partition, offset, number)
    errors: list[str] = field(default_factory=list)
    sent: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> ProducerLoad:
        self._thread.start()
        return self

    def _run(self) -> None:
        producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "message.timeout.ms": 120000,
                **self.config,
            }
        )

        def delivered(err: object, msg: object) -> None:
            if err is not None:
                self.errors.append(str(err))
            else:
                self.acked.append((msg.partition(), msg.offset(), int(msg.value())))  # type: ignore[attr-defined]

        number = 0
        while not self._stop.is_set():
            try:
                producer.produce(
                    self.topic,
                    key=str(number % 64).encode(),
                    value=str(number).encode(),
                    on_delivery=delivered,
                )
                number += 1
            except BufferError:
                producer.poll(0.05)
            producer.poll(0)
            if number % 200 == 0:
                time.sleep(0.01)
        self.sent = number
        remaining = producer.flush(180)
        if remaining:
            self.errors.append(f"{remaining} records never delivered")

    def wait_for_progress(self, more: int = 500, timeout_s: float = 60) -> None:
        target = len(self.acked) + more
        deadline = time.monotonic() + timeout_s
        while len(self.acked) < target:
            assert time.monotonic() < deadline, (
                f"producer made no progress ({len(self.acked)} acked)"
            )
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(240)


def high_watermarks(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw-probe"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


def read_all(
    bootstrap: str, topic: str, partitions: int, timeout_s: float = 60
) -> dict[int, list[tuple[int, int]]]:
    """Every record below each partition's high watermark: partition → [(offset, number)]."""
    ends = high_watermarks(bootstrap, topic, partitions)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "verifier",
            "enable.auto.commit": False,
            "fetch.queue.backoff.ms": 1,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out: dict[int, list[tuple[int, int]]] = defaultdict(list)
    positions = dict.fromkeys(range(partitions), 0)
    deadline = time.monotonic() + timeout_s
    try:
        while any(positions[p] < ends[p] for p in positions):
            assert time.monotonic() < deadline, (
                f"could not read to the high watermarks {ends}: at {positions}"
            )
            for message in consumer.consume(10000, 0.5):
                if message.error():
                    continue
                p = message.partition()
                out[p].append((message.offset(), int(message.value())))
                positions[p] = message.offset() + 1
    finally:
        consumer.close()
    return out


def check_no_loss(load: ProducerLoad, stored: dict[int, list[tuple[int, int]]]) -> None:
    """Every acknowledged record is there exactly once, where its ack said, in order."""
    assert not [e for e in load.errors if "never delivered" in e], load.errors[:5]
    where: dict[int, tuple[int, int]] = {}
    for partition, records in stored.items():
        offsets = [o for o, _ in records]
        assert offsets == sorted(set(offsets)), f"partition {partition}: offsets repeat or go back"
        for offset, number in records:
            assert number not in where, (
                f"record {number} stored twice: {where[number]} and {(partition, offset)}"
            )
            where[number] = (partition, offset)
        numbers = [n for _, n in records]
        assert numbers == sorted(numbers), f"partition {partition}: one producer's order broken"
    lost = [(p, o, n) for p, o, n in load.acked if where.get(n) != (p, o)]
    assert not lost, f"{len(lost)} acknowledged records lost or moved, e.g. {lost[:5]}"


def replica_batches(log_dir: Path) -> list[tuple[int, bytes]]:
    """(base offset, raw bytes) of every batch in a replica's segment files."""
    batches = []
    for segment in sorted(log_dir.glob("*.log")):
        data = segment.read_bytes()
        position = 0
        while position + 12 <= len(data):
            base_offset, length = struct.unpack_from(">qi", data, position)
            end = position + 12 + length
            if length <= 0 or end > len(data):
                break
            batches.append((base_offset, data[position:end]))
            position = end
    return batches


def check_replicas_identical(
    cluster: Cluster, topic: str, partitions: int, timeout_s: float = 60
) -> None:
    """All replicas of each partition hold the same bytes up to the high watermark."""
    admin = AdminClient({"bootstrap.servers": cluster.spec.bootstrap_servers})
    ends = high_watermarks(cluster.spec.bootstrap_servers, topic, partitions)
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = admin.list_topics(topic, timeout=10).topics[topic]
        mismatches = []
        for p in range(partitions):
            replicas = metadata.partitions[p].replicas
            logs = {}
            for broker in replicas:
                log_dir = cluster.spec.data_dir / f"broker-{broker}" / f"{topic}-{p}"
                logs[broker] = [b for b in replica_batches(log_dir) if b[0] < ends[p]]
            reference = logs[replicas[0]]
            mismatches += [(p, broker) for broker, batches in logs.items() if batches != reference]
        if not mismatches:
            return
        assert time.monotonic() < deadline, (
            f"replicas differ below the high watermark: {mismatches}"
        )
        time.sleep(0.5)
