"""Producer ids for idempotent producers, handed out from blocks the metadata DB reserves."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

BLOCK_SIZE = 1000


class ProducerIdManager:
    """Every id comes from a block reserved for this broker alone (KIP-730), so ids never repeat."""

    def __init__(self, allocate_block: Callable[[], Awaitable[tuple[int, int]]]) -> None:
        self._allocate_block = allocate_block
        self._next = 0
        self._end = 0
        self._lock = asyncio.Lock()

    async def next_id(self) -> int:
        if self._next >= self._end:
            async with self._lock:
                if self._next >= self._end:
                    first, size = await self._allocate_block()
                    self._next, self._end = first, first + size
        producer_id = self._next
        self._next += 1
        return producer_id
