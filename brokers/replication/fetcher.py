"""Follower fetchers: one connection per leader broker, fetching as Kafka followers do.

A follower sends Fetch with its replica id; the fetch offset it sends tells the leader where
its log ends. Before appending it truncates where the leader says its log diverged
(the leader epoch check of Fetch v12+), so a follower never keeps records the leader lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.response_header.v1.header import ResponseHeader
from kio.serial import entity_reader

from brokers.background import spawn
from brokers.image import PartitionState
from brokers.log.errors import LogError
from brokers.protocol import schema, wire
from brokers.replication.replica_manager import ReplicaManager, TopicPartition

log = logging.getLogger(__name__)

FETCH_KEY = 1
_SIZE = struct.Struct(">i")
_read_response_header = entity_reader(ResponseHeader)


@dataclass(frozen=True, slots=True)
class FetcherSettings:
    max_wait_ms: int = 500
    min_bytes: int = 1
    max_bytes: int = 10 * 1024 * 1024
    partition_max_bytes: int = 1024 * 1024
    backoff_s: float = 0.1


class ReplicaFetcher:
    def __init__(
        self,
        node_id: int,
        leader_id: int,
        replicas: ReplicaManager,
        endpoint: Callable[[int], tuple[str, int] | None],
        settings: FetcherSettings,
    ) -> None:
        self.node_id = node_id
        self.leader_id = leader_id
        self.replicas = replicas
        self.endpoint = endpoint
        self.settings = settings
        self.partitions: dict[TopicPartition, PartitionState] = {}
        self._delayed: dict[TopicPartition, float] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._correlation = 0
        self._client_id = f"replica-{node_id}"
        self._read_response = schema.response_reader(FETCH_KEY, wire.FOLLOWER_FETCH_VERSION)

    def start(self) -> None:
        self._task = spawn(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def set_partitions(self, partitions: dict[TopicPartition, PartitionState]) -> None:
        self.partitions = dict(partitions)
        for key in list(self._delayed):
            if key not in partitions:
                del self._delayed[key]
        self._changed.set()

    async def _run(self) -> None:
        while True:
            address = self.endpoint(self.leader_id)
            if address is None:
                await asyncio.sleep(self.settings.backoff_s)
                continue
            writer = None
            try:
                reader, writer = await asyncio.open_connection(*address)
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                while True:
                    await self._fetch_once(reader, writer)
            except asyncio.CancelledError:
                raise
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                log.debug("fetcher for leader %s: %s", self.leader_id, exc)
                await asyncio.sleep(self.settings.backoff_s)
            finally:
                if writer is not None:
                    writer.close()

    def _fetchable(self) -> dict[TopicPartition, PartitionState]:
        now = asyncio.get_running_loop().time()
        out = {}
        for key, state in self.partitions.items():
            until = self._delayed.get(key)
            if until is not None and until > now:
                continue
            self._delayed.pop(key, None)
            if self.replicas.partition(*key) is not None:
                out[key] = state
        return out

    async def _fetch_once(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        targets = self._fetchable()
        if not targets:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.settings.backoff_s)
            return
        sent: dict[TopicPartition, tuple[int, int]] = {}
        by_topic: dict[str, list[wire.FetchRequestPartition]] = {}
        for (topic, index), state in targets.items():
            partition = self.replicas.partition(topic, index)
            assert partition is not None
            plog = partition.log
            sent[(topic, index)] = (state.leader_epoch, plog.log_end_offset)
            by_topic.setdefault(topic, []).append(
                wire.FetchRequestPartition(
                    index=index,
                    current_leader_epoch=state.leader_epoch,
                    fetch_offset=plog.log_end_offset,
                    last_fetched_epoch=plog.latest_epoch,
                    log_start_offset=plog.log_start_offset,
                    max_bytes=self.settings.partition_max_bytes,
                )
            )
        self._correlation = (self._correlation + 1) & 0x7FFFFFFF
        writer.write(
            wire.follower_fetch_request(
                self._correlation,
                self._client_id,
                self.node_id,
                self.settings.max_wait_ms,
                self.settings.min_bytes,
                self.settings.max_bytes,
                list(by_topic.items()),
            )
        )
        # One timer for the whole answer: wait_for would start a task for every read.
        async with asyncio.timeout(self.settings.max_wait_ms / 1000 + 30):
            (size,) = _SIZE.unpack(await reader.readexactly(4))
            payload = await reader.readexactly(size)
        header, offset = _read_response_header(payload, 0)
        if header.correlation_id != self._correlation:
            raise ValueError(f"correlation id {header.correlation_id} != {self._correlation}")
        response, _ = self._read_response(payload, offset)
        if response.error_code != ErrorCode.none:
            raise ValueError(f"fetch failed: {response.error_code.name}")
        for topic in response.responses:
            for p in topic.partitions:
                self._handle_partition(topic.topic, p, sent)

    def _handle_partition(
        self, topic: str, data: Any, sent: dict[TopicPartition, tuple[int, int]]
    ) -> None:
        key = (topic, data.partition_index)
        partition = self.replicas.partition(topic, data.partition_index)
        if (
            partition is None
            or key not in sent
            or partition.state.leader != self.leader_id
            or partition.leader_epoch != sent[key][0]
        ):
            # Leadership moved while this fetch was in flight (perhaps to this very broker):
            # its data is not ours to keep.
            return
        plog = partition.log
        error = data.error_code
        if error == ErrorCode.none:
            diverging = data.diverging_epoch
            if diverging.epoch >= 0 or diverging.end_offset >= 0:
                self._truncate_diverging(partition.log, diverging.epoch, diverging.end_offset)
                return
            if plog.log_end_offset != sent[key][1]:
                return
            if data.records:
                try:
                    plog.append_as_follower(data.records)
                except LogError as exc:
                    log.warning(
                        "follower append to %s-%s failed: %s", topic, data.partition_index, exc
                    )
                    self._delay(key)
                    return
            plog.high_watermark = min(data.high_watermark, plog.log_end_offset)
            if data.log_start_offset > plog.log_start_offset:
                target = min(data.log_start_offset, plog.high_watermark)
                if target > plog.log_start_offset:
                    plog.delete_records_before(target)
        elif error == ErrorCode.offset_out_of_range:
            fetch_offset = sent[key][1]
            if fetch_offset < data.log_start_offset:
                log.info(
                    "%s-%s: fetch offset %s below the leader's log start %s; starting over there",
                    topic,
                    data.partition_index,
                    fetch_offset,
                    data.log_start_offset,
                )
                plog.truncate_fully_and_start_at(data.log_start_offset)
            else:
                target = (
                    max(plog.high_watermark, 0)
                    if data.high_watermark < 0
                    else min(data.high_watermark, fetch_offset)
                )
                log.info(
                    "%s-%s: fetch offset %s beyond the leader's log; truncating to %s",
                    topic,
                    data.partition_index,
                    fetch_offset,
                    target,
                )
                plog.truncate_to(target)
        else:
            self._delay(key)

    def _truncate_diverging(self, plog: Any, epoch: int, end_offset: int) -> None:
        if end_offset < 0:
            target = plog.high_watermark
        else:
            _local_epoch, local_end = plog.end_offset_for_epoch(epoch)
            target = min(end_offset, local_end) if local_end >= 0 else end_offset
            target = min(target, plog.log_end_offset)
        if target < plog.log_end_offset:
            log.info(
                "%s-%s: log diverged from the leader at epoch %s; truncating from %s to %s (local epoch %s)",
                plog.topic,
                plog.partition,
                epoch,
                plog.log_end_offset,
                target,
                plog.latest_epoch,
            )
            plog.truncate_to(target)

    def _delay(self, key: TopicPartition) -> None:
        self._delayed[key] = asyncio.get_running_loop().time() + self.settings.backoff_s


class FetcherManager:
    """Keeps one fetcher per leader this broker follows."""

    def __init__(
        self,
        node_id: int,
        replicas: ReplicaManager,
        endpoint: Callable[[int], tuple[str, int] | None],
        settings: FetcherSettings | None = None,
    ) -> None:
        self.node_id = node_id
        self.replicas = replicas
        self.endpoint = endpoint
        self.settings = settings or FetcherSettings()
        self.fetchers: dict[int, ReplicaFetcher] = {}

    def update(self, following: dict[TopicPartition, PartitionState]) -> None:
        by_leader: dict[int, dict[TopicPartition, PartitionState]] = {}
        for key, state in following.items():
            by_leader.setdefault(state.leader, {})[key] = state
        for leader_id in list(self.fetchers):
            if leader_id not in by_leader:
                fetcher = self.fetchers.pop(leader_id)
                # Forget its partitions now: a response it already holds must not be applied.
                fetcher.set_partitions({})
                spawn(fetcher.stop())
        for leader_id, partitions in by_leader.items():
            existing = self.fetchers.get(leader_id)
            if existing is not None:
                existing.set_partitions(partitions)
                continue
            fetcher = ReplicaFetcher(
                self.node_id, leader_id, self.replicas, self.endpoint, self.settings
            )
            self.fetchers[leader_id] = fetcher
            fetcher.set_partitions(partitions)
            fetcher.start()

    async def stop(self) -> None:
        fetchers = list(self.fetchers.values())
        self.fetchers.clear()
        await asyncio.gather(*(f.stop() for f in fetchers), return_exceptions=True)
