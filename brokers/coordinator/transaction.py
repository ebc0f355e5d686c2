"""A transactional id's producer and current transaction: Kafka's TransactionMetadata."""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from brokers.coordinator.records import TxnRecord

# An epoch that reached this is not bumped again: the producer gets a new id (Kafka's rule).
MAX_EPOCH = 2**15 - 2


class TxnState(enum.Enum):
    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"

    @property
    def preparing(self) -> bool:
        return self in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)

    @property
    def complete(self) -> bool:
        return self in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)


class TxnError(Exception):
    """A request the coordinator refuses, with the Kafka error code the client gets."""

    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


@dataclass(frozen=True, slots=True)
class TxnDescription:
    """DescribeTransactions / ListTransactions view of one transactional id."""

    transactional_id: str
    state: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    started_ms: int
    partitions: tuple[tuple[str, int], ...]


class TransactionMetadata:
    """State of one transactional id; every change happens under `lock`."""

    __slots__ = (
        "completion",
        "lock",
        "partition",
        "partitions",
        "producer_epoch",
        "producer_id",
        "started_ms",
        "state",
        "timeout_ms",
        "timer",
        "transactional_id",
        "updated_ms",
    )

    def __init__(
        self,
        transactional_id: str,
        partition: int,
        producer_id: int,
        producer_epoch: int,
        timeout_ms: int,
        state: TxnState = TxnState.EMPTY,
        partitions: set[tuple[str, int]] | None = None,
        started_ms: int = -1,
        updated_ms: int | None = None,
    ) -> None:
        self.transactional_id = transactional_id
        self.partition = partition
        self.producer_id = producer_id
        self.producer_epoch = producer_epoch
        self.timeout_ms = timeout_ms
        self.state = state
        self.partitions: set[tuple[str, int]] = partitions or set()
        self.started_ms = started_ms
        # When its state last changed, for transactional.id.expiration.ms.
        self.updated_ms = int(time.time() * 1000) if updated_ms is None else updated_ms
        self.lock = asyncio.Lock()
        self.timer: asyncio.TimerHandle | None = None
        self.completion: asyncio.Task[None] | None = None

    @classmethod
    def restore(cls, record: TxnRecord, partition: int) -> TransactionMetadata:
        return cls(
            record.transactional_id,
            partition,
            record.producer_id,
            record.producer_epoch,
            record.timeout_ms,
            TxnState(record.state),
            set(record.partitions),
            record.started_ms,
            record.updated_ms,
        )

    def record(self) -> TxnRecord:
        return TxnRecord(
            self.transactional_id,
            self.producer_id,
            self.producer_epoch,
            self.timeout_ms,
            self.state.value,
            tuple(sorted(self.partitions)),
            self.started_ms,
            self.updated_ms,
        )

    def describe(self) -> TxnDescription:
        return TxnDescription(
            self.transactional_id,
            self.state.value,
            self.producer_id,
            self.producer_epoch,
            self.timeout_ms,
            self.started_ms,
            tuple(sorted(self.partitions)),
        )

    def check_producer(self, producer_id: int, producer_epoch: int) -> None:
        """The id and epoch a client sends must be the current ones (else it is a zombie)."""
        if producer_id != self.producer_id:
            raise TxnError(ErrorCode.invalid_producer_id_mapping)
        if producer_epoch != self.producer_epoch:
            raise TxnError(ErrorCode.producer_fenced)

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
