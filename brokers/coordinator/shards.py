"""Which `__consumer_offsets` partitions this broker leads: the ownership both coordinators share.

A group id and a transactional id are both coordinated by the leader of the offsets partition
their name hashes to. A coordinator loads a partition's state when this broker becomes its
leader (at a leader epoch) and unloads it when the leadership or the epoch changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from brokers.background import spawn
from brokers.coordinator.offsets_topic import OFFSETS_TOPIC, partition_for

if TYPE_CHECKING:
    from brokers.image import MetadataImage
    from brokers.replication.replica_manager import ReplicaManager


class Shard:
    """One offsets partition this broker leads, at one leader epoch."""

    __slots__ = ("epoch", "loaded", "partition")

    def __init__(self, partition: int, epoch: int) -> None:
        self.partition = partition
        self.epoch = epoch
        self.loaded = False


class ShardedCoordinator:
    """Keeps `shards` in step with the offsets partitions this broker leads."""

    def __init__(self) -> None:
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

    async def _load(self, shard: Shard) -> None:
        raise NotImplementedError

    def _unload(self, index: int) -> None:
        raise NotImplementedError
