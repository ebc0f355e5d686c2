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
_INT32 = struct.Struct(">i")
API_VERSIONS_KEY = 18


@dataclass(frozen=True, slots=True)
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
