"""A bare Kafka protocol client for tests: kio-encoded requests over a plain socket."""

from __future__ import annotations

import socket
import struct
from typing import Any

from kio.schema.response_header.v0.header import ResponseHeader as ResponseHeaderV0
from kio.schema.response_header.v1.header import ResponseHeader as ResponseHeaderV1
from kio.serial import entity_reader

from brokers.protocol import schema
from brokers.protocol.framing import encode_request

_SIZE = struct.Struct(">i")
_read_header_v0 = entity_reader(ResponseHeaderV0)
_read_header_v1 = entity_reader(ResponseHeaderV1)
API_VERSIONS = 18


class Closed(Exception):
    """The broker closed the connection."""


def response_header_is_flexible(api_key: int, version: int) -> bool:
    # ApiVersions answers with header v0 at every version, so clients can read any answer.
    return api_key != API_VERSIONS and bool(schema.response_class(api_key, version).__flexible__)


def decode_response(api_key: int, version: int, frame: bytes) -> tuple[int, Any]:
    """(correlation id, response entity) from a response frame without its size prefix."""
    reader = _read_header_v1 if response_header_is_flexible(api_key, version) else _read_header_v0
    header, offset = reader(frame, 0)
    body, _ = schema.response_reader(api_key, version)(frame, offset)
    return int(header.correlation_id), body


class RawClient:
    def __init__(self, address: tuple[str, int], timeout_s: float = 30.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._next_id = 0

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, api_key: int, version: int, body: Any, client_id: str = "raw-test") -> int:
        self._next_id += 1
        self.send_bytes(encode_request(api_key, version, self._next_id, client_id, body))
        return self._next_id

    def _read_exactly(self, count: int) -> bytes:
        chunks = []
        while count:
            chunk = self.sock.recv(min(count, 1 << 20))
            if not chunk:
                raise Closed
            chunks.append(chunk)
            count -= len(chunk)
        return b"".join(chunks)

    def read_frame(self) -> bytes:
        """One response frame without its size prefix; Closed if the broker hung up."""
        (size,) = _SIZE.unpack(self._read_exactly(4))
        return self._read_exactly(size)

    def is_closed(self) -> bool:
        """Wait (up to the socket timeout) for the broker to close; True if it did."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def request(self, api_key: int, version: int, body: Any, client_id: str = "raw-test") -> Any:
        correlation_id = self.send(api_key, version, body, client_id)
        got, response = decode_response(api_key, version, self.read_frame())
        assert got == correlation_id, f"correlation id {got}, expected {correlation_id}"
        return response


def build_request(api_key: int, version: int, **values: Any) -> Any:
    return schema.build(schema.request_class(api_key, version), **values)
