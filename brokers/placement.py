"""Replica placement for new topics and partitions, spread as Kafka spreads them.

Round-robin over the brokers with a rotating start, the followers shifted so that a broker's
followers are not always the same brokers (Kafka's assignReplicasToBrokers, without racks).
"""

from __future__ import annotations

import random
from collections.abc import Sequence


class PlacementError(ValueError):
    """More replicas were asked for than there are brokers."""


def assign_replicas(
    brokers: Sequence[int],
    partitions: int,
    replication_factor: int,
    *,
    first_partition: int = 0,
    start_index: int | None = None,
    shift: int | None = None,
    rng: random.Random | None = None,
) -> list[list[int]]:
    ordered = sorted(brokers)
    count = len(ordered)
    if replication_factor > count:
        raise PlacementError(
            f"Replication factor: {replication_factor} larger than available brokers: {count}."
        )
    if replication_factor <= 0:
        raise PlacementError("Replication factor must be larger than 0.")
    rng = rng or random.Random()
    start = rng.randrange(count) if start_index is None else start_index
    next_shift = (
        (rng.randrange(count) if start_index is None else start_index) if shift is None else shift
    )
    result = []
    for partition in range(first_partition, first_partition + partitions):
        if partition > 0 and partition % count == 0:
            next_shift += 1
        first = (start + partition) % count
        replicas = [ordered[first]]
        for j in range(replication_factor - 1):
            replicas.append(ordered[_replica_index(first, next_shift, j, count)])
        result.append(replicas)
    return result


def _replica_index(first: int, shift: int, j: int, count: int) -> int:
    return (first + 1 + (shift + j) % (count - 1)) % count if count > 1 else first
