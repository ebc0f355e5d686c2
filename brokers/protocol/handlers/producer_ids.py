"""InitProducerId: a producer id and epoch for idempotent and transactional producers."""

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
# KIP-588: from v4 a fenced producer gets PRODUCER_FENCED, before INVALID_PRODUCER_EPOCH.
PRODUCER_FENCED_VERSION = 4


def register(dispatcher: Dispatcher, node: BrokerNode) -> None:
    async def handle(ctx: RequestContext, request: Any) -> Any:
        module = response_schema(ctx)
        if request.transactional_id is not None:
            result = await node.txn_coordinator.init_producer_id(
                request.transactional_id,
                int(request.transaction_timeout.total_seconds() * 1000),
                int(getattr(request, "producer_id", -1)),
                int(getattr(request, "producer_epoch", -1)),
            )
            error = result.error
            if error == ErrorCode.producer_fenced and ctx.api_version < PRODUCER_FENCED_VERSION:
                error = ErrorCode.invalid_producer_epoch
            return schema.build(
                module.InitProducerIdResponse,
                throttle_time=NO_THROTTLE,
                error_code=error,
                producer_id=i64(result.producer_id),
                producer_epoch=i16(result.producer_epoch),
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
