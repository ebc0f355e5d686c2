"""Request headers in, size-prefixed responses out: the Kafka frame format."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Any

from kio.static.primitive import i32

from brokers.protocol import schema

# api_key int16, api_version int16, correlation_id int32: the part every header version shares.
HEADER_PREFIX = struct.Struct(">hhi")
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_UVARINT_MAX_BYTES = 5


class MalformedHeader(ValueError):
    """A request header that cannot be read."""


def _read_uvarint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    for index in range(position, min(position + _UVARINT_MAX_BYTES, len(data))):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index + 1
        shift += 7
    raise MalformedHeader("unsigned varint is truncated or longer than 5 bytes")


def read_request_header(data: bytes, flexible: bool) -> tuple[str | None, int]:
    """The client id of a request header (v1, or v2 when flexible) and where the body starts.

    Tagged fields in a v2 header are skipped, known or not, as Kafka does.
    """
    position = HEADER_PREFIX.size
    if len(data) < position + _INT16.size:
        raise MalformedHeader("request header ends before its client id")
    (length,) = _INT16.unpack_from(data, position)
    position += _INT16.size
    client_id = None
    if length >= 0:
        end = position + length
        if end > len(data):
            raise MalformedHeader("client id runs past the end of the frame")
        client_id = data[position:end].decode("utf-8", errors="replace")
        position = end
    elif length != -1:
        raise MalformedHeader(f"client id has a negative length {length}")
    if flexible:
        count, position = _read_uvarint(data, position)
        for _ in range(count):
            _, position = _read_uvarint(data, position)
            size, position = _read_uvarint(data, position)
            position += size
            if position > len(data):
                raise MalformedHeader("a tagged field runs past the end of the frame")
    return client_id, position


API_VERSIONS_KEY = 18


@dataclass(slots=True)
class FileRegion:
    """Bytes of a segment file, sent with sendfile(2) or read with pread(2) when small."""

    fd: int
    position: int
    length: int

    def fileno(self) -> int:
        return self.fd

    def seek(self, *_: object) -> None:
        # asyncio's sendfile moves the file position afterwards; reads use pread, so ignore it.
        return None

    def read(self) -> bytes:
        return os.pread(self.fd, self.length, self.position)


Part = bytes | FileRegion


@dataclass(slots=True)
class Response:
    """A response body as parts, some of which may be file regions; framed by the connection."""

    parts: list[Part]
    size: int


def response_header(correlation_id: int, flexible: bool) -> bytes:
    if flexible:
        return _INT32.pack(correlation_id) + b"\x00"
    return _INT32.pack(correlation_id)


def frame(correlation_id: int, flexible_header: bool, body: bytes) -> bytes:
    header = response_header(correlation_id, flexible_header)
    return _INT32.pack(len(header) + len(body)) + header + body


def frame_parts(correlation_id: int, flexible_header: bool, response: Response) -> list[Part]:
    header = response_header(correlation_id, flexible_header)
    prefix = _INT32.pack(len(header) + response.size) + header
    return [prefix, *response.parts]


def encode_request(
    api_key: int, version: int, correlation_id: int, client_id: str, body: Any
) -> bytes:
    """Frame a request: used where a broker is itself the client (followers, tests)."""
    cls = schema.request_class(api_key, version)
    header_cls = cls.__header_schema__
    fields = {
        "request_api_key": api_key,
        "request_api_version": version,
        "correlation_id": i32(correlation_id),
        "client_id": client_id,
    }
    payload = schema.encode(schema.build(header_cls, **fields)) + schema.encode(body)
    return _INT32.pack(len(payload)) + payload
