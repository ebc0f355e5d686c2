"""The transaction coordinator: Kafka's TransactionCoordinator and TransactionStateManager.

A transactional id is coordinated, like a group with the same name would be, by the leader of
its `__consumer_offsets` partition: one internal topic gives both roles the same placement,
failover and fencing. State lives in the metadata DB (the Transaction model), written under the
partition's leader epoch before a client is answered. A broker that becomes the leader loads
the ids of that partition and finishes any transaction left in PrepareCommit or PrepareAbort
by sending its markers again; open transactions are aborted when their timeout passes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from brokers import metadata
from brokers.background import spawn
from brokers.coordinator.markers import Marker, TxnMarkerChannel
from brokers.coordinator.offsets_topic import OFFSETS_TOPIC
from brokers.coordinator.records import CoordinatorFence, TxnRecord
from brokers.coordinator.shards import CoordinatorMoved, RunDb, Shard, ShardedCoordinator
from brokers.coordinator.transaction import (
    MAX_EPOCH,
    TransactionMetadata,
    TxnDescription,
    TxnError,
    TxnState,
)

if TYPE_CHECKING:
    from brokers.config import BrokerConfig
    from brokers.image import MetadataImage
    from brokers.replication.replica_manager import ReplicaManager

log = logging.getLogger(__name__)

STORE_RETRY_S = 0.5


@dataclass(frozen=True, slots=True)
class TxnSettings:
    max_timeout_ms: int = 900000
    # A transactional id unused this long (and with no open transaction) is forgotten.
    id_expiration_ms: int = 7 * 24 * 3600 * 1000
    expiration_check_interval_ms: int = 3600000

    @classmethod
    def from_config(cls, config: BrokerConfig) -> TxnSettings:
        return cls(
            max_timeout_ms=config.int("transaction.max.timeout.ms"),
            id_expiration_ms=config.int("transactional.id.expiration.ms"),
            expiration_check_interval_ms=config.int(
                "transactions.remove.expired.transaction.cleanup.interval.ms"
            ),
        )


@dataclass(frozen=True, slots=True)
class InitResult:
    error: ErrorCode
    producer_id: int = -1
    producer_epoch: int = -1


class TransactionCoordinator(ShardedCoordinator):
    def __init__(
        self,
        node_id: int,
        settings: TxnSettings,
        run_db: RunDb,
        next_producer_id: Callable[[], Awaitable[int]],
        markers: TxnMarkerChannel,
        on_fenced: Callable[[], object] = lambda: None,
    ) -> None:
        super().__init__(node_id, run_db, on_fenced)
        self.settings = settings
        self._next_producer_id = next_producer_id
        self.markers = markers
        self.txns: dict[str, TransactionMetadata] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # Lifecycle and ownership --------------------------------------------------------------------

    def start(self) -> None:
        self._tasks.append(spawn(self._expire_forever()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for index in list(self.shards):
            self._unload(index)
        self.markers.close()

    def on_metadata(self, image: MetadataImage, replicas: ReplicaManager) -> None:
        """Load the transactional ids of offsets partitions this broker now leads."""
        self._reshard(image, replicas)

    def _fence(self, txn: TransactionMetadata) -> CoordinatorFence:
        return self._fence_of(txn.partition, txn.transactional_id)

    def _owns(self, txn: TransactionMetadata) -> bool:
        return self.txns.get(txn.transactional_id) is txn

    async def _load(self, shard: Shard) -> None:
        async def read(fence: CoordinatorFence) -> list[TxnRecord]:
            return await self._db(metadata.load_transactions, fence)

        loaded = await self._read_shard(shard, read, "transactions")
        if loaded is None:
            return
        for record in loaded:
            txn = TransactionMetadata.restore(record, shard.partition)
            self.txns[txn.transactional_id] = txn
            if txn.state.preparing:
                self._start_completion(txn)
            elif txn.state == TxnState.ONGOING:
                self._arm_timeout(txn)
        shard.loaded = True
        if loaded:
            log.info(
                "broker %s coordinates %d transactional ids of %s-%s (epoch %s)",
                self.node_id,
                len(loaded),
                OFFSETS_TOPIC,
                shard.partition,
                shard.epoch,
            )

    def _unload(self, index: int) -> None:
        self.shards.pop(index, None)
        for txn in [t for t in self.txns.values() if t.partition == index]:
            self.txns.pop(txn.transactional_id, None)
            txn.cancel_timer()
            if txn.completion is not None:
                txn.completion.cancel()

    async def _store(self, txn: TransactionMetadata) -> None:
        """Write the id's state; raises TxnError when it could not be stored here."""
        txn.updated_ms = int(time.time() * 1000)
        try:
            await self._db(metadata.store_transaction, self._fence(txn), txn.record())
        except (metadata.NotCoordinator, CoordinatorMoved) as exc:
            if not isinstance(exc, CoordinatorMoved):
                self._fenced_out(txn.partition)
            raise TxnError(ErrorCode.not_coordinator) from exc
        except Exception as exc:
            log.warning("transaction %s: could not store its state: %s", txn.transactional_id, exc)
            raise TxnError(ErrorCode.coordinator_not_available) from exc

    async def _locked(self, transactional_id: str) -> TransactionMetadata:
        status = self._status(transactional_id)
        if status != ErrorCode.none:
            raise TxnError(status)
        txn = self.txns.get(transactional_id)
        if txn is None:
            raise TxnError(ErrorCode.invalid_producer_id_mapping)
        await txn.lock.acquire()
        if not self._owns(txn):
            txn.lock.release()
            raise TxnError(ErrorCode.not_coordinator)
        return txn

    # InitProducerId -----------------------------------------------------------------------------

    async def init_producer_id(
        self, transactional_id: str, timeout_ms: int, producer_id: int, producer_epoch: int
    ) -> InitResult:
        if not transactional_id:
            return InitResult(ErrorCode.invalid_request)
        if not 0 < timeout_ms <= self.settings.max_timeout_ms:
            return InitResult(ErrorCode.invalid_transaction_timeout)
        status = self._status(transactional_id)
        if status != ErrorCode.none:
            return InitResult(status)
        txn = self.txns.get(transactional_id)
        if txn is None:
            if producer_id >= 0:
                return InitResult(ErrorCode.invalid_producer_id_mapping)
            new_id = await self._next_producer_id()
            txn = self.txns.get(transactional_id)
            if txn is None:
                txn = TransactionMetadata(
                    transactional_id, self.partition_of(transactional_id), new_id, -1, timeout_ms
                )
                self.txns[transactional_id] = txn
        try:
            locked = await self._locked(transactional_id)
        except TxnError as exc:
            return InitResult(exc.code)
        try:
            return await self._init(locked, timeout_ms, producer_id, producer_epoch)
        except TxnError as exc:
            return InitResult(exc.code)
        finally:
            locked.lock.release()

    async def _init(
        self, txn: TransactionMetadata, timeout_ms: int, producer_id: int, producer_epoch: int
    ) -> InitResult:
        if producer_id >= 0 and (producer_id, producer_epoch) != (
            txn.producer_id,
            txn.producer_epoch,
        ):
            # KIP-360: only the current producer may bump its own epoch.
            return InitResult(ErrorCode.producer_fenced)
        if txn.state.preparing:
            return InitResult(ErrorCode.concurrent_transactions)
        if txn.state == TxnState.ONGOING:
            # A new producer with this id: fence the old one and abort what it left open.
            # The client retries on CONCURRENT_TRANSACTIONS until the abort has completed.
            log.info(
                "transaction %s: fencing producer %s epoch %s",
                txn.transactional_id,
                txn.producer_id,
                txn.producer_epoch,
            )
            await self._prepare_end(txn, commit=False, bump_epoch=True)
            return InitResult(ErrorCode.concurrent_transactions)
        previous = (txn.producer_id, txn.producer_epoch, txn.timeout_ms, txn.state)
        if txn.producer_epoch >= MAX_EPOCH:
            txn.producer_id = await self._next_producer_id()
            txn.producer_epoch = 0
        else:
            txn.producer_epoch += 1
        txn.timeout_ms = timeout_ms
        txn.state = TxnState.EMPTY
        txn.partitions = set()
        txn.started_ms = -1
        try:
            await self._store(txn)
        except TxnError:
            txn.producer_id, txn.producer_epoch, txn.timeout_ms, txn.state = previous
            raise
        return InitResult(ErrorCode.none, txn.producer_id, txn.producer_epoch)

    # AddPartitionsToTxn, AddOffsetsToTxn --------------------------------------------------------

    async def add_partitions(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[tuple[str, int]],
    ) -> ErrorCode:
        try:
            txn = await self._locked(transactional_id)
        except TxnError as exc:
            return exc.code
        try:
            txn.check_producer(producer_id, producer_epoch)
            if txn.state.preparing:
                return ErrorCode.concurrent_transactions
            wanted = set(partitions)
            if txn.state == TxnState.ONGOING and wanted <= txn.partitions:
                return ErrorCode.none
            previous = (txn.state, set(txn.partitions), txn.started_ms)
            if txn.state != TxnState.ONGOING:
                txn.state = TxnState.ONGOING
                txn.partitions = set()
                txn.started_ms = int(time.time() * 1000)
            txn.partitions |= wanted
            try:
                await self._store(txn)
            except TxnError:
                txn.state, txn.partitions, txn.started_ms = previous
                raise
            self._arm_timeout(txn)
            return ErrorCode.none
        except TxnError as exc:
            return exc.code
        finally:
            txn.lock.release()

    async def add_offsets(
        self, transactional_id: str, producer_id: int, producer_epoch: int, group_id: str
    ) -> ErrorCode:
        if self.partition_count is None:
            return ErrorCode.coordinator_not_available
        offsets_partition = self.partition_of(group_id)
        return await self.add_partitions(
            transactional_id, producer_id, producer_epoch, [(OFFSETS_TOPIC, offsets_partition)]
        )

    async def verify(
        self,
        transactional_id: str,
        producer_id: int,
        producer_epoch: int,
        partitions: Iterable[tuple[str, int]],
    ) -> ErrorCode:
        """Whether a transactional Produce to these partitions belongs to the open transaction
        (the partition leader's check, as Kafka's KIP-890 verification). The stored state is
        what the coordinator answered AddPartitionsToTxn from, wherever it runs."""
        txn = self.txns.get(transactional_id)
        if txn is not None:
            record = txn.record()
        else:
            record = await self._db(metadata.load_transaction, transactional_id)
        if record is None or record.producer_id != producer_id:
            return ErrorCode.invalid_producer_id_mapping
        if producer_epoch < record.producer_epoch:
            return ErrorCode.invalid_producer_epoch
        if record.state != TxnState.ONGOING.value or not set(partitions) <= set(record.partitions):
            return ErrorCode.invalid_txn_state
        return ErrorCode.none

    # EndTxn -------------------------------------------------------------------------------------

    async def end_transaction(
        self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool
    ) -> ErrorCode:
        try:
            txn = await self._locked(transactional_id)
        except TxnError as exc:
            return exc.code
        try:
            txn.check_producer(producer_id, producer_epoch)
            state = txn.state
            if state == TxnState.ONGOING:
                await self._prepare_end(txn, commit=commit, bump_epoch=False)
                return ErrorCode.none
            target_prepare = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
            target_complete = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
            if state == target_complete:
                return ErrorCode.none  # a retry of an EndTxn that already completed
            if state == target_prepare:
                return ErrorCode.concurrent_transactions
            return ErrorCode.invalid_txn_state
        except TxnError as exc:
            return exc.code
        finally:
            txn.lock.release()

    async def _prepare_end(
        self, txn: TransactionMetadata, *, commit: bool, bump_epoch: bool
    ) -> None:
        """Ongoing -> PrepareCommit/PrepareAbort, stored, then markers go out (caller holds
        the lock). A fencing abort bumps the epoch first, so the markers fence the zombie."""
        previous = (txn.state, txn.producer_epoch)
        txn.state = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
        if bump_epoch and txn.producer_epoch < MAX_EPOCH:
            txn.producer_epoch += 1
        try:
            await self._store(txn)
        except TxnError:
            txn.state, txn.producer_epoch = previous
            raise
        txn.cancel_timer()
        self._start_completion(txn)

    def _start_completion(self, txn: TransactionMetadata) -> None:
        if txn.completion is None or txn.completion.done():
            txn.completion = spawn(self._complete(txn))

    async def _complete(self, txn: TransactionMetadata) -> None:
        """Write the markers, then store CompleteCommit/CompleteAbort."""
        commit = txn.state == TxnState.PREPARE_COMMIT
        shard = self.shards.get(txn.partition)
        if shard is None:
            return
        marker = Marker(
            txn.producer_id, txn.producer_epoch, commit, shard.epoch, tuple(sorted(txn.partitions))
        )
        if not await self.markers.send(marker, lambda: self._owns(txn)):
            return
        while self._owns(txn):
            async with txn.lock:
                if not self._owns(txn) or not txn.state.preparing:
                    return
                txn.state = TxnState.COMPLETE_COMMIT if commit else TxnState.COMPLETE_ABORT
                partitions, started = txn.partitions, txn.started_ms
                txn.partitions = set()
                txn.started_ms = -1
                try:
                    await self._store(txn)
                except TxnError as exc:
                    txn.state = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
                    txn.partitions, txn.started_ms = partitions, started
                    if exc.code == ErrorCode.not_coordinator:
                        return
                else:
                    log.info(
                        "transaction %s of producer %s %s",
                        txn.transactional_id,
                        txn.producer_id,
                        "committed" if commit else "aborted",
                    )
                    return
            await asyncio.sleep(STORE_RETRY_S)

    # Transaction timeout ------------------------------------------------------------------------

    def _arm_timeout(self, txn: TransactionMetadata) -> None:
        txn.cancel_timer()
        started = txn.started_ms
        delay_s = max(started + txn.timeout_ms - time.time() * 1000, 0) / 1000
        txn.timer = asyncio.get_running_loop().call_later(
            delay_s, lambda: spawn(self._abort_timed_out(txn, started))
        )

    async def _abort_timed_out(self, txn: TransactionMetadata, started_ms: int) -> None:
        if not self._owns(txn):
            return
        async with txn.lock:
            if not self._owns(txn) or txn.state != TxnState.ONGOING or txn.started_ms != started_ms:
                return
            log.info(
                "transaction %s of producer %s timed out after %s ms: aborting",
                txn.transactional_id,
                txn.producer_id,
                txn.timeout_ms,
            )
            try:
                await self._prepare_end(txn, commit=False, bump_epoch=True)
            except TxnError as exc:
                log.warning("transaction %s: timeout abort failed: %s", txn.transactional_id, exc)
                if exc.code != ErrorCode.not_coordinator:
                    txn.timer = asyncio.get_running_loop().call_later(
                        STORE_RETRY_S, lambda: spawn(self._abort_timed_out(txn, started_ms))
                    )

    # transactional.id.expiration.ms -----------------------------------------------------------

    async def _expire_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.expiration_check_interval_ms / 1000)
            try:
                await self.expire_transactional_ids()
            except Exception:
                log.exception("expiring transactional ids failed")

    async def expire_transactional_ids(self, now_ms: int | None = None) -> None:
        """Forget ids whose last transaction ended (or that never began one) long ago."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        for txn in list(self.txns.values()):
            shard = self.shards.get(txn.partition)
            if (
                shard is None
                or not shard.loaded
                or not txn.state.complete
                or txn.lock.locked()
                or now - txn.updated_ms < self.settings.id_expiration_ms
            ):
                continue
            async with txn.lock:
                if not self._owns(txn) or not txn.state.complete:
                    continue
                try:
                    await self._db(
                        metadata.delete_transaction, self._fence(txn), txn.transactional_id
                    )
                except Exception as exc:
                    log.warning("transaction %s: could not expire: %s", txn.transactional_id, exc)
                    continue
                if self._owns(txn):
                    del self.txns[txn.transactional_id]
                log.info("transactional id %s expired", txn.transactional_id)

    # DescribeTransactions, ListTransactions -----------------------------------------------------

    def describe(self, transactional_id: str) -> tuple[ErrorCode, TxnDescription | None]:
        status = self._status(transactional_id)
        if status != ErrorCode.none:
            return status, None
        txn = self.txns.get(transactional_id)
        if txn is None:
            return ErrorCode.transactional_id_not_found, None
        return ErrorCode.none, txn.describe()

    def list_transactions(
        self, states: Iterable[str], producer_ids: Iterable[int]
    ) -> tuple[ErrorCode, list[TxnDescription]]:
        if any(not shard.loaded for shard in self.shards.values()):
            return ErrorCode.coordinator_load_in_progress, []
        wanted_states = set(states)
        wanted_ids = set(producer_ids)
        out = [
            txn.describe()
            for txn in self.txns.values()
            if (not wanted_states or txn.state.value in wanted_states)
            and (not wanted_ids or txn.producer_id in wanted_ids)
        ]
        return ErrorCode.none, sorted(out, key=lambda d: d.transactional_id)
