"""InitProducerId: a producer id and epoch for idempotent producers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode
from kio.static.primitive import i16, i64

from brokers.protocol import schema
from brokers.protocol.dispatch import Dispatcher, RequestContext
from brokers.protocol.handlers.common import NO_THROTTLE, response_schema

if TYPE_CHECKING:
    from brokers.node import BrokerNode

API_KEY = 22
MIN_VERSION, MAX_VERSION = 0, 4


def register(dispatcher: Dispatcher, node: BrokerNode) -> None:
    async def handle(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        if request.transactional_id is not None:
            return schema.build(
                module.InitProducerIdResponse,
                throttle_time=NO_THROTTLE,
                error_code=ErrorCode.transactional_id_authorization_failed,
                producer_id=i64(-1),
                producer_epoch=i16(-1),
            )
        # Like Kafka, an idempotent producer (no transactional id) always gets a fresh id
        # at epoch 0, also when it asks to bump its epoch after an error (KIP-360).
        producer_id = await node.producer_ids.next_id()
        return schema.build(
            module.InitProducerIdResponse,
            throttle_time=NO_THROTTLE,
            error_code=ErrorCode.none,
            producer_id=i64(producer_id),
            producer_epoch=i16(0),
        )

    dispatcher.register(API_KEY, MIN_VERSION, MAX_VERSION, handle)
