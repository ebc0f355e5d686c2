"""Producing test messages from the UI and the API, through a real Kafka producer."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from streams import events
from streams.services.kafka import TIMEOUT_S, ServiceError, from_kafka, producer

ACKS = ("0", "1", "all")
COMPRESSIONS = ("none", "gzip", "snappy", "lz4", "zstd")
MAX_COUNT = 100_000
COUNTER = "{{i}}"


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where one produced message landed (offset -1 with acks=0), or why it did not."""

    partition: int
    offset: int
    timestamp: int | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "error": self.error,
        }


def _substitute(text: str | None, i: int) -> bytes | None:
    if text is None:
        return None
    return text.replace(COUNTER, str(i)).encode()


def message_produce(
    topic: str,
    *,
    key: str | None,
    value: str | None,
    headers: Sequence[tuple[str, str]] = (),
    partition: int | None = None,
    acks: str = "all",
    compression: str = "none",
    count: int = 1,
    actor: str,
) -> list[Delivery]:
    """Produce `count` messages, `{{i}}` in key, value and header values becoming 0 … count−1.

    Returns one Delivery per message, in the order they were sent.
    """
    if acks not in ACKS:
        raise ServiceError(f"acks must be one of {', '.join(ACKS)}", "acks")
    if compression not in COMPRESSIONS:
        raise ServiceError(f"unknown compression {compression}", "compression")
    if not 1 <= count <= MAX_COUNT:
        raise ServiceError(f"Send between 1 and {MAX_COUNT:,} messages.", "count")
    client = producer(acks, compression)
    deliveries: list[Delivery | None] = [None] * count
    done = threading.Event()
    remaining = [count]
    lock = threading.Lock()

    def report(i: int) -> Any:
        def on_delivery(error: KafkaError | None, message: Message) -> None:
            partition = message.partition()
            partition = -1 if partition is None else partition
            if error is not None:
                deliveries[i] = Delivery(partition, -1, None, error.str())
            else:
                ts_type, ts = message.timestamp()
                offset = message.offset()
                deliveries[i] = Delivery(
                    partition, -1 if offset is None else offset, ts if ts_type else None
                )
            with lock:
                remaining[0] -= 1
                if remaining[0] == 0:
                    done.set()

        return on_delivery

    for i in range(count):
        kwargs: dict[str, Any] = {
            "key": _substitute(key, i),
            "value": _substitute(value, i),
            "on_delivery": report(i),
        }
        if headers:
            kwargs["headers"] = [(name, _substitute(v, i)) for name, v in headers]
        if partition is not None:
            kwargs["partition"] = partition
        while True:
            try:
                client.produce(topic, **kwargs)
                break
            except BufferError:
                client.poll(0.05)
            except KafkaException as exc:
                raise from_kafka(exc) from exc
    client.flush(TIMEOUT_S)
    if not done.wait(1.0):
        raise ServiceError("The brokers did not acknowledge the messages in time.")
    delivered = [d for d in deliveries if d is not None]
    written = [d for d in delivered if d.error is None]
    if written:
        partitions = sorted({d.partition for d in written})
        events.record(
            "admin",
            f"{actor} produced {len(written)} message{'s' if len(written) != 1 else ''} to "
            f"{topic} (partition{'s' if len(partitions) > 1 else ''} "
            f"{', '.join(map(str, partitions[:10]))}{' …' if len(partitions) > 10 else ''})",
            actor=actor,
            topic=topic,
            partition=partitions[0] if len(partitions) == 1 else None,
            data={"action": "produce", "count": len(written), "acks": acks},
        )
    return delivered
