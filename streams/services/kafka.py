"""The web process's Kafka clients (confluent-kafka), shared by every request, and their errors."""

from __future__ import annotations

import functools
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from kafkaweb import env

TIMEOUT_S = 30.0
CLIENT_ID = "kafkaweb-ui"


class ServiceError(Exception):
    """A change the cluster refused; `message` is the broker's own words, `field` the input."""

    def __init__(self, message: str, field: str | None = None, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


def bootstrap_servers() -> str:
    return env.bootstrap_servers()


@functools.cache
def admin() -> AdminClient:
    """One AdminClient per process: librdkafka clients are thread-safe and slow to start."""
    return AdminClient({"bootstrap.servers": bootstrap_servers(), "client.id": CLIENT_ID})


_producers: dict[tuple[str, str], Producer] = {}
_producers_lock = threading.Lock()


def producer(acks: str, compression: str) -> Producer:
    """A producer per (acks, compression.type), kept for the process's life."""
    key = (acks, compression)
    with _producers_lock:
        found = _producers.get(key)
        if found is None:
            found = _producers[key] = Producer(
                {
                    "bootstrap.servers": bootstrap_servers(),
                    "client.id": CLIENT_ID,
                    "acks": acks,
                    "compression.type": compression,
                    "linger.ms": 2,
                    "message.timeout.ms": int(TIMEOUT_S * 1000),
                }
            )
        return found


def result(future: Any, *, field: str | None = None, timeout_s: float = TIMEOUT_S) -> Any:
    """A future's value, or a ServiceError carrying the broker's message."""
    try:
        return future.result(timeout=timeout_s)
    except KafkaException as exc:
        raise from_kafka(exc, field) from exc
    except TimeoutError as exc:
        raise ServiceError("The brokers did not answer in time.", field) from exc


def from_kafka(exc: KafkaException, field: str | None = None) -> ServiceError:
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        return ServiceError(error.str(), field, error.name())
    return ServiceError(str(exc), field)
