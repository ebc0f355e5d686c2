"""Channels consumers that push cluster events to the browser."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from streams import events


class ClusterConsumer(AsyncJsonWebsocketConsumer):
    """Pushes leader changes, brokers up/down, ISR changes and admin actions as they happen."""

    async def connect(self) -> None:
        if not self.scope["user"].is_authenticated:
            await self.close(code=4401)
            return
        await self.channel_layer.group_add(events.CLUSTER_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(events.CLUSTER_GROUP, self.channel_name)

    async def cluster_event(self, message: dict) -> None:
        await self.send_json(message["event"])
