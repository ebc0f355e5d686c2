"""Transaction markers: the coordinator's channel to partition leaders, and the leaders' side.

`TxnMarkerChannel` is Kafka's TransactionMarkerChannelManager: it sends WriteTxnMarkers to the
leader of every partition in a transaction (calling this broker directly when it leads one) and
retries until each has written its COMMIT or ABORT marker. `TxnMarkerWriter` is what a leader
does with one: append the control batch, wait until the ISR has it, and, on a
`__consumer_offsets` partition, make the transaction's offsets committed (or drop them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode
from kio.schema.response_header.v1.header import ResponseHeader
from kio.serial import entity_reader
from kio.static.primitive import i16, i32, i64

from brokers.coordinator.offsets_topic import OFFSETS_TOPIC
from brokers.log.batch import marker_batch
from brokers.log.errors import LogError
from brokers.log.producer_state import AppendOrigin
from brokers.protocol import schema
from brokers.protocol.framing import encode_request
from brokers.replication.partition import PartitionError

if TYPE_CHECKING:
    from brokers.coordinator.group_coordinator import GroupCoordinator
    from brokers.image import MetadataImage
    from brokers.replication.replica_manager import ReplicaManager

log = logging.getLogger(__name__)

WRITE_TXN_MARKERS = 27
MARKERS_VERSION = 1
MARKER_ACK_TIMEOUT_S = 30.0
RETRY_BACKOFF_S = 0.1
REQUEST_TIMEOUT_S = 35.0
_SIZE = struct.Struct(">i")
_read_response_header = entity_reader(ResponseHeader)

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Marker:
    """One WriteTxnMarkers entry: end `producer_id`'s transaction on `partitions`."""

    producer_id: int
    producer_epoch: int
    commit: bool
    coordinator_epoch: int
    partitions: tuple[TopicPartition, ...]


class TxnMarkerWriter:
    """A partition leader writing the markers a coordinator asked for."""

    def __init__(self, replicas: ReplicaManager, groups: GroupCoordinator) -> None:
        self.replicas = replicas
        self.groups = groups

    async def write(self, marker: Marker) -> dict[TopicPartition, ErrorCode]:
        batch = marker_batch(
            marker.producer_id,
            marker.producer_epoch,
            marker.commit,
            marker.coordinator_epoch,
            int(time.time() * 1000),
        )
        results: dict[TopicPartition, ErrorCode] = {}
        waits: list[tuple[TopicPartition, asyncio.Future[ErrorCode]]] = []
        for topic, index in marker.partitions:
            partition = self.replicas.partition(topic, index)
            if partition is None:
                results[(topic, index)] = self.replicas.unknown_error(topic, index)
                continue
            try:
                info = partition.append_as_leader(batch, -1, origin=AppendOrigin.COORDINATOR)
            except PartitionError as exc:
                results[(topic, index)] = exc.code
                continue
            except LogError as exc:
                results[(topic, index)] = ErrorCode(exc.error_code)
                continue
            waits.append(((topic, index), partition.wait_for_acks(info.last_offset + 1)))
        if waits:
            await asyncio.wait([f for _, f in waits], timeout=MARKER_ACK_TIMEOUT_S)
        for key, future in waits:
            if not future.done():
                future.cancel()
                results[key] = ErrorCode.request_timed_out
                continue
            code = future.result()
            if code == ErrorCode.not_enough_replicas_after_append:
                code = ErrorCode.none  # written; Kafka's markers only need the append
            if code == ErrorCode.none and key[0] == OFFSETS_TOPIC:
                code = await self._complete_offsets(key[1], marker)
            results[key] = code
        return results

    async def _complete_offsets(self, partition: int, marker: Marker) -> ErrorCode:
        try:
            await self.groups.complete_transaction(partition, marker.producer_id, marker.commit)
        except Exception as exc:
            log.warning(
                "offsets of producer %s on %s-%s not completed: %s",
                marker.producer_id,
                OFFSETS_TOPIC,
                partition,
                exc,
            )
            return ErrorCode.not_leader_or_follower
        return ErrorCode.none


