"""A TCP proxy in front of each broker that records what clients produce, frame by frame.

Clients learn broker addresses from Metadata, so the proxy rewrites every Metadata response
to name the proxies instead; everything else passes through unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from kio.serial import entity_reader

from brokers.protocol import schema
from brokers.protocol.framing import HEADER_PREFIX
from tests.protocol.raw import decode_response, response_header_is_flexible

_SIZE = struct.Struct(">i")
PRODUCE, METADATA = 0, 3


@dataclass
class Captured:
    """Produce request records, per (topic, partition), in the order clients sent them."""

    records: dict[tuple[str, int], list[bytes]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, topic: str, partition: int, data: bytes) -> None:
        with self.lock:
            self.records.setdefault((topic, partition), []).append(data)


def _read_frame(sock: socket.socket) -> bytes | None:
    header = _recv_exactly(sock, 4)
    if header is None:
        return None
    (size,) = _SIZE.unpack(header)
    return _recv_exactly(sock, size)


def _recv_exactly(sock: socket.socket, count: int) -> bytes | None:
    chunks = []
    while count:
        try:
            chunk = sock.recv(min(count, 1 << 20))
        except OSError:
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


class KafkaProxy:
    def __init__(self, brokers: dict[int, tuple[str, int]]) -> None:
        self.brokers = brokers
        self.captured = Captured()
        self._listeners: dict[int, socket.socket] = {}
        for node_id in brokers:
            listener = socket.create_server(("127.0.0.1", 0))
            self._listeners[node_id] = listener
        self.ports = {n: s.getsockname()[1] for n, s in self._listeners.items()}
        self._sockets: list[socket.socket] = []
        self._closed = False

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports.values())

    def start(self) -> None:
        for node_id, listener in self._listeners.items():
            threading.Thread(target=self._accept, args=(node_id, listener), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        for sock in [*self._listeners.values(), *self._sockets]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, node_id: int, listener: socket.socket) -> None:
        while not self._closed:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.brokers[node_id])
            self._sockets += [client, server]
            in_flight: dict[int, tuple[int, int]] = {}
            threading.Thread(
                target=self._upstream, args=(client, server, in_flight), daemon=True
            ).start()
            threading.Thread(
                target=self._downstream, args=(server, client, in_flight), daemon=True
            ).start()

    def _upstream(
        self, client: socket.socket, server: socket.socket, in_flight: dict[int, tuple[int, int]]
    ) -> None:
        while (frame := _read_frame(client)) is not None:
            api_key, version, correlation_id = HEADER_PREFIX.unpack_from(frame, 0)
            in_flight[correlation_id] = (api_key, version)
            if api_key == PRODUCE:
                self._capture(frame, version)
            try:
                server.sendall(_SIZE.pack(len(frame)) + frame)
            except OSError:
                break
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)

    def _downstream(
        self, server: socket.socket, client: socket.socket, in_flight: dict[int, tuple[int, int]]
    ) -> None:
        while (frame := _read_frame(server)) is not None:
            (correlation_id,) = _SIZE.unpack_from(frame, 0)
            api_key, version = in_flight.pop(correlation_id, (-1, -1))
            if api_key == METADATA:
                frame = self._rewrite_metadata(frame, version)
            try:
                client.sendall(_SIZE.pack(len(frame)) + frame)
            except OSError:
                break
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)

    def _capture(self, frame: bytes, version: int) -> None:
        header_class = schema.request_class(PRODUCE, version).__header_schema__
        _, offset = entity_reader(header_class)(frame, 0)
        request, _ = schema.request_reader(PRODUCE, version)(frame, offset)
        for topic in request.topic_data:
            for partition in topic.partition_data:
                if partition.records:
                    self.captured.add(topic.name, partition.index, bytes(partition.records))

    def _rewrite_metadata(self, frame: bytes, version: int) -> bytes:
        correlation_id, response = decode_response(METADATA, version, frame)
        module = schema.response_module(METADATA, version)
        brokers = tuple(
            schema.build(
                module.MetadataResponseBroker,
                node_id=b.node_id,
                host="127.0.0.1",
                port=self.ports[b.node_id],
                rack=b.rack,
            )
            for b in response.brokers
        )
        rewritten = dataclasses.replace(response, brokers=brokers)
        header = _SIZE.pack(correlation_id)
        if response_header_is_flexible(METADATA, version):
            header += b"\x00"
        return header + schema.encode(rewritten)


@contextlib.contextmanager
def proxied(brokers: dict[int, tuple[str, int]]) -> Iterator[KafkaProxy]:
    proxy = KafkaProxy(brokers)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()
