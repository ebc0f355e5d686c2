"""The group coordinator's state machine and error codes, on an event loop without a cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from kio.schema.errors import ErrorCode

from brokers import metadata
from brokers.coordinator.group import GroupState, JoinResult, Protocol
from brokers.coordinator.group_coordinator import (
    CommitRequest,
    GroupCoordinator,
    GroupSettings,
    JoinRequest,
    SyncRequest,
)
from brokers.coordinator.offsets_topic import java_string_hashcode, partition_for
from brokers.coordinator.records import OffsetRecord, PendingOffset
from brokers.coordinator.shards import Shard

RANGE = (Protocol("range", b"subscription"),)
SETTINGS = GroupSettings(
    min_session_timeout_ms=100,
    max_session_timeout_ms=60000,
    initial_rebalance_delay_ms=50,
    max_size=3,
)


class FakeStorage:
    """Stands in for the metadata DB: records what the coordinator stores."""

    def __init__(self) -> None:
        self.committed: list[OffsetRecord] = []
        self.commit_writes = 0
        self.fail = False
        self.pending: list[PendingOffset] = []

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        await asyncio.sleep(0)
        if self.fail:
            raise OSError("database is locked")
        if fn is metadata.store_groups:
            return set()
        if fn is metadata.commit_offsets:
            self.commit_writes += 1
            for commit in args[0]:
                self.committed += commit.offsets
            return [True for _ in args[0]]
        if fn in (metadata.load_groups, metadata.load_pending_txn_offsets):
            return []
        if fn is metadata.stage_txn_offsets:
            self.pending += args[1]
            return None
        if fn is metadata.complete_txn_offsets:
            _, producer_id, commit = args
            done = [p for p in self.pending if p.producer_id == producer_id]
            self.pending = [p for p in self.pending if p.producer_id != producer_id]
            return done if commit else []
        return None


def coordinator(storage: FakeStorage | None = None, loaded: bool = True) -> GroupCoordinator:
    c = GroupCoordinator(1, SETTINGS, storage or FakeStorage())
    c.partition_count = 1
    shard = Shard(0, 0)
    shard.loaded = loaded
    c.shards[0] = shard
    return c


def join(
    group: str = "g",
    member_id: str = "",
    *,
    instance: str | None = None,
    protocols: tuple[Protocol, ...] = RANGE,
    protocol_type: str = "consumer",
    session_ms: int = 1000,
) -> JoinRequest:
    return JoinRequest(
        group_id=group,
        member_id=member_id,
        group_instance_id=instance,
        protocol_type=protocol_type,
        protocols=protocols,
        session_timeout_ms=session_ms,
        rebalance_timeout_ms=1000,
        client_id="client",
        client_host="/127.0.0.1",
    )


async def full_join(c: GroupCoordinator, request: JoinRequest) -> JoinResult:
    first = await c.join_group(request)
    if first.error != ErrorCode.member_id_required:
        return first
    return await c.join_group(
        JoinRequest(**{**_fields(request), "member_id": first.member_id})  # type: ignore[arg-type]
    )


def _fields(request: JoinRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in request.__dataclass_fields__}


def sync(result: JoinResult, assignments: dict[str, bytes] | None = None) -> SyncRequest:
    return SyncRequest(
        group_id="g",
        generation_id=result.generation_id,
        member_id=result.member_id,
        group_instance_id=None,
        protocol_type="consumer",
        protocol_name=result.protocol_name,
        assignments=tuple((assignments or {}).items()),
    )


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


def test_java_hashcode_places_groups_as_kafka_does() -> None:
    assert java_string_hashcode("hello") == 99162322
    assert java_string_hashcode("") == 0
    # Integer.MIN_VALUE: Kafka's Utils.abs maps it to 0, not to a negative partition.
    assert java_string_hashcode("polygenelubricants") == -(2**31)
    assert partition_for("polygenelubricants", 50) == 0
    assert (
        partition_for("console-consumer-1", 50)
        == abs(java_string_hashcode("console-consumer-1")) % 50
    )


def test_first_join_gets_a_member_id_then_leader_assigns() -> None:
    async def scenario() -> None:
        c = coordinator()
        first = await c.join_group(join())
        assert first.error == ErrorCode.member_id_required
        assert first.member_id.startswith("client-")

        leader, follower = await asyncio.gather(full_join(c, join()), full_join(c, join()))
        assert leader.error == follower.error == ErrorCode.none
        assert leader.generation_id == follower.generation_id == 1
        if not leader.members:
            leader, follower = follower, leader
        assert leader.leader == leader.member_id
        assert {m[0] for m in leader.members} == {leader.member_id, follower.member_id}
        assert follower.members == ()

        assignments = {leader.member_id: b"A", follower.member_id: b"B"}
        got_leader, got_follower = await asyncio.gather(
            c.sync_group(sync(leader, assignments)), c.sync_group(sync(follower))
        )
        assert (got_leader.assignment, got_follower.assignment) == (b"A", b"B")
        assert c.groups["g"].state is GroupState.STABLE
        assert c.heartbeat("g", 1, follower.member_id, None) == ErrorCode.none
        assert c.heartbeat("g", 0, follower.member_id, None) == ErrorCode.illegal_generation
        assert c.heartbeat("g", 1, "nobody", None) == ErrorCode.unknown_member_id

    run(scenario)


def test_request_validation_errors() -> None:
    async def scenario() -> None:
        c = coordinator()
        assert (await c.join_group(join(group=""))).error == ErrorCode.invalid_group_id
        assert (await c.join_group(join(session_ms=10))).error == ErrorCode.invalid_session_timeout
        assert (await c.join_group(join(member_id="ghost"))).error == ErrorCode.unknown_member_id
        assert (await c.sync_group(sync(JoinResult(ErrorCode.none, "x", 1)))).error == (
            ErrorCode.unknown_member_id
        )
        assert c.heartbeat("", 0, "x", None) == ErrorCode.invalid_group_id
        assert c.leave_group("g", [("x", None)]) == (ErrorCode.none, [ErrorCode.unknown_member_id])

        member = await full_join(c, join())
        other = await c.join_group(join(protocols=(Protocol("roundrobin", b""),)))
        assert other.error == ErrorCode.inconsistent_group_protocol
        other = await c.join_group(join(protocol_type="connect"))
        assert other.error == ErrorCode.inconsistent_group_protocol
        assert member.error == ErrorCode.none

    run(scenario)


def test_group_max_size() -> None:
    async def scenario() -> None:
        c = coordinator()
        joined = await asyncio.gather(*(full_join(c, join()) for _ in range(3)))
        assert all(j.error == ErrorCode.none for j in joined)
        extra = await full_join(c, join())
        assert extra.error == ErrorCode.group_max_size_reached

    run(scenario)


def test_a_silent_member_expires_and_the_others_rebalance() -> None:
    async def scenario() -> None:
        c = coordinator()
        a, b = await asyncio.gather(full_join(c, join(session_ms=300)), full_join(c, join()))
        leader = a if a.members else b
        await asyncio.gather(c.sync_group(sync(a)), c.sync_group(sync(b)))
        survivor = b if leader is a else a
        silent = a if survivor is b else b
        # Only the survivor heartbeats; the silent member's session runs out.
        for _ in range(6):
            await asyncio.sleep(0.1)
            c.heartbeat("g", survivor.generation_id, survivor.member_id, None)
        assert c.heartbeat("g", 1, survivor.member_id, None) == ErrorCode.rebalance_in_progress
        assert silent.member_id not in c.groups["g"].members
        rejoined = await c.join_group(join(member_id=survivor.member_id))
        assert rejoined.generation_id == 2
        assert [m[0] for m in rejoined.members] == [survivor.member_id]

    run(scenario)


def test_static_member_returning_with_a_new_id_fences_the_old_one() -> None:
    async def scenario() -> None:
        c = coordinator()
        first = await c.join_group(join(instance="pod-1"))
        assert first.error == ErrorCode.none  # static members skip MEMBER_ID_REQUIRED
        await c.sync_group(
            SyncRequest("g", 1, first.member_id, "pod-1", None, None, ((first.member_id, b"P"),))
        )
        again = await c.join_group(join(instance="pod-1"))
        assert again.error == ErrorCode.none
        assert again.member_id != first.member_id
        assert again.generation_id == 1  # no rebalance
        assert c.heartbeat("g", 1, first.member_id, "pod-1") == ErrorCode.fenced_instance_id
        synced = await c.sync_group(SyncRequest("g", 1, again.member_id, "pod-1", None, None, ()))
        assert synced.assignment == b"P"

    run(scenario)


def test_offset_commit_rules() -> None:
    async def scenario() -> None:
        storage = FakeStorage()
        c = coordinator(storage)
        record = OffsetRecord("t", 0, 5, -1, "meta", 0)

        def commit(group: str, generation: int, member: str, v9: bool = False) -> CommitRequest:
            return CommitRequest(group, generation, member, None, (record,), v9)

        # assign() consumers (generation -1, no member) may commit while nobody is in the group.
        assert (await c.commit_offsets(commit("simple", -1, "")))[0] == ErrorCode.none
        assert c.fetch_offsets("simple", [("t", [0, 1])])[1][0].metadata == "meta"
        assert c.fetch_offsets("simple", [("t", [0, 1])])[1][1].offset == -1

        missing = await c.commit_offsets(commit("unknown", 3, "m"))
        assert missing[0] == ErrorCode.illegal_generation
        missing = await c.commit_offsets(commit("unknown", 3, "m", v9=True))
        assert missing[0] == ErrorCode.group_id_not_found

        member = await full_join(c, join())
        # Joined but not yet synced: the member must finish the rebalance first.
        assert (await c.commit_offsets(commit("g", 1, member.member_id)))[0] == (
            ErrorCode.rebalance_in_progress
        )
        await c.sync_group(sync(member))
        assert (await c.commit_offsets(commit("g", -1, "")))[0] == ErrorCode.unknown_member_id
        assert (await c.commit_offsets(commit("g", 7, member.member_id)))[0] == (
            ErrorCode.illegal_generation
        )
        assert (await c.commit_offsets(commit("g", 1, member.member_id)))[0] == ErrorCode.none
        too_big = CommitRequest(
            "g", 1, member.member_id, None, (OffsetRecord("t", 1, 1, -1, "x" * 5000, 0),)
        )
        assert (await c.commit_offsets(too_big))[1] == {
            ("t", 1): ErrorCode.offset_metadata_too_large
        }

        # A commit is acknowledged only once stored; a storage failure is retriable.
        storage.fail = True
        assert (await c.commit_offsets(commit("g", 1, member.member_id)))[0] == (
            ErrorCode.coordinator_not_available
        )

    run(scenario)


def test_groups_elsewhere_or_loading_are_refused() -> None:
    async def scenario() -> None:
        c = coordinator(loaded=False)
        assert (await c.join_group(join())).error == ErrorCode.coordinator_load_in_progress
        # A loading coordinator lets heartbeats through, like Kafka's.
        assert c.heartbeat("g", 1, "m", None) == ErrorCode.none
        c.shards.clear()
        assert (await c.join_group(join())).error == ErrorCode.not_coordinator
        assert c.fetch_offsets("g", None)[0] == ErrorCode.not_coordinator
        c.partition_count = None
        assert (await c.join_group(join())).error == ErrorCode.coordinator_not_available

    run(scenario)


def test_delete_groups_and_list_groups() -> None:
    async def scenario() -> None:
        c = coordinator()
        member = await full_join(c, join())
        await c.sync_group(sync(member))
        await c.commit_offsets(
            CommitRequest("idle", -1, "", None, (OffsetRecord("t", 0, 1, -1, "", 0),))
        )
        assert c.list_groups(("stable",))[1][0].group_id == "g"
        assert [g.group_id for g in c.list_groups(("Empty",))[1]] == ["idle"]
        assert c.list_groups((), ("consumer",))[1] == []
        results = await c.delete_groups(["g", "idle", "nope"])
        assert results == {
            "g": ErrorCode.non_empty_group,
            "idle": ErrorCode.none,
            "nope": ErrorCode.group_id_not_found,
        }
        assert c.describe_groups(["idle"])[0].state == "Dead"

    run(scenario)


class _Leader:
    is_leader = True
    leader_epoch = 0


class _Replicas:
    def partition(self, topic: str, index: int) -> _Leader:
        return _Leader()


class _Image:
    def __init__(self, *names: str) -> None:
        from brokers.coordinator.offsets_topic import OFFSETS_TOPIC

        offsets = type("Topic", (), {"partitions": (object(),)})()
        self.topics = {OFFSETS_TOPIC: offsets, **{n: object() for n in names}}


def test_offsets_of_deleted_topics_are_dropped() -> None:
    async def scenario() -> None:
        storage = FakeStorage()
        c = GroupCoordinator(1, SETTINGS, storage)
        c.on_metadata(_Image("kept", "gone"), _Replicas())  # type: ignore[arg-type]
        await asyncio.sleep(0.05)  # the offsets partition loads
        offsets = (OffsetRecord("kept", 0, 1, -1, "", 0), OffsetRecord("gone", 0, 2, -1, "", 0))
        assert (await c.commit_offsets(CommitRequest("g", -1, "", None, offsets)))[0] == (
            ErrorCode.none
        )
        c.on_metadata(_Image("kept"), _Replicas())  # type: ignore[arg-type]
        assert [(f.topic, f.offset) for f in c.fetch_offsets("g", None)[1]] == [("kept", 1)]

    run(scenario)


def test_concurrent_commits_share_database_writes() -> None:
    async def scenario() -> None:
        storage = FakeStorage()
        c = coordinator(storage)
        requests = [
            CommitRequest(f"g{i}", -1, "", None, (OffsetRecord("t", 0, i, -1, "", 0),))
            for i in range(20)
        ]
        results = await asyncio.gather(*(c.commit_offsets(r) for r in requests))
        assert all(error == ErrorCode.none for error, _ in results)
        assert len(storage.committed) == 20
        assert storage.commit_writes < 20
        assert c.fetch_offsets("g7", [("t", [0])])[1][0].offset == 7

    run(scenario)


def test_transactional_offsets_wait_for_their_marker() -> None:
    async def scenario() -> None:
        storage = FakeStorage()
        c = coordinator(storage)
        offsets = (OffsetRecord("t", 0, 5, -1, "", 0),)
        assert await c.txn_commit_offsets(CommitRequest("g", -1, "", None, offsets), 7) == (
            ErrorCode.none,
            {("t", 0): ErrorCode.none},
        )
        # Not committed yet; a stable-only fetch is told to retry.
        assert c.fetch_offsets("g", [("t", [0])])[1][0].offset == -1
        unstable = c.fetch_offsets("g", [("t", [0])], require_stable=True)[1][0]
        assert unstable.error == ErrorCode.unstable_offset_commit
        # Another producer's abort leaves them pending; this producer's commit makes them visible.
        await c.complete_transaction(0, 8, commit=False)
        assert c.fetch_offsets("g", [("t", [0])], require_stable=True)[1][0].error == (
            ErrorCode.unstable_offset_commit
        )
        await c.complete_transaction(0, 7, commit=True)
        fetched = c.fetch_offsets("g", [("t", [0])], require_stable=True)[1][0]
        assert (fetched.offset, fetched.error) == (5, ErrorCode.none)

        # An aborted transaction's offsets never show.
        later = (OffsetRecord("t", 0, 9, -1, "", 0),)
        await c.txn_commit_offsets(CommitRequest("g", -1, "", None, later), 7)
        await c.complete_transaction(0, 7, commit=False)
        assert c.fetch_offsets("g", [("t", [0])], require_stable=True)[1][0].offset == 5

    run(scenario)
