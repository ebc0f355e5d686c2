"""A well-behaved producer and consumer (confluent-kafka) running in threads during a test."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from tests.compat.records import PARTITIONS, Consumed, Rec, make_records


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} after {timeout_s:.0f} s")


class Traffic:
    """A producer and a consumer running in threads while brokers come and go."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.delivered: dict[bytes, tuple[int, int]] = {}
        self.failed: list[KafkaError] = []
        self.consumed: list[Consumed] = []
        self._stop_producing = threading.Event()
        self._stop_consuming = threading.Event()
        self._errors: list[BaseException] = []
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "partitioner": "murmur2_random",
                "enable.idempotence": True,
                "linger.ms": 2,
                "message.timeout.ms": 180_000,
            }
        )
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"restart-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )
        self._consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)]
        )
        self.sent: list[Rec] = []
        self._threads = [
            threading.Thread(target=self._guard(self._produce), daemon=True),
            threading.Thread(target=self._guard(self._consume), daemon=True),
        ]

    def _guard(self, body: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                body()
            except BaseException as exc:
                self._errors.append(exc)

        return run

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _produce(self) -> None:
        sequence = 0
        while not self._stop_producing.is_set():
            for rec in make_records(f"traffic-{sequence}", 50):
                self.sent.append(rec)
                self._producer.produce(
                    self.topic,
                    key=rec.key,
                    value=rec.value,
                    headers=list(rec.headers),
                    timestamp=rec.timestamp,
                    on_delivery=self._delivered,
                )
            sequence += 1
            # About a thousand records a second: enough to see every gap, little to read back.
            self._producer.poll(0)
            time.sleep(0.05)
        self._producer.flush(180)
        self._producer.close()

    def _delivered(self, error: KafkaError | None, message: object) -> None:
        if error is not None:
            self.failed.append(error)
        else:
            self.delivered[message.value()] = (message.partition(), message.offset())  # type: ignore[attr-defined]

    def _consume(self) -> None:
        try:
            while not self._stop_consuming.is_set():
                for message in self._consumer.consume(500, 0.2):
                    if message.error() is not None:
                        continue  # transient: leader moves, broker gone
                    self.consumed.append(
                        Consumed(
                            message.partition(),
                            message.offset(),
                            Rec(
                                message.key(),
                                message.value(),
                                tuple(message.headers() or ()),
                                message.timestamp()[1],
                            ),
                        )
                    )
        finally:
            self._consumer.close()

    def progress(self, more: int, timeout_s: float = 90) -> None:
        """Wait until `more` further records have been acknowledged and read."""
        delivered, consumed = len(self.delivered) + more, len(self.consumed) + more
        wait_for(
            lambda: self._check() and len(self.delivered) >= delivered,
            timeout_s,
            f"fewer than {more} more records acknowledged",
        )
        wait_for(
            lambda: self._check() and len(self.consumed) >= consumed,
            timeout_s,
            f"fewer than {more} more records consumed",
        )

    def _check(self) -> bool:
        if self._errors:
            raise self._errors[0]
        return True

    def finish(self, timeout_s: float = 180) -> None:
        self._stop_producing.set()
        self._threads[0].join(timeout_s)
        wait_for(
            lambda: self._check() and len(self.consumed) >= len(self.delivered),
            timeout_s,
            "the consumer did not read every acknowledged record",
        )
        self._stop_consuming.set()
        self._threads[1].join(30)
        self._check()
