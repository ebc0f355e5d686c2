"""The transaction coordinator's state machine and error codes, on an event loop without a cluster."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kio.schema.errors import ErrorCode

from brokers import metadata
from brokers.coordinator.markers import Marker
from brokers.coordinator.offsets_topic import OFFSETS_TOPIC
from brokers.coordinator.records import TxnRecord
from brokers.coordinator.shards import Shard
from brokers.coordinator.transaction_coordinator import (
    TransactionCoordinator,
    TxnSettings,
)

TID = "payments"
TOPIC = ("orders", 0)


class FakeStorage:
    """Stands in for the metadata DB: the Transaction rows the coordinator stored."""

    def __init__(self, *rows: TxnRecord) -> None:
        self.rows = {r.transactional_id: r for r in rows}
        self.fenced = False

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        await asyncio.sleep(0)
        if self.fenced:
            raise metadata.NotCoordinator("moved")
        if fn is metadata.store_transaction:
            record: TxnRecord = args[1]
            self.rows[record.transactional_id] = record
            return None
        if fn is metadata.load_transactions:
            return list(self.rows.values())
        if fn is metadata.delete_transaction:
            del self.rows[args[1]]
            return None
        raise AssertionError(f"unexpected {fn.__name__}")


class FakeMarkers:
    """Records the markers the coordinator sends; `hold` keeps them in flight."""

    def __init__(self) -> None:
        self.sent: list[Marker] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def send(self, marker: Marker, still_valid: Callable[[], bool]) -> bool:
        await self.hold.wait()
        self.sent.append(marker)
        return still_valid()

    def close(self) -> None:
        pass


def coordinator(
    storage: FakeStorage | None = None,
) -> tuple[TransactionCoordinator, FakeStorage, FakeMarkers]:
    storage = storage or FakeStorage()
    markers = FakeMarkers()
    ids = itertools.count(1000)

    async def next_id() -> int:
        return next(ids)

    c = TransactionCoordinator(1, TxnSettings(max_timeout_ms=60000), storage, next_id, markers)  # type: ignore[arg-type]
    c.partition_count = 1
    shard = Shard(0, 3)
    shard.loaded = True
    c.shards[0] = shard
    return c, storage, markers


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)


def test_init_producer_id_bumps_the_epoch_and_checks_the_timeout() -> None:
    async def scenario() -> None:
        c, storage, _ = coordinator()
        first = await c.init_producer_id(TID, 1000, -1, -1)
        assert (first.error, first.producer_id, first.producer_epoch) == (ErrorCode.none, 1000, 0)
        again = await c.init_producer_id(TID, 1000, -1, -1)
        assert (again.producer_id, again.producer_epoch) == (1000, 1)
        assert storage.rows[TID].producer_epoch == 1
        assert (await c.init_producer_id(TID, 0, -1, -1)).error == (
            ErrorCode.invalid_transaction_timeout
        )
        assert (await c.init_producer_id(TID, 60001, -1, -1)).error == (
            ErrorCode.invalid_transaction_timeout
        )
        # KIP-360: a producer may bump only its own current epoch.
        assert (await c.init_producer_id(TID, 1000, 1000, 0)).error == ErrorCode.producer_fenced

    run(scenario)


def test_commit_sends_markers_then_completes() -> None:
    async def scenario() -> None:
        c, storage, markers = coordinator()
        init = await c.init_producer_id(TID, 60000, -1, -1)
        pid, epoch = init.producer_id, init.producer_epoch
        assert await c.end_transaction(TID, pid, epoch, True) == ErrorCode.invalid_txn_state
        assert await c.add_partitions(TID, pid, epoch, [TOPIC]) == ErrorCode.none
        assert await c.add_offsets(TID, pid, epoch, "readers") == ErrorCode.none
        assert storage.rows[TID].state == "Ongoing"
        markers.hold.clear()
        assert await c.end_transaction(TID, pid, epoch, True) == ErrorCode.none
        assert storage.rows[TID].state == "PrepareCommit"
        # While the markers are out, the producer must wait.
        assert await c.add_partitions(TID, pid, epoch, [TOPIC]) == (
            ErrorCode.concurrent_transactions
        )
        assert await c.end_transaction(TID, pid, epoch, True) == (ErrorCode.concurrent_transactions)
        assert (await c.init_producer_id(TID, 60000, -1, -1)).error == (
            ErrorCode.concurrent_transactions
        )
        markers.hold.set()
        await until(lambda: storage.rows[TID].state == "CompleteCommit")
        (marker,) = markers.sent
        assert (marker.producer_id, marker.producer_epoch, marker.commit) == (pid, epoch, True)
        assert marker.coordinator_epoch == 3
        assert marker.partitions == (("__consumer_offsets", 0), TOPIC)
        assert await c.end_transaction(TID, pid, epoch, True) == ErrorCode.none
        assert await c.end_transaction(TID, pid, epoch, False) == ErrorCode.invalid_txn_state
        assert await c.add_partitions(TID, pid + 1, epoch, [TOPIC]) == (
            ErrorCode.invalid_producer_id_mapping
        )

    run(scenario)


def test_a_new_producer_fences_the_old_and_aborts_its_transaction() -> None:
    async def scenario() -> None:
        c, storage, markers = coordinator()
        old = await c.init_producer_id(TID, 60000, -1, -1)
        assert await c.add_partitions(TID, old.producer_id, 0, [TOPIC]) == ErrorCode.none
        assert (await c.init_producer_id(TID, 60000, -1, -1)).error == (
            ErrorCode.concurrent_transactions
        )
        await until(lambda: storage.rows[TID].state == "CompleteAbort")
        (marker,) = markers.sent
        # The abort marker carries the bumped epoch, so partitions fence the old producer.
        assert (marker.commit, marker.producer_epoch) == (False, 1)
        new = await c.init_producer_id(TID, 60000, -1, -1)
        assert (new.producer_id, new.producer_epoch) == (old.producer_id, 2)
        assert await c.add_partitions(TID, old.producer_id, 0, [TOPIC]) == (
            ErrorCode.producer_fenced
        )
        assert await c.end_transaction(TID, old.producer_id, 0, True) == ErrorCode.producer_fenced

    run(scenario)


def test_an_open_transaction_is_aborted_when_it_times_out() -> None:
    async def scenario() -> None:
        c, storage, markers = coordinator()
        init = await c.init_producer_id(TID, 50, -1, -1)
        assert await c.add_partitions(TID, init.producer_id, 0, [TOPIC]) == ErrorCode.none
        await until(lambda: storage.rows[TID].state == "CompleteAbort")
        assert [(m.commit, m.producer_epoch) for m in markers.sent] == [(False, 1)]
        assert await c.end_transaction(TID, init.producer_id, 0, True) == (
            ErrorCode.producer_fenced
        )

    run(scenario)


class _Leader:
    is_leader = True
    leader_epoch = 3


class _Replicas:
    def partition(self, topic: str, index: int) -> _Leader:
        return _Leader()


class _Image:
    topics = {OFFSETS_TOPIC: type("Topic", (), {"partitions": (object(),)})()}


def test_a_new_coordinator_finishes_what_the_old_one_prepared() -> None:
    async def scenario() -> None:
        started = int(time.time() * 1000)
        prepared = TxnRecord(TID, 1000, 4, 60000, "PrepareCommit", (TOPIC,), started, started)
        c, storage, markers = coordinator(FakeStorage(prepared))
        c.shards.clear()
        # Becoming the leader of the offsets partition loads its transactional ids.
        c.on_metadata(_Image(), _Replicas())  # type: ignore[arg-type]
        await until(lambda: storage.rows[TID].state == "CompleteCommit")
        assert [(m.producer_epoch, m.commit, m.partitions) for m in markers.sent] == [
            (4, True, (TOPIC,))
        ]

    run(scenario)


def test_a_fenced_coordinator_answers_not_coordinator() -> None:
    async def scenario() -> None:
        c, storage, _ = coordinator()
        init = await c.init_producer_id(TID, 60000, -1, -1)
        storage.fenced = True
        assert await c.add_partitions(TID, init.producer_id, 0, [TOPIC]) == (
            ErrorCode.not_coordinator
        )
        assert c.shards == {}
        assert (await c.init_producer_id(TID, 60000, -1, -1)).error == ErrorCode.not_coordinator

    run(scenario)


def test_idle_transactional_ids_expire() -> None:
    async def scenario() -> None:
        c, storage, _ = coordinator()
        idle = await c.init_producer_id("idle", 60000, -1, -1)
        busy = await c.init_producer_id("busy", 60000, -1, -1)
        assert await c.add_partitions("busy", busy.producer_id, 0, [TOPIC]) == ErrorCode.none
        later = int(time.time() * 1000) + c.settings.id_expiration_ms
        await c.expire_transactional_ids(later)
        # An id with an open transaction stays; an idle one is forgotten and starts over.
        assert set(storage.rows) == {"busy"}
        assert set(c.txns) == {"busy"}
        again = await c.init_producer_id("idle", 60000, -1, -1)
        assert again.producer_epoch == 0 and again.producer_id != idle.producer_id

    run(scenario)
