"""Channels consumers: what the browser receives live, over one websocket per purpose.

- LiveConsumer (ws/live/): a page subscribes to cluster events, cluster stats (rates), lag,
  and one topic's partitions; pushed as they happen or once a second.
- ScanConsumer (ws/scan/): runs a message search on the brokers and streams its progress.
- TailConsumer (ws/topics/<name>/tail/): new messages of a topic as they arrive, sampled.
- ClusterConsumer (ws/cluster/): cluster events only.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any

import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from streams import events, selectors, services
from streams.forms import MessageSearchForm
from streams.services import ServiceError
from streams.services.messages import record_json

log = logging.getLogger(__name__)

TOPIC_REFRESH_S = 1.0
TAIL_FLUSH_S = 0.1
TAIL_SHOWN_PER_FLUSH = 25
MAX_UI_LIMIT = 1000


class AuthenticatedConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        if not self.scope["user"].is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()
        await self.opened()

    async def opened(self) -> None:
        """After the socket is accepted."""


class ClusterConsumer(AuthenticatedConsumer):
    """Pushes leader changes, brokers up/down, ISR changes and admin actions as they happen."""

    async def opened(self) -> None:
        await self.channel_layer.group_add(events.CLUSTER_GROUP, self.channel_name)

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(events.CLUSTER_GROUP, self.channel_name)

    async def cluster_event(self, message: dict[str, Any]) -> None:
        await self.send_json(message["event"])


def _lag_summary(group: dict[str, Any]) -> list[Any]:
    return [group["state"], group["members"], group["total_lag"]]


class LiveConsumer(AuthenticatedConsumer):
    """Send {"subscribe": ["events", "stats", "lag", "topic:<name>"], "group": "<id>"}.

    Out: {"type": "event" | "stats" | "lag" | "partitions", ...}. "lag" carries every
    group's [state, members, total lag] by id, or with "group" set, that group's whole entry.
    """

    joined: set[str]
    lag_group: str | None
    watcher: asyncio.Task[None] | None

    async def opened(self) -> None:
        self.joined = set()
        self.lag_group = None
        self.watcher = None

    async def _join(self, group: str) -> None:
        if group not in self.joined:
            self.joined.add(group)
            await self.channel_layer.group_add(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            return
        for item in content.get("subscribe") or ():
            if item == "events":
                await self._join(events.CLUSTER_GROUP)
            elif item == "stats":
                await self._join(events.STATS_GROUP)
                latest = await database_sync_to_async(selectors.stats_latest)()
                if latest is not None:
                    await self.cluster_stats(latest)
            elif item == "lag":
                self.lag_group = content.get("group")
                await self._join(events.LAG_GROUP)
                latest = await database_sync_to_async(selectors.group_lag_latest)()
                if latest is not None:
                    await self.lag_update(latest)
            elif isinstance(item, str) and item.startswith("topic:") and self.watcher is None:
                self.watcher = asyncio.create_task(self._watch_topic(item[len("topic:") :]))

    async def _watch_topic(self, name: str) -> None:
        """The topic's leaders, ISR and offsets each second (leader changes also come as events)."""
        read = database_sync_to_async(selectors.topic_partitions)
        while True:
            try:
                rows = await read(name)
                await self.send_json(
                    {"type": "partitions", "topic": name, "partitions": [r.to_json() for r in rows]}
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("reading partitions of %s failed", name, exc_info=True)
            await asyncio.sleep(TOPIC_REFRESH_S)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)
        watcher = getattr(self, "watcher", None)
        if watcher is not None:
            watcher.cancel()

    async def cluster_event(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "event", "event": message["event"]})

    async def cluster_stats(self, message: dict[str, Any]) -> None:
        await self.send_json({**message, "type": "stats"})

    async def lag_update(self, message: dict[str, Any]) -> None:
        groups = message.get("groups", [])
        if self.lag_group is not None:
            found = next((g for g in groups if g["group"] == self.lag_group), None)
            if found is not None:
                await self.send_json({"type": "lag", "at": message["at"], "group": found})
            return
        await self.send_json(
            {
                "type": "lag",
                "at": message["at"],
                "groups": {g["group"]: _lag_summary(g) for g in groups},
            }
        )


@functools.cache
def _redis() -> aioredis.Redis:
    return aioredis.Redis.from_url(settings.REDIS_URL)