class _Connection:
    """One connection to another broker, one request at a time."""

    def __init__(self, address: tuple[str, int], client_id: str) -> None:
        self.address = address
        self.client_id = client_id
        self.lock = asyncio.Lock()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._correlation = 0

    async def request(self, api_key: int, version: int, body: Any) -> Any:
        async with self.lock:
            try:
                return await asyncio.wait_for(
                    self._request(api_key, version, body), REQUEST_TIMEOUT_S
                )
            except BaseException:
                self.close()
                raise

    async def _request(self, api_key: int, version: int, body: Any) -> Any:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(*self.address)
            sock = self._writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self._reader is not None
        self._correlation = (self._correlation + 1) & 0x7FFFFFFF
        self._writer.write(
            encode_request(api_key, version, self._correlation, self.client_id, body)
        )
        (size,) = _SIZE.unpack(await self._reader.readexactly(4))
        data = await self._reader.readexactly(size)
        response_header, offset = _read_response_header(data, 0)
        if response_header.correlation_id != self._correlation:
            raise ValueError(
                f"correlation id {response_header.correlation_id} != {self._correlation}"
            )
        response, _ = schema.response_reader(api_key, version)(data, offset)
        return response

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class TxnMarkerChannel:
    """Sends a transaction's markers to its partitions' leaders until all are written."""

    def __init__(
        self,
        node_id: int,
        image: Callable[[], MetadataImage],
        address: Callable[[int], tuple[str, int] | None],
        local: Callable[[Marker], Awaitable[dict[TopicPartition, ErrorCode]]],
    ) -> None:
        self.node_id = node_id
        self._image = image
        self._address = address
        self._local = local
        self._connections: dict[int, _Connection] = {}

    async def send(self, marker: Marker, still_valid: Callable[[], bool]) -> bool:
        """True once every partition has the marker; False if `still_valid` turned false."""
        remaining = set(marker.partitions)
        while remaining:
            if not still_valid():
                return False
            image = self._image()
            by_leader: dict[int, list[TopicPartition]] = {}
            for topic, index in sorted(remaining):
                if topic not in image.topics:
                    # A deleted topic needs no marker (Kafka drops it too).
                    remaining.discard((topic, index))
                    continue
                state = image.partition(topic, index)
                if state is None:
                    remaining.discard((topic, index))
                elif state.leader >= 0:
                    by_leader.setdefault(state.leader, []).append((topic, index))
            outcomes = await asyncio.gather(
                *(self._send_to(leader, marker, tps) for leader, tps in by_leader.items())
            )
            for done in outcomes:
                remaining.difference_update(done)
            if remaining:
                await asyncio.sleep(RETRY_BACKOFF_S)
        return True

    async def _send_to(
        self, leader: int, marker: Marker, partitions: list[TopicPartition]
    ) -> Iterable[TopicPartition]:
        one = Marker(
            marker.producer_id,
            marker.producer_epoch,
            marker.commit,
            marker.coordinator_epoch,
            tuple(partitions),
        )
        try:
            if leader == self.node_id:
                results = await self._local(one)
            else:
                results = await self._remote(leader, one)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            log.info("markers for producer %s to broker %s: %s", marker.producer_id, leader, exc)
            return ()
        done = []
        for key, code in results.items():
            if code == ErrorCode.none:
                done.append(key)
            elif code in (
                ErrorCode.invalid_producer_epoch,
                ErrorCode.transaction_coordinator_fenced,
            ):
                # A newer epoch already ended this transaction there: nothing to write.
                log.warning("marker for producer %s on %s: %s", marker.producer_id, key, code.name)
                done.append(key)
        return done

    async def _remote(self, leader: int, marker: Marker) -> dict[TopicPartition, ErrorCode]:
        address = self._address(leader)
        if address is None:
            return {}
        connection = self._connections.get(leader)
        if connection is None or connection.address != address:
            if connection is not None:
                connection.close()
            connection = self._connections[leader] = _Connection(
                address, f"txn-coordinator-{self.node_id}"
            )
        module = schema.request_module(WRITE_TXN_MARKERS, MARKERS_VERSION)
        by_topic: dict[str, list[int]] = {}
        for topic, index in marker.partitions:
            by_topic.setdefault(topic, []).append(index)
        request = module.WriteTxnMarkersRequest(
            markers=(
                module.WritableTxnMarker(
                    producer_id=i64(marker.producer_id),
                    producer_epoch=i16(marker.producer_epoch),
                    transaction_result=marker.commit,
                    topics=tuple(
                        module.WritableTxnMarkerTopic(
                            name=topic, partition_indexes=tuple(i32(i) for i in indexes)
                        )
                        for topic, indexes in by_topic.items()
                    ),
                    coordinator_epoch=i32(marker.coordinator_epoch),
                ),
            )
        )
        response = await connection.request(WRITE_TXN_MARKERS, MARKERS_VERSION, request)
        results: dict[TopicPartition, ErrorCode] = {}
        for result in response.markers:
            for topic in result.topics:
                for p in topic.partitions:
                    results[(topic.name, int(p.partition_index))] = p.error_code
        return results

    def close(self) -> None:
        for connection in self._connections.values():
            with contextlib.suppress(Exception):
                connection.close()
        self._connections.clear()
