"""One module per API family; `register_all` builds the broker's API table from them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from brokers.protocol.dispatch import Dispatcher

if TYPE_CHECKING:
    from brokers.node import BrokerNode


def register_all(dispatcher: Dispatcher, node: BrokerNode) -> None:
    from brokers.protocol.handlers import (
        api_versions,
        cluster,
        configs,
        fetch,
        groups,
        metadata,
        offsets,
        produce,
        producer_ids,
        topics,
        transactions,
    )

    for module in (
        api_versions,
        metadata,
        produce,
        fetch,
        offsets,
        producer_ids,
        topics,
        configs,
        cluster,
        groups,
        transactions,
    ):
        module.register(dispatcher, node)