class ScanConsumer(AuthenticatedConsumer):
    """In: {"action": "start", "topic": ..., "query": {search form fields}} or {"action": "cancel"}.

    Out: "started", "records" (as the brokers find them), "progress", then "done" — each
    with the scan's summary (scanned, to_scan, matches, elapsed, rate, errors).
    """

    task: asyncio.Task[None] | None = None
    state: services.ScanState | None = None

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            return
        action = content.get("action")
        if action in ("start", "cancel"):
            await self._stop()
        if action != "start":
            return
        topic = str(content.get("topic", ""))
        form = MessageSearchForm(content.get("query") or {}, topic=topic)
        if not await database_sync_to_async(form.is_valid)():
            await self.send_json({"type": "invalid", "errors": form.errors.get_json_data()})
            return
        query = form.query(limit=min(MAX_UI_LIMIT, form.cleaned_data.get("limit") or 100))
        try:
            scan = await database_sync_to_async(services.scan_start)(query)
        except ServiceError as error:
            await self.send_json({"type": "error", "message": error.message})
            return
        self.state = services.ScanState(scan)
        await self.send_json(
            {
                "type": "started",
                "scan": scan.id,
                "limit": query.limit,
                "newest_first": query.newest_first,
            }
        )
        self.task = asyncio.create_task(self._follow(self.state))

    async def _follow(self, state: services.ScanState) -> None:
        last_progress = 0.0
        try:
            while not state.finished:
                entries = await services.scan_read_async(_redis(), state)
                records = [r for e in entries if e["type"] == "records" for r in e["records"]]
                if records:
                    await self.send_json({"type": "records", "records": records})
                now = time.monotonic()
                if now - last_progress >= 0.2:
                    last_progress = now
                    await self.send_json({"type": "progress", **state.summary()})
            await self.send_json({"type": "done", **state.summary()})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("following scan %s failed", state.scan.id, exc_info=True)
            await self.send_json({"type": "error", "message": str(exc)})

    async def _stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            if self.state is not None:
                await _redis().set(self.state.scan.cancel_key, b"1", ex=600)
        self.task = None

    async def disconnect(self, code: int) -> None:
        await self._stop()


class TailConsumer(AuthenticatedConsumer):
    """Out: "ready" (each partition's start offset), then "messages" and "rate" as they come.

    A message is sent on at once after a quiet spell; under load at most every
    TAIL_FLUSH_S, each time an even sample of at most TAIL_SHOWN_PER_FLUSH of what arrived,
    with the count received: a browser never gets more than it can draw.
    """

    tail: services.Tail | None = None
    task: asyncio.Task[None] | None = None
    stopping: asyncio.Event

    async def opened(self) -> None:
        self.stopping = asyncio.Event()
        name = self.scope["url_route"]["kwargs"]["name"]
        tail = services.Tail(name)
        try:
            starts = await asyncio.to_thread(tail.open)
        except ServiceError as error:
            await self.send_json({"type": "error", "message": error.message})
            await self.close()
            return
        self.tail = tail
        await self.send_json({"type": "ready", "partitions": starts})
        self.task = asyncio.create_task(self._pump(tail))

    async def _pump(self, tail: services.Tail) -> None:
        window_start = last_flush = time.monotonic()
        window_messages = window_bytes = 0
        pending: list[Any] = []
        received = 0
        while not self.stopping.is_set():
            arrived = await asyncio.to_thread(tail.poll, 5000, TAIL_FLUSH_S)
            if arrived:
                received += len(arrived)
                window_messages += len(arrived)
                window_bytes += sum(len(m.value() or b"") + len(m.key() or b"") for m in arrived)
                pending += arrived
                if len(pending) > 20 * TAIL_SHOWN_PER_FLUSH:
                    pending = pending[:: len(pending) // TAIL_SHOWN_PER_FLUSH]
            now = time.monotonic()
            if pending and now - last_flush >= TAIL_FLUSH_S:
                shown = pending
                if len(pending) > TAIL_SHOWN_PER_FLUSH:
                    step = len(pending) / TAIL_SHOWN_PER_FLUSH
                    shown = [pending[int(i * step)] for i in range(TAIL_SHOWN_PER_FLUSH)]
                await self.send_json(
                    {
                        "type": "messages",
                        "received": received,
                        "messages": [record_json(m) for m in shown],
                    }
                )
                pending, received, last_flush = [], 0, now
            if now - window_start >= 1.0:
                await self.send_json(
                    {
                        "type": "rate",
                        "messages_per_s": round(window_messages / (now - window_start), 1),
                        "bytes_per_s": round(window_bytes / (now - window_start), 1),
                    }
                )
                window_start = now
                window_messages = window_bytes = 0

    async def disconnect(self, code: int) -> None:
        if not hasattr(self, "stopping"):
            return
        self.stopping.set()
        if self.task is not None:
            with contextlib.suppress(Exception):
                await self.task
        if self.tail is not None:
            await asyncio.to_thread(self.tail.close)
