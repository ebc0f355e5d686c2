"""Small helpers every handler uses."""

from __future__ import annotations

import datetime
from types import ModuleType

from kio.schema.errors import ErrorCode
from kio.static.primitive import i32Timedelta

from brokers.protocol import schema
from brokers.protocol.dispatch import RequestContext

NO_THROTTLE = i32Timedelta.parse(datetime.timedelta(0))


def response_schema(ctx: RequestContext) -> ModuleType:
    return schema.response_module(ctx.api_key, ctx.api_version)


def code(value: int) -> ErrorCode:
    return ErrorCode(value)


def timeout_seconds(value: datetime.timedelta, default: float = 30.0) -> float:
    seconds = value.total_seconds()
    return default if seconds <= 0 else seconds
