"""The replicas this broker hosts: roles from the metadata image, appends, reads and long polls."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from brokers.image import NO_LEADER, MetadataImage, PartitionState, TopicInfo
from brokers.log.config import LogConfig
from brokers.log.errors import LogError, OffsetOutOfRangeError
from brokers.log.log import AppendInfo, ReadSlice
from brokers.log.manager import LogManager
from brokers.replication.partition import Partition, PartitionError, Waiter

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]


# Built per partition per request: plain slotted dataclasses, five times cheaper to build
# than frozen ones. Treat them as values all the same.
@dataclass(slots=True)
class FetchRequestPartition:
    topic: str
    index: int
    fetch_offset: int
    max_bytes: int
    current_leader_epoch: int = -1
    last_fetched_epoch: int = -1
    log_start_offset: int = -1


@dataclass(slots=True)
class FetchResult:
    topic: str
    index: int
    error: ErrorCode = ErrorCode.none
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    records: ReadSlice | None = None
    diverging_epoch: tuple[int, int] | None = None
    current_leader: tuple[int, int] | None = None
    # read_committed only: (producer id, first offset) of aborted transactions in the range.
    aborted_transactions: tuple[tuple[int, int], ...] | None = None

    @property
    def size(self) -> int:
        return 0 if self.records is None else self.records.length


@dataclass(slots=True)
class AppendResult:
    topic: str
    index: int
    error: ErrorCode = ErrorCode.none
    message: str | None = None
    info: AppendInfo | None = None
    log_start_offset: int = -1
    current_leader: tuple[int, int] | None = None


class ReplicaManager:
    def __init__(
        self,
        node_id: int,
        logs: LogManager,
        log_defaults: Mapping[str, str],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_id = node_id
        self.logs = logs
        self.log_defaults = dict(log_defaults)
        self.clock = clock
        self.partitions: dict[TopicPartition, Partition] = {}
        # Cumulative per-topic traffic as leader: [bytes in, records in, bytes out to consumers].
        self.topic_traffic: dict[str, list[int]] = {}
        self.image = MetadataImage.empty()
        self.registered = False
        # Called with (partition, replica id) when a follower has caught up and may join the ISR.
        self.on_isr_candidate: Callable[[Partition, int], None] = lambda p, r: None
        # Called with the partitions this broker follows: {tp: (leader id, leader epoch)}.
        self.on_following: Callable[[dict[TopicPartition, PartitionState]], None] = lambda f: None

    # Roles from the image ---------------------------------------------------------------------

    def log_config(self, topic: TopicInfo) -> LogConfig:
        return LogConfig.from_properties(dict(topic.configs), defaults=self.log_defaults)

    def apply_image(self, image: MetadataImage, incarnation: str) -> None:
        previous = self.image
        self.image = image
        me = image.brokers.get(self.node_id)
        self.registered = me is not None and me.alive and me.incarnation == incarnation
        wanted: set[TopicPartition] = set()
        following: dict[TopicPartition, PartitionState] = {}
        for topic in image.topics.values():
            old_topic = previous.topics.get(topic.name)
            config_changed = old_topic is None or old_topic.configs != topic.configs
            config: LogConfig | None = None
            for state in topic.partitions:
                if self.node_id not in state.replicas:
                    continue
                key = (topic.name, state.index)
                wanted.add(key)
                if config is None:
                    config = self.log_config(topic)
                partition = self.partitions.get(key)
                if partition is None or partition.log.topic_id != topic.topic_id:
                    if partition is not None:
                        self._drop(key)
                    plog = self.logs.get_or_create(topic.name, state.index, topic.topic_id, config)
                    partition = Partition(
                        self.node_id, plog, self._offline(state), clock=self.clock
                    )
                    self.partitions[key] = partition
                elif config_changed:
                    partition.log.update_config(config)
                self._apply_role(partition, state if self.registered else self._offline(state))
                if self.registered and state.leader not in (NO_LEADER, self.node_id):
                    following[key] = state
        for key in list(self.partitions):
            if key not in wanted:
                self._drop(key)
        self.on_following(following)

    def _offline(self, state: PartitionState) -> PartitionState:
        # Until the controller has registered this incarnation, it neither leads nor follows.
        return PartitionState(
            topic=state.topic,
            index=state.index,
            leader=NO_LEADER,
            leader_epoch=-1,
            partition_epoch=-1,
            replicas=state.replicas,
            isr=state.isr,
        )

    def _apply_role(self, partition: Partition, state: PartitionState) -> None:
        old = partition.state
        if state.leader == self.node_id:
            if not partition.is_leader or old.leader_epoch != state.leader_epoch:
                log.info("leading %s-%s at epoch %s", state.topic, state.index, state.leader_epoch)
                partition.become_leader(state)
            elif old != state:
                partition.update_state(state)
        elif (
            old.leader != state.leader
            or old.leader_epoch != state.leader_epoch
            or partition.is_leader
        ):
            partition.become_follower(state)
        elif old != state:
            partition.update_state(state)

    def _drop(self, key: TopicPartition) -> None:
        partition = self.partitions.pop(key)
        partition.stop()
        log.info("deleting replica %s-%s", *key)
        self.logs.delete(*key)

    def partition(self, topic: str, index: int) -> Partition | None:
        return self.partitions.get((topic, index))

    def unknown_error(self, topic: str, index: int) -> ErrorCode:
        state = self.image.partition(topic, index)
        # A partition the cluster has, led elsewhere: tell the client to look again.
        return (
            ErrorCode.unknown_topic_or_partition
            if state is None
            else ErrorCode.not_leader_or_follower
        )

    def leader_partition(self, topic: str, index: int, current_leader_epoch: int = -1) -> Partition:
        """The partition, if this broker leads it at the epoch the client knows; else PartitionError."""
        partition = self.partitions.get((topic, index))
        if partition is None:
            raise PartitionError(self.unknown_error(topic, index))
        partition.check_leader(current_leader_epoch)
        return partition

    def current_leader(self, topic: str, index: int) -> tuple[int, int] | None:
        state = self.image.partition(topic, index)
        if state is None or state.leader == self.node_id:
            return None
        return state.leader, state.leader_epoch

    # Produce ----------------------------------------------------------------------------------

    def append(
        self, acks: int, entries: Iterable[tuple[str, int, bytes | None]]
    ) -> list[AppendResult]:
        results = []
        for topic, index, records in entries:
            partition = self.partitions.get((topic, index))
            if partition is None:
                results.append(
                    AppendResult(
                        topic,
                        index,
                        self.unknown_error(topic, index),
                        current_leader=self.current_leader(topic, index),
                    )
                )
                continue
            if not records:
                results.append(
                    AppendResult(
                        topic,
                        index,
                        ErrorCode.invalid_record,
                        "Produce request has no record batch",
                    )
                )
                continue
            try:
                info = partition.append_as_leader(records, acks)
            except PartitionError as exc:
                results.append(
                    AppendResult(
                        topic,
                        index,
                        exc.code,
                        exc.message,
                        current_leader=self.current_leader(topic, index),
                    )
                )
            except LogError as exc:
                results.append(
                    AppendResult(
                        topic,
                        index,
                        ErrorCode(exc.error_code),
                        str(exc),
                        log_start_offset=partition.log.log_start_offset,
                    )
                )
            else:
                results.append(
                    AppendResult(topic, index, info=info, log_start_offset=info.log_start_offset)
                )
                if not info.duplicate:
                    traffic = self.topic_traffic.get(topic)
                    if traffic is None:
                        traffic = self.topic_traffic[topic] = [0, 0, 0]
                    traffic[0] += len(records)
                    traffic[1] += info.record_count
        return results

    def record_consumed(self, results: Iterable[FetchResult]) -> None:
        for result in results:
            if result.records is not None:
                traffic = self.topic_traffic.get(result.topic)
                if traffic is None:
                    traffic = self.topic_traffic[result.topic] = [0, 0, 0]
                traffic[2] += result.records.length

    async def wait_for_acks(
        self, results: list[AppendResult], timeout_s: float
    ) -> list[AppendResult]:
        """acks=all: hold the answer until each written partition's high watermark passes it."""
        waits: list[tuple[int, asyncio.Future[ErrorCode]]] = []
        for position, result in enumerate(results):
            if result.error == ErrorCode.none and result.info is not None:
                partition = self.partitions.get((result.topic, result.index))
                if partition is None:
                    continue
                waits.append((position, partition.wait_for_acks(result.info.last_offset + 1)))
        if not waits:
            return results
        pending = {future for _, future in waits if not future.done()}
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
        out = list(results)
        for position, future in waits:
            if future.done():
                code = future.result()
            else:
                future.cancel()
                code = ErrorCode.request_timed_out
            if code != ErrorCode.none:
                r = out[position]
                out[position] = AppendResult(
                    r.topic,
                    r.index,
                    code,
                    None,
                    None,
                    r.log_start_offset,
                    self.current_leader(r.topic, r.index),
                )
        return out

    # Fetch ------------------------------------------------------------------------------------

    def _read(
        self,
        request: FetchRequestPartition,
        replica_id: int,
        limit: int,
        min_one: bool,
        read_committed: bool,
    ) -> FetchResult:
        topic, index = request.topic, request.index
        partition = self.partitions.get((topic, index))
        if partition is None:
            return FetchResult(
                topic,
                index,
                self.unknown_error(topic, index),
                current_leader=self.current_leader(topic, index),
            )
        plog = partition.log
        try:
            partition.check_leader(request.current_leader_epoch)
        except PartitionError as exc:
            return FetchResult(
                topic, index, exc.code, current_leader=self.current_leader(topic, index)
            )
        follower = replica_id >= 0
        if follower and request.last_fetched_epoch >= 0:
            epoch, end_offset = plog.end_offset_for_epoch(request.last_fetched_epoch)
            if epoch < request.last_fetched_epoch or end_offset < request.fetch_offset:
                return FetchResult(
                    topic,
                    index,
                    high_watermark=plog.high_watermark,
                    last_stable_offset=plog.high_watermark,
                    log_start_offset=plog.log_start_offset,
                    diverging_epoch=(epoch, end_offset),
                )
        if follower:
            if partition.record_follower_fetch(
                replica_id, request.fetch_offset, request.log_start_offset
            ):
                self.on_isr_candidate(partition, replica_id)
            upper = None
        elif read_committed:
            upper = plog.last_stable_offset
        else:
            upper = plog.high_watermark
        try:
            records = plog.read(
                request.fetch_offset,
                min(request.max_bytes, limit),
                max_offset=upper,
                min_one_batch=min_one,
            )
        except OffsetOutOfRangeError:
            return FetchResult(
                topic,
                index,
                ErrorCode.offset_out_of_range,
                high_watermark=plog.high_watermark,
                last_stable_offset=plog.last_stable_offset,
                log_start_offset=plog.log_start_offset,
            )
        except LogError as exc:
            return FetchResult(topic, index, ErrorCode(exc.error_code))
        aborted = None
        if read_committed and upper is not None:
            aborted = (
                () if records is None else plog.aborted_transactions(request.fetch_offset, upper)
            )
        return FetchResult(
            topic,
            index,
            high_watermark=plog.high_watermark,
            last_stable_offset=plog.last_stable_offset,
            log_start_offset=plog.log_start_offset,
            records=records,
            aborted_transactions=aborted,
        )

    def read_all(
        self,
        requests: list[FetchRequestPartition],
        replica_id: int,
        max_bytes: int,
        read_committed: bool = False,
    ) -> list[FetchResult]:
        results = []
        limit = max_bytes
        min_one = True
        for request in requests:
            result = self._read(request, replica_id, max(limit, 0), min_one, read_committed)
            if result.size:
                limit -= result.size
                min_one = False
            results.append(result)
        return results

    def fetch(
        self,
        requests: list[FetchRequestPartition],
        *,
        replica_id: int,
        max_wait_ms: int,
        min_bytes: int,
        max_bytes: int,
        read_committed: bool = False,
    ) -> list[FetchResult] | Awaitable[list[FetchResult]]:
        """Kafka's fetch: answer now if there is enough, else park until appends bring it."""
        results = self.read_all(requests, replica_id, max_bytes, read_committed)
        if max_wait_ms <= 0 or self.ready(results, min_bytes):
            return results
        # Park before returning: an append between this read and the coroutine's first
        # step must still wake it.
        deadline = asyncio.get_running_loop().time() + max_wait_ms / 1000
        parked = self._park(requests, replica_id >= 0)
        return self._long_poll(
            requests, replica_id, min_bytes, max_bytes, results, deadline, parked, read_committed
        )

    def _park(
        self, requests: list[FetchRequestPartition], follower: bool
    ) -> tuple[Waiter, list[set[Waiter]]]:
        waiter = Waiter()
        parked = []
        for request in requests:
            partition = self.partitions.get((request.topic, request.index))
            if partition is not None:
                waiters = partition.replica_waiters if follower else partition.consumer_waiters
                waiters.add(waiter)
                parked.append(waiters)
        return waiter, parked

    async def _long_poll(
        self,
        requests: list[FetchRequestPartition],
        replica_id: int,
        min_bytes: int,
        max_bytes: int,
        results: list[FetchResult],
        deadline: float,
        parked: tuple[Waiter, list[set[Waiter]]],
        read_committed: bool,
    ) -> list[FetchResult]:
        loop = asyncio.get_running_loop()
        while True:
            waiter, sets = parked
            remaining = deadline - loop.time()
            timer = loop.call_later(max(remaining, 0), waiter.wake)
            try:
                answer_now = await waiter.future
            finally:
                timer.cancel()
                for waiters in sets:
                    waiters.discard(waiter)
            results = self.read_all(requests, replica_id, max_bytes, read_committed)
            if answer_now or self.ready(results, min_bytes) or loop.time() >= deadline:
                return results
            parked = self._park(requests, replica_id >= 0)

    @staticmethod
    def ready(results: list[FetchResult], min_bytes: int) -> bool:
        total = 0
        for result in results:
            if result.error != ErrorCode.none or result.diverging_epoch is not None:
                return True
            total += result.size
        return total >= min_bytes

    def stop(self) -> None:
        for partition in self.partitions.values():
            partition.stop()
