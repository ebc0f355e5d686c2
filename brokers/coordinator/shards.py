"""Which `__consumer_offsets` partitions this broker leads: the ownership both coordinators share.

A group id and a transactional id are both coordinated by the leader of the offsets partition
their name hashes to. A coordinator loads a partition's state when this broker becomes its
leader (at a leader epoch) and unloads it when the leadership or the epoch changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from kio.schema.errors import ErrorCode

from brokers import metadata
from brokers.background import spawn
from brokers.coordinator.offsets_topic import OFFSETS_TOPIC, partition_for
from brokers.coordinator.records import CoordinatorFence

if TYPE_CHECKING:
    from brokers.image import MetadataImage
    from brokers.replication.replica_manager import ReplicaManager


log = logging.getLogger(__name__)
T = TypeVar("T")
LOAD_RETRY_S = 1.0

# Runs a metadata DB call on the broker's DB thread.
RunDb = Callable[..., Awaitable[Any]]


class CoordinatorMoved(Exception):
    """A write was refused because another broker now coordinates the group or id."""


class Shard:
    """One offsets partition this broker leads, at one leader epoch."""

    __slots__ = ("epoch", "loaded", "partition")

    def __init__(self, partition: int, epoch: int) -> None:
        self.partition = partition
        self.epoch = epoch
        self.loaded = False


class ShardedCoordinator:
    """Keeps `shards` in step with the offsets partitions this broker leads."""

    def __init__(
        self, node_id: int, run_db: RunDb, on_fenced: Callable[[], object] = lambda: None
    ) -> None:
        self.node_id = node_id
        self._db = run_db
        self._on_fenced = on_fenced
        self.partition_count: int | None = None
        self.shards: dict[int, Shard] = {}
        # Partition → the leader epoch at which a write was refused: not reloaded at that epoch.
        self._fenced: dict[int, int] = {}

    def partition_of(self, key: str) -> int:
        assert self.partition_count is not None
        return partition_for(key, self.partition_count)

    def _reshard(self, image: MetadataImage, replicas: ReplicaManager) -> None:
        """Unload what this broker no longer leads (or leads at a new epoch); load the rest."""
        topic = image.topics.get(OFFSETS_TOPIC)
        led: dict[int, int] = {}
        if topic is None:
            self.partition_count = None
        else:
            self.partition_count = len(topic.partitions)
            for index in range(self.partition_count):
                partition = replicas.partition(OFFSETS_TOPIC, index)
                if partition is not None and partition.is_leader:
                    led[index] = partition.leader_epoch
        for index, shard in list(self.shards.items()):
            if led.get(index) != shard.epoch:
                self._unload(index)
        for index, epoch in led.items():
            if index not in self.shards and self._fenced.get(index) != epoch:
                shard = Shard(index, epoch)
                self.shards[index] = shard
                spawn(self._load(shard))

    def _status(self, key: str) -> ErrorCode:
        """Whether this broker coordinates `key` now, as the error a client would get."""
        if self.partition_count is None:
            return ErrorCode.coordinator_not_available
        shard = self.shards.get(self.partition_of(key))
        if shard is None:
            return ErrorCode.not_coordinator
        if not shard.loaded:
            return ErrorCode.coordinator_load_in_progress
        return ErrorCode.none

    def _fence_of(self, partition: int, key: str) -> CoordinatorFence:
        """The fence a write for `key` carries; CoordinatorMoved if this broker lost it."""
        shard = self.shards.get(partition)
        if shard is None:
            raise CoordinatorMoved(key)
        return CoordinatorFence(OFFSETS_TOPIC, partition, self.node_id, shard.epoch)

    async def _read_shard(
        self, shard: Shard, read: Callable[[CoordinatorFence], Awaitable[T]], what: str
    ) -> T | None:
        """Read a newly led partition's state from the DB, retrying until it answers;
        None when the shard was unloaded or fenced meanwhile."""
        fence = CoordinatorFence(OFFSETS_TOPIC, shard.partition, self.node_id, shard.epoch)
        while True:
            if self.shards.get(shard.partition) is not shard:
                return None
            try:
                loaded = await read(fence)
                break
            except metadata.NotCoordinator:
                # The image this broker acted on is already stale; wait for the next one.
                self._fenced_out(shard.partition)
                return None
            except Exception:
                log.exception("loading %s of %s-%s failed", what, OFFSETS_TOPIC, shard.partition)
                await asyncio.sleep(LOAD_RETRY_S)
        return loaded if self.shards.get(shard.partition) is shard else None

    def _fenced_out(self, index: int) -> None:
        """The DB refused a write at this shard's epoch: unload it until the next epoch."""
        shard = self.shards.get(index)
        if shard is None:
            return
        log.warning(
            "broker %s: the metadata DB says %s-%s moved on from epoch %s",
            self.node_id,
            OFFSETS_TOPIC,
            index,
            shard.epoch,
        )
        self._fenced[index] = shard.epoch
        self._unload(index)
        self._on_fenced()

    async def _load(self, shard: Shard) -> None:
        raise NotImplementedError

    def _unload(self, index: int) -> None:
        raise NotImplementedError
