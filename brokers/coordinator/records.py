"""What the group coordinator keeps in the metadata DB: groups, their members, committed offsets.

The coordinator writes these through brokers.metadata, fenced by its leadership of the group's
`__consumer_offsets` partition, and reads them back when it becomes that partition's leader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CoordinatorFence:
    """A write is accepted only while `broker_id` leads the offsets partition at `leader_epoch`."""

    topic: str
    partition: int
    broker_id: int
    leader_epoch: int


@dataclass(frozen=True, slots=True)
class OffsetRecord:
    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int


@dataclass(frozen=True, slots=True)
class GroupCommit:
    """One OffsetCommit's offsets for one group, written under its coordinator's fence."""

    fence: CoordinatorFence
    group_id: str
    offsets: tuple[OffsetRecord, ...]


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """One member of the last stable generation: enough to restore it after a coordinator move.

    `metadata` is the member's subscription for the group's protocol and `assignment` what the
    leader gave it: opaque bytes, as in Kafka's GroupMetadata records.
    """

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupSnapshot:
    """The durable part of a group, written when a generation becomes stable or empty."""

    protocol_type: str
    protocol: str
    generation: int
    leader: str
    members: tuple[MemberRecord, ...]


@dataclass(frozen=True, slots=True)
class MemberView:
    """A member as the admin UI shows it; subscription and assignment decoded for "consumer"."""

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    subscription: tuple[str, ...] | None
    assignment: tuple[tuple[str, tuple[int, ...]], ...] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "group_instance_id": self.group_instance_id,
            "client_id": self.client_id,
            "client_host": self.client_host,
            "session_timeout_ms": self.session_timeout_ms,
            "rebalance_timeout_ms": self.rebalance_timeout_ms,
            "subscription": None if self.subscription is None else list(self.subscription),
            "assignment": None
            if self.assignment is None
            else [{"topic": t, "partitions": list(ps)} for t, ps in self.assignment],
        }


@dataclass(frozen=True, slots=True)
class GroupRow:
    """A ConsumerGroup row as the coordinator writes it.

    `members` is the display form (client id, host, decoded assignment) the admin UI shows;
    `snapshot`, when set, replaces the durable state a new coordinator restores from.
    """

    fence: CoordinatorFence
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    generation: int
    leader: str
    members: tuple[MemberView, ...]
    snapshot: GroupSnapshot | None = None
    event: str | None = None


@dataclass(frozen=True, slots=True)
class LoadedGroup:
    """A group read back by a new coordinator: its durable snapshot and committed offsets."""

    group_id: str
    snapshot: GroupSnapshot | None
    offsets: tuple[OffsetRecord, ...]


@dataclass(frozen=True, slots=True)
class PendingOffset:
    """An offset a transaction committed for a group, visible once the transaction commits."""

    group_id: str
    producer_id: int
    offset: OffsetRecord


@dataclass(frozen=True, slots=True)
class TxnRecord:
    """A transactional id's durable state (Kafka's TransactionMetadata as its log stores it)."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: str
    partitions: tuple[tuple[str, int], ...]
    started_ms: int
    updated_ms: int
