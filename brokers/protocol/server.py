"""The Kafka listener: one asyncio protocol per client connection, responses in request order."""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import struct
from collections import deque
from typing import IO, cast

from brokers.protocol.dispatch import Dispatcher, InvalidRequest, Outcome
from brokers.protocol.framing import FileRegion, Part

log = logging.getLogger(__name__)

_SIZE = struct.Struct(">i")
# Regions smaller than this are read and coalesced with the bytes around them;
# larger ones go out with sendfile(2) and never pass through Python.
SENDFILE_MIN_BYTES = 64 * 1024
WRITE_BUFFER_HIGH = 8 * 1024 * 1024


class Connection(asyncio.Protocol):
    def __init__(self, listener: KafkaListener) -> None:
        self._listener = listener
        self._dispatcher = listener.dispatcher
        self._max_request = listener.max_request_size
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        # Responses waiting for an earlier, slower response on this connection.
        self._pending: deque[asyncio.Future[Outcome]] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._write_paused = False
        self._refusing = False
        self.closed = False
        self.peer_host = ""
        self.peer_port = 0

    # asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer_host, self.peer_port = peer[0], peer[1]
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        self._listener.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._listener.connections.discard(self)
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._writer is not None:
            self._writer.cancel()

    def pause_writing(self) -> None:
        # A client that does not read its responses stops being read from.
        self._write_paused = True
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._transport is not None and not self.closed and not self._refusing:
            self._transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._refusing:
            return
        buffer = self._buffer
        if buffer:
            buffer += data
            view: bytes | bytearray = buffer
        else:
            view = data
        position = 0
        end = len(view)
        while end - position >= 4:
            (size,) = _SIZE.unpack_from(view, position)
            if size < 0 or size > self._max_request:
                self._refuse(f"request size {size} is outside 0..{self._max_request}")
                return
            stop = position + 4 + size
            if stop > end:
                break
            request = bytes(view[position + 4 : stop])
            position = stop
            self._serve(request)
            if self.closed or self._refusing:
                return
        if view is buffer:
            del buffer[:position]
        elif position < end:
            buffer += memoryview(data)[position:]

    # Serving ----------------------------------------------------------------------------

    def _serve(self, request: bytes) -> None:
        try:
            outcome = self._dispatcher.dispatch(self, request)
        except InvalidRequest as exc:
            self._refuse(str(exc))
            return
        except Exception:
            self._internal_error()
            return
        if inspect.isawaitable(outcome):
            self._enqueue(asyncio.ensure_future(outcome))
        elif outcome is None:
            return
        elif not self._pending and isinstance(outcome, bytes):
            assert self._transport is not None
            self._transport.write(outcome)
        else:
            future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
            future.set_result(outcome)
            self._enqueue(future)

    def _enqueue(self, future: asyncio.Future[Outcome]) -> None:
        self._pending.append(future)
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write_in_order())

    async def _write_in_order(self) -> None:
        try:
            while self._pending and not self.closed:
                future = self._pending[0]
                try:
                    outcome = await future
                except InvalidRequest as exc:
                    self.abort(str(exc))
                    return
                except asyncio.CancelledError:
                    return
                except Exception:
                    self._internal_error()
                    return
                self._pending.popleft()
                if outcome is not None:
                    await self._write(outcome)
        finally:
            self._writer = None
            if self._pending and not self.closed:
                self._writer = asyncio.ensure_future(self._write_in_order())

    async def _write(self, outcome: bytes | list[Part]) -> None:
        transport = self._transport
        assert transport is not None
        if isinstance(outcome, bytes):
            transport.write(outcome)
            return
        chunk: list[bytes] = []
        for part in outcome:
            if isinstance(part, FileRegion):
                if part.length < SENDFILE_MIN_BYTES:
                    chunk.append(part.read())
                    continue
                if chunk:
                    transport.write(b"".join(chunk))
                    chunk = []
                await self._sendfile(part)
                if self.closed:
                    return
            else:
                chunk.append(part)
        if chunk:
            transport.write(b"".join(chunk))

    async def _sendfile(self, region: FileRegion) -> None:
        transport = self._transport
        assert transport is not None
        loop = asyncio.get_running_loop()
        try:
            sent = await loop.sendfile(
                transport, cast(IO[bytes], region), region.position, region.length, fallback=False
            )
        except (NotImplementedError, RuntimeError, asyncio.exceptions.SendfileNotAvailableError):
            transport.write(region.read())
            return
        if sent != region.length:
            # The file shrank under us; the frame can no longer be completed.
            self.abort(f"segment region shrank while sending ({sent} of {region.length} bytes)")

    def _internal_error(self) -> None:
        """A bug of ours, not the client's: log it, and close only this connection."""
        log.exception(
            "closing connection from %s:%s after an internal error", self.peer_host, self.peer_port
        )
        self.abort("internal error")

    def _refuse(self, reason: str) -> None:
        """Input that cannot be served: answer the requests before it, then close.

        Kafka serves a connection's requests one at a time, so requests ahead of a bad frame
        always get their answers; reading stops here and the writer closes after them.
        """
        if not self._pending:
            self.abort(reason)
            return
        self._refusing = True
        if self._transport is not None:
            self._transport.pause_reading()
        refusal: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        refusal.set_exception(InvalidRequest(reason))
        self._enqueue(refusal)

    def abort(self, reason: str) -> None:
        """Close a connection whose input cannot be served; the broker serves everyone else."""
        if self.closed:
            return
        log.debug("closing connection from %s:%s: %s", self.peer_host, self.peer_port, reason)
        self._listener.closed_for_bad_input += 1
        self.close()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()


class KafkaListener:
    """Accepts client connections on the broker's port."""

    def __init__(self, dispatcher: Dispatcher, host: str, port: int, max_request_size: int) -> None:
        self.dispatcher = dispatcher
        self.host = host
        self.port = port
        self.max_request_size = max_request_size
        self.connections: set[Connection] = set()
        self.closed_for_bad_input = 0
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self), self.host, self.port, reuse_address=True, backlog=1024
        )
        log.info("listening for Kafka clients on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
