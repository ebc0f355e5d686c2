"""The group coordinator: classic groups and committed offsets, as Kafka's GroupMetadataManager.

A broker coordinates the groups whose `__consumer_offsets` partition it leads. When it becomes
that partition's leader it loads the partition's groups and offsets from the metadata DB; when
it loses it, it drops them and answers NOT_COORDINATOR, so clients find the new coordinator.
All state lives on the broker's event loop. Writes go to the DB thread and are fenced by the
partition's leader epoch; a commit is answered only once it is durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from brokers import metadata
from brokers.background import spawn
from brokers.coordinator.consumer_protocol import (
    CONSUMER_PROTOCOL_TYPE,
    assigned_partitions,
    subscribed_topics,
)
from brokers.coordinator.group import (
    ClassicGroup,
    GroupError,
    GroupState,
    JoinResult,
    Member,
    Protocol,
    SyncResult,
)
from brokers.coordinator.offsets_topic import OFFSETS_TOPIC
from brokers.coordinator.records import (
    CoordinatorFence,
    GroupCommit,
    GroupRow,
    GroupSnapshot,
    LoadedGroup,
    MemberRecord,
    MemberView,
    OffsetRecord,
    PendingOffset,
)
from brokers.coordinator.shards import CoordinatorMoved, RunDb, Shard, ShardedCoordinator

if TYPE_CHECKING:
    from brokers.config import BrokerConfig
    from brokers.image import MetadataImage
    from brokers.replication.replica_manager import ReplicaManager

log = logging.getLogger(__name__)


PREPARING = GroupState.PREPARING_REBALANCE
COMPLETING = GroupState.COMPLETING_REBALANCE
STABLE = GroupState.STABLE
EMPTY = GroupState.EMPTY
DEAD = GroupState.DEAD
CLASSIC = "classic"
FLUSH_DELAY_S = 0.05


@dataclass(frozen=True, slots=True)
class GroupSettings:
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1800000
    initial_rebalance_delay_ms: int = 3000
    max_size: int = 2**31 - 1
    # How long a JoinGroup of a member without a member id may stay parked (Kafka's 5 minutes).
    new_member_join_timeout_ms: int = 300000
    offset_metadata_max_bytes: int = 4096
    offsets_retention_ms: int = 7 * 24 * 3600 * 1000
    retention_check_interval_ms: int = 600000

    @classmethod
    def from_config(cls, config: BrokerConfig) -> GroupSettings:
        return cls(
            min_session_timeout_ms=config.int("group.min.session.timeout.ms"),
            max_session_timeout_ms=config.int("group.max.session.timeout.ms"),
            initial_rebalance_delay_ms=config.int("group.initial.rebalance.delay.ms"),
            max_size=config.int("group.max.size"),
            offset_metadata_max_bytes=config.int("offset.metadata.max.bytes"),
            offsets_retention_ms=config.int("offsets.retention.minutes") * 60000,
            retention_check_interval_ms=config.int("offsets.retention.check.interval.ms"),
        )


@dataclass(frozen=True, slots=True)
class JoinRequest:
    group_id: str
    member_id: str
    group_instance_id: str | None
    protocol_type: str
    protocols: tuple[Protocol, ...]
    session_timeout_ms: int
    rebalance_timeout_ms: int
    client_id: str
    client_host: str
    # KIP-394 (JoinGroup v4+): a first join gets MEMBER_ID_REQUIRED and a member id to rejoin with.
    require_known_member_id: bool = True
    # KIP-814 (JoinGroup v9+): a static leader rejoining a stable group keeps its assignment.
    supports_skip_assignment: bool = False
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class SyncRequest:
    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None
    protocol_type: str | None
    protocol_name: str | None
    assignments: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class CommitRequest:
    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None
    offsets: tuple[OffsetRecord, ...]
    # OffsetCommit v9+ answers GROUP_ID_NOT_FOUND where older versions got ILLEGAL_GENERATION.
    group_id_not_found_error: bool = False


@dataclass(frozen=True, slots=True)
class FetchedOffset:
    topic: str
    partition: int
    offset: int
    leader_epoch: int
    metadata: str
    error: ErrorCode = ErrorCode.none


@dataclass(frozen=True, slots=True)
class DescribedMember:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupDescription:
    group_id: str
    error: ErrorCode
    state: str = ""
    protocol_type: str = ""
    protocol: str = ""
    members: tuple[DescribedMember, ...] = ()


@dataclass(frozen=True, slots=True)
class ListedGroup:
    group_id: str
    protocol_type: str
    state: str
    group_type: str = CLASSIC


class _CommitWriter:
    """Group commit: OffsetCommits arriving while a write is in flight share the next one.

    Each caller still waits for its own offsets to be durable before it is answered.
    """

    def __init__(self, run_db: RunDb) -> None:
        self._db = run_db
        self._queue: list[tuple[GroupCommit, asyncio.Future[bool]]] = []
        self._writing = False

    async def write(self, commit: GroupCommit) -> bool:
        """True once stored; False if the coordinator was fenced."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((commit, future))
        if not self._writing:
            self._writing = True
            spawn(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    stored: list[bool] = await self._db(
                        metadata.commit_offsets, [commit for commit, _ in batch]
                    )
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, future), ok in zip(batch, stored, strict=True):
                    if not future.done():
                        future.set_result(ok)
        finally:
            self._writing = False


def _storage_error(exc: BaseException) -> ErrorCode:
    if isinstance(exc, metadata.NotCoordinator | CoordinatorMoved):
        return ErrorCode.not_coordinator
    # The DB was unreachable or busy: retriable for the client, as Kafka's storage errors are.
    return ErrorCode.coordinator_not_available


class GroupCoordinator(ShardedCoordinator):
    def __init__(
        self,
        node_id: int,
        settings: GroupSettings,
        run_db: RunDb,
        on_fenced: Callable[[], object] = lambda: None,
    ) -> None:
        super().__init__(node_id, run_db, on_fenced)
        self.settings = settings
        self._commits = _CommitWriter(run_db)
        self.groups: dict[str, ClassicGroup] = {}
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._dirty: dict[str, ClassicGroup] = {}
        self._flush_handle: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._topics: set[str] | None = None
        # TxnOffsetCommit offsets waiting for their transaction's marker:
        # group id -> producer id -> (topic, partition) -> offset.
        self.pending_txn: dict[str, dict[int, dict[tuple[str, int], OffsetRecord]]] = {}

    # Lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks.append(spawn(self._expire_offsets_forever()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        await self._flush()
        for index in list(self.shards):
            self._unload(index)

    # Ownership: which offsets partitions this broker leads --------------------------------------

    def on_metadata(self, image: MetadataImage, replicas: ReplicaManager) -> None:
        """Load the groups of offsets partitions this broker now leads; drop those it lost."""
        topics = set(image.topics)
        if self._topics is not None and self._topics - topics:
            self._forget_topics(self._topics - topics)
        self._topics = topics
        self._reshard(image, replicas)

    def _fence(self, group: ClassicGroup) -> CoordinatorFence:
        return self._fence_of(group.partition, group.group_id)

    def _owns(self, group: ClassicGroup) -> bool:
        return self.groups.get(group.group_id) is group

    async def _load(self, shard: Shard) -> None:
        started = time.monotonic()

        async def read(fence: CoordinatorFence) -> tuple[list[LoadedGroup], list[PendingOffset]]:
            groups = await self._db(metadata.load_groups, fence, self.partition_of)
            return groups, await self._db(metadata.load_pending_txn_offsets, fence)

        state = await self._read_shard(shard, read, "groups")
        if state is None:
            return
        loaded, pending = state
        for record in loaded:
            group = self._restore(record, shard.partition)
            self._mark_dirty(group)
        for p in pending:
            self._stage(p)
        shard.loaded = True
        if self._topics is not None:
            committed = {t for r in loaded for t, _ in self.groups[r.group_id].offsets}
            if committed - self._topics:
                self._forget_topics(committed - self._topics)
        log.info(
            "broker %s coordinates %s-%s (epoch %s): %d groups loaded in %.2f s",
            self.node_id,
            OFFSETS_TOPIC,
            shard.partition,
            shard.epoch,
            len(loaded),
            time.monotonic() - started,
        )

    def _restore(self, record: LoadedGroup, partition: int) -> ClassicGroup:
        group = ClassicGroup(record.group_id, partition)
        snapshot = record.snapshot
        if snapshot is not None:
            group.generation_id = snapshot.generation
            group.protocol_type = snapshot.protocol_type or None
            group.protocol_name = snapshot.protocol or None
            for m in snapshot.members:
                group.add(
                    Member(
                        m.member_id,
                        m.group_instance_id,
                        m.client_id,
                        m.client_host,
                        m.rebalance_timeout_ms,
                        m.session_timeout_ms,
                        snapshot.protocol_type,
                        (Protocol(snapshot.protocol, m.metadata),),
                        m.assignment,
                    )
                )
            if snapshot.leader in group.members:
                group.leader_id = snapshot.leader
            if group.members:
                group.state = STABLE
            group.subscribed_topics = group.compute_subscribed_topics()
        group.offsets = {(o.topic, o.partition): o for o in record.offsets}
        self.groups[group.group_id] = group
        for member in group.members.values():
            self._schedule_heartbeat(group, member.member_id, member.session_timeout_ms)
        return group

    def _unload(self, index: int) -> None:
        self.shards.pop(index, None)
        if self.partition_count is None:
            self.pending_txn.clear()
        for group_id in [g for g in self.pending_txn if self.partition_of(g) == index]:
            del self.pending_txn[group_id]
        for group in [g for g in self.groups.values() if g.partition == index]:
            self._drop(group, ErrorCode.not_coordinator)
        log.info("broker %s no longer coordinates %s-%s", self.node_id, OFFSETS_TOPIC, index)

    def _drop(self, group: ClassicGroup, error: ErrorCode) -> None:
        """Forget a group here (moved away or deleted); parked requests get `error`."""
        self.groups.pop(group.group_id, None)
        self._dirty.pop(group.group_id, None)
        group.cancel_timers()
        for member_id in [*group.members, *group.pending_join_members]:
            self._cancel_heartbeat(group, member_id)
        for member in group.members.values():
            member.complete_join(JoinResult(error, member.member_id))
            member.complete_sync(SyncResult(error))
        group.transition_to(DEAD)

    # Timers -------------------------------------------------------------------------------------

    def _call_later(self, delay_ms: int, action: Callable[[], None]) -> asyncio.TimerHandle:
        def run() -> None:
            try:
                action()
            except Exception:
                log.exception("group coordinator timer failed")

        return asyncio.get_running_loop().call_later(max(delay_ms, 0) / 1000, run)

    def _schedule_heartbeat(self, group: ClassicGroup, member_id: str, timeout_ms: int) -> None:
        key = (group.group_id, member_id)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._timers[key] = self._call_later(
            timeout_ms, lambda: self._expire_heartbeat(group, member_id)
        )

    def _cancel_heartbeat(self, group: ClassicGroup, member_id: str) -> None:
        timer = self._timers.pop((group.group_id, member_id), None)
        if timer is not None:
            timer.cancel()

    def _schedule_join(
        self, group: ClassicGroup, delay_ms: int, action: Callable[[], None]
    ) -> None:
        if group.join_timer is not None:
            group.join_timer.cancel()
        group.join_timer = self._call_later(delay_ms, action)

    # JoinGroup ----------------------------------------------------------------------------------

    async def join_group(self, request: JoinRequest) -> JoinResult:
        if not request.group_id:
            return JoinResult(ErrorCode.invalid_group_id, request.member_id)
        if not (
            self.settings.min_session_timeout_ms
            <= request.session_timeout_ms
            <= self.settings.max_session_timeout_ms
        ):
            return JoinResult(ErrorCode.invalid_session_timeout, request.member_id)
        status = self._status(request.group_id)
        if status != ErrorCode.none:
            return JoinResult(status, request.member_id)
        future: asyncio.Future[JoinResult] = asyncio.get_running_loop().create_future()
        self._join(request, future)
        return await future

    def _join(self, request: JoinRequest, future: asyncio.Future[JoinResult]) -> None:
        group = self.groups.get(request.group_id)
        unknown = request.member_id == ""
        if group is None:
            if not unknown:
                future.set_result(JoinResult(ErrorCode.unknown_member_id, request.member_id))
                return
            group = ClassicGroup(request.group_id, self.partition_of(request.group_id))
            self.groups[group.group_id] = group
        if not self._accept_joining_member(group, request.member_id):
            if group.has_member(request.member_id):
                member = group.members[request.member_id]
                self._cancel_heartbeat(group, member.member_id)
                group.remove(member.member_id)
            future.set_result(JoinResult(ErrorCode.group_max_size_reached, ""))
        elif unknown:
            self._join_new_member(group, request, future)
        else:
            self._join_existing_member(group, request, future)

    def _accept_joining_member(self, group: ClassicGroup, member_id: str) -> bool:
        limit = self.settings.max_size
        if group.is_in(EMPTY, DEAD):
            return True
        if group.is_in(PREPARING):
            member = group.members.get(member_id)
            return (member is not None and member.awaiting_join) or (
                group.awaiting_join_count < limit
            )
        return group.has_member(member_id) or len(group.members) < limit

    def _join_new_member(
        self, group: ClassicGroup, request: JoinRequest, future: asyncio.Future[JoinResult]
    ) -> None:
        if group.is_in(DEAD):
            future.set_result(JoinResult(ErrorCode.coordinator_not_available, ""))
            return
        if not group.supports_protocols(request.protocol_type, {p.name for p in request.protocols}):
            future.set_result(JoinResult(ErrorCode.inconsistent_group_protocol, ""))
            return
        member_id = group.generate_member_id(request.client_id, request.group_instance_id)
        instance_id = request.group_instance_id
        if instance_id is not None:
            existing = group.static_members.get(instance_id)
            if existing is not None:
                log.info(
                    "group %s: static member %s rejoins as %s (was %s)",
                    group.group_id,
                    instance_id,
                    member_id,
                    existing,
                )
                self._replace_static_member(group, request, existing, member_id, future)
            else:
                self._add_member_and_rebalance(group, request, member_id, future)
        elif request.require_known_member_id:
            group.pending_join_members.add(member_id)
            self._schedule_heartbeat(group, member_id, request.session_timeout_ms)
            future.set_result(JoinResult(ErrorCode.member_id_required, member_id))
        else:
            self._add_member_and_rebalance(group, request, member_id, future)

    def _join_existing_member(
        self, group: ClassicGroup, request: JoinRequest, future: asyncio.Future[JoinResult]
    ) -> None:
        member_id = request.member_id
        if group.is_in(DEAD):
            future.set_result(JoinResult(ErrorCode.coordinator_not_available, member_id))
            return
        if not group.supports_protocols(request.protocol_type, {p.name for p in request.protocols}):
            future.set_result(JoinResult(ErrorCode.inconsistent_group_protocol, member_id))
            return
        if group.is_pending(member_id):
            if request.group_instance_id is not None:
                # A pending member never has an instance id: the client is confused.
                future.set_result(JoinResult(ErrorCode.unknown_member_id, member_id))
                return
            self._add_member_and_rebalance(group, request, member_id, future)
            return
        try:
            member = group.validate_member(member_id, request.group_instance_id)
        except GroupError as exc:
            future.set_result(JoinResult(exc.code, member_id))
            return
        reason = f"member {member_id} rejoins ({request.reason or 'no reason given'})"
        if group.is_in(PREPARING):
            self._update_member_and_rebalance(group, member, request, future, reason)
        elif group.is_in(COMPLETING):
            if member.matches(request.protocols):
                # It may have missed its JoinGroup response: answer it again.
                future.set_result(
                    group.join_result(member_id, with_members=group.is_leader(member_id))
                )
            else:
                self._update_member_and_rebalance(group, member, request, future, reason)
        elif group.is_in(STABLE):
            if group.is_leader(member_id) or not member.matches(request.protocols):
                # A leader rejoins to trigger a rebalance (e.g. the topics' partitions changed).
                self._update_member_and_rebalance(group, member, request, future, reason)
            else:
                future.set_result(group.join_result(member_id, with_members=False))
        else:
            future.set_result(JoinResult(ErrorCode.unknown_member_id, member_id))

    def _add_member_and_rebalance(
        self,
        group: ClassicGroup,
        request: JoinRequest,
        member_id: str,
        future: asyncio.Future[JoinResult],
    ) -> None:
        member = Member(
            member_id,
            request.group_instance_id,
            request.client_id,
            request.client_host,
            request.rebalance_timeout_ms,
            request.session_timeout_ms,
            request.protocol_type,
            request.protocols,
        )
        member.is_new = True
        if group.is_in(PREPARING) and group.previous_state is EMPTY:
            group.new_member_added = True
        group.add(member, future)
        # A parked new member cannot heartbeat; its JoinGroup expires after a while instead.
        self._schedule_heartbeat(group, member_id, self.settings.new_member_join_timeout_ms)
        self._maybe_prepare_rebalance_or_complete_join(group, f"new member {member_id} joins")

    def _update_member_and_rebalance(
        self,
        group: ClassicGroup,
        member: Member,
        request: JoinRequest,
        future: asyncio.Future[JoinResult],
        reason: str,
    ) -> None:
        # A JoinGroup sent again while the first is parked: answer the first so nothing waits
        # behind it on its connection.
        member.complete_join(JoinResult(ErrorCode.rebalance_in_progress, member.member_id))
        group.update_member(
            member,
            request.protocols,
            request.rebalance_timeout_ms,
            request.session_timeout_ms,
            future,
        )
        self._maybe_prepare_rebalance_or_complete_join(group, reason)

    def _replace_static_member(
        self,
        group: ClassicGroup,
        request: JoinRequest,
        old_id: str,
        new_id: str,
        future: asyncio.Future[JoinResult],
    ) -> None:
        assert request.group_instance_id is not None
        current_leader = group.leader_id
        self._cancel_heartbeat(group, old_id)
        member = group.replace_static_member(request.group_instance_id, old_id, new_id)
        self._schedule_heartbeat(group, new_id, member.session_timeout_ms)
        previous = (member.protocols, member.rebalance_timeout_ms, member.session_timeout_ms)
        group.update_member(
            member,
            request.protocols,
            request.rebalance_timeout_ms,
            request.session_timeout_ms,
            future,
        )
        reason = f"static member {request.group_instance_id} rejoins"
        if group.is_in(STABLE):
            if group.protocol_name == group.select_protocol():
                # Same protocol: no rebalance, the member takes over its predecessor's assignment.
                spawn(
                    self._store_static_replacement(
                        group, member, old_id, current_leader, previous, request
                    )
                )
            else:
                self._maybe_prepare_rebalance_or_complete_join(group, reason)
        elif group.is_in(COMPLETING):
            # The leader may be assigning to the old member id: start over.
            self._prepare_rebalance(group, reason)
        else:
            self._maybe_complete_join_phase(group)

    async def _store_static_replacement(
        self,
        group: ClassicGroup,
        member: Member,
        old_id: str,
        current_leader: str | None,
        previous: tuple[tuple[Protocol, ...], int, int],
        request: JoinRequest,
    ) -> None:
        new_id = member.member_id
        try:
            await self._store(group, group.state, self._snapshot(group, None))
        except Exception as exc:
            if not self._owns(group) or new_id not in group.members:
                return
            log.warning(
                "group %s: could not store static member %s: %s", group.group_id, new_id, exc
            )
            # Put the previous member back; the joiner learns why it was refused.
            future, member.join_future = member.join_future, None
            group.update_member(member, *previous, None)
            assert member.group_instance_id is not None
            restored = group.replace_static_member(member.group_instance_id, new_id, old_id)
            self._cancel_heartbeat(group, new_id)
            self._schedule_heartbeat(group, old_id, restored.session_timeout_ms)
            if future is not None and not future.done():
                future.set_result(JoinResult(_storage_error(exc), ""))
            return
        if not self._owns(group):
            return
        if request.supports_skip_assignment:
            is_leader = group.is_leader(new_id)
            result = JoinResult(
                ErrorCode.none,
                new_id,
                generation_id=group.generation_id,
                protocol_type=group.protocol_type,
                protocol_name=group.protocol_name,
                leader=group.leader_id or "",
                members=group.leader_view() if is_leader else (),
                skip_assignment=is_leader,
            )
        else:
            # Older clients are told the old leader id, so even a returning leader only syncs
            # and gets its stored assignment back.
            result = JoinResult(
                ErrorCode.none,
                new_id,
                generation_id=group.generation_id,
                protocol_type=group.protocol_type,
                protocol_name=group.protocol_name,
                leader=current_leader or "",
            )
        member.complete_join(result)

    # The rebalance state machine ----------------------------------------------------------------

    def _maybe_prepare_rebalance_or_complete_join(self, group: ClassicGroup, reason: str) -> None:
        if group.can_rebalance():
            self._prepare_rebalance(group, reason)
        else:
            self._maybe_complete_join_phase(group)

    def _prepare_rebalance(self, group: ClassicGroup, reason: str) -> None:
        if group.is_in(COMPLETING):
            self._reset_and_propagate_assignment_error(group, ErrorCode.rebalance_in_progress)
        self._remove_sync_expiration(group)
        initial = group.is_empty
        if initial:
            # A new group waits a little for more members, so it does not rebalance per joiner.
            delay = self.settings.initial_rebalance_delay_ms
            remaining = max(group.rebalance_timeout_ms() - delay, 0)
            self._schedule_join(
                group, delay, lambda: self._try_complete_initial_rebalance(group, delay, remaining)
            )
        group.transition_to(PREPARING)
        log.info(
            "group %s: preparing to rebalance from generation %s (%s)",
            group.group_id,
            group.generation_id,
            reason,
        )
        self._mark_dirty(group)
        if not initial:
            self._maybe_complete_join_else_schedule(group)

    def _maybe_complete_join_else_schedule(self, group: ClassicGroup) -> None:
        if group.has_all_members_joined():
            self._complete_join(group)
        else:
            self._schedule_join(
                group, group.rebalance_timeout_ms(), lambda: self._complete_join_if_owned(group)
            )

    def _try_complete_initial_rebalance(
        self, group: ClassicGroup, delay_ms: int, remaining_ms: int
    ) -> None:
        if not self._owns(group):
            return
        if group.new_member_added and remaining_ms != 0:
            group.new_member_added = False
            new_delay = min(self.settings.initial_rebalance_delay_ms, remaining_ms)
            new_remaining = max(remaining_ms - delay_ms, 0)
            self._schedule_join(
                group,
                new_delay,
                lambda: self._try_complete_initial_rebalance(group, new_delay, new_remaining),
            )
        else:
            self._complete_join(group)

    def _maybe_complete_join_phase(self, group: ClassicGroup) -> None:
        if (
            group.is_in(PREPARING)
            and group.previous_state is not EMPTY
            and group.has_all_members_joined()
        ):
            self._complete_join(group)

    def _complete_join_if_owned(self, group: ClassicGroup) -> None:
        if self._owns(group):
            self._complete_join(group)

    def _complete_join(self, group: ClassicGroup) -> None:
        if group.join_timer is not None:
            group.join_timer.cancel()
            group.join_timer = None
        gone = [m for m in group.not_yet_rejoined() if m.group_instance_id is None]
        for member in gone:
            self._cancel_heartbeat(group, member.member_id)
            group.remove(member.member_id)
        if gone:
            log.info(
                "group %s: removed members that did not rejoin: %s",
                group.group_id,
                [m.member_id for m in gone],
            )
        if group.is_in(DEAD):
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Nobody rejoined; wait for session timeouts to clear the members out.
            self._schedule_join(
                group, group.rebalance_timeout_ms(), lambda: self._complete_join_if_owned(group)
            )
            return
        group.init_next_generation()
        if group.is_empty:
            log.info("group %s is empty at generation %s", group.group_id, group.generation_id)
            spawn(
                self._store_quietly(
                    group, f"group {group.group_id} is empty (generation {group.generation_id})"
                )
            )
            return
        log.info(
            "group %s: generation %s with %d members, protocol %s",
            group.group_id,
            group.generation_id,
            len(group.members),
            group.protocol_name,
        )
        for member in group.members.values():
            member.complete_join(
                group.join_result(member.member_id, with_members=group.is_leader(member.member_id))
            )
            self._schedule_heartbeat(group, member.member_id, member.session_timeout_ms)
            member.is_new = False
            group.pending_sync_members.add(member.member_id)
        generation = group.generation_id
        if group.sync_timer is not None:
            group.sync_timer.cancel()
        group.sync_timer = self._call_later(
            group.rebalance_timeout_ms(), lambda: self._expire_pending_sync(group, generation)
        )
        self._mark_dirty(group)

    def _expire_pending_sync(self, group: ClassicGroup, generation: int) -> None:
        if not self._owns(group) or generation != group.generation_id:
            return
        if group.is_in(COMPLETING, STABLE) and group.pending_sync_members:
            missing = sorted(group.pending_sync_members)
            for member_id in missing:
                self._cancel_heartbeat(group, member_id)
                group.remove(member_id)
            self._prepare_rebalance(group, f"members {missing} did not send SyncGroup in time")

    def _remove_sync_expiration(self, group: ClassicGroup) -> None:
        group.pending_sync_members.clear()
        if group.sync_timer is not None:
            group.sync_timer.cancel()
            group.sync_timer = None

    def _remove_pending_sync_member(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if (
            group.is_in(DEAD, EMPTY, PREPARING) or not group.pending_sync_members
        ) and group.sync_timer is not None:
            group.sync_timer.cancel()
            group.sync_timer = None

    def _reset_and_propagate_assignment_error(self, group: ClassicGroup, error: ErrorCode) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error)

    def _propagate_assignment(self, group: ClassicGroup, error: ErrorCode) -> None:
        ok = error == ErrorCode.none
        for member in group.members.values():
            result = SyncResult(
                error,
                group.protocol_type if ok else None,
                group.protocol_name if ok else None,
                member.assignment,
            )
            if member.complete_sync(result):
                self._schedule_heartbeat(group, member.member_id, member.session_timeout_ms)

    def _expire_heartbeat(self, group: ClassicGroup, member_id: str) -> None:
        self._timers.pop((group.group_id, member_id), None)
        if not self._owns(group) or group.is_in(DEAD):
            return
        if group.is_pending(member_id):
            log.info("group %s: pending member %s expired", group.group_id, member_id)
            group.remove(member_id)
            if group.is_in(PREPARING) and group.has_all_members_joined():
                self._complete_join(group)
            return
        member = group.members.get(member_id)
        if member is None or member.has_satisfied_heartbeat():
            return
        log.info("group %s: member %s timed out", group.group_id, member_id)
        self._remove_member(group, member, f"member {member_id} timed out")

    def _remove_member(self, group: ClassicGroup, member: Member, reason: str) -> None:
        member.complete_join(JoinResult(ErrorCode.unknown_member_id, ""))
        self._cancel_heartbeat(group, member.member_id)
        group.remove(member.member_id)
        if group.is_in(STABLE, COMPLETING):
            self._maybe_prepare_rebalance_or_complete_join(group, reason)
        elif group.is_in(PREPARING) and group.has_all_members_joined():
            self._complete_join(group)

    # SyncGroup ----------------------------------------------------------------------------------

    async def sync_group(self, request: SyncRequest) -> SyncResult:
        if not request.group_id:
            return SyncResult(ErrorCode.invalid_group_id)
        status = self._status(request.group_id)
        if status != ErrorCode.none:
            return SyncResult(status)
        group = self.groups.get(request.group_id)
        if group is None or group.is_empty:
            return SyncResult(ErrorCode.unknown_member_id)
        if group.is_in(DEAD):
            return SyncResult(ErrorCode.coordinator_not_available)
        try:
            member = group.validate_member(request.member_id, request.group_instance_id)
        except GroupError as exc:
            return SyncResult(exc.code)
        if request.generation_id != group.generation_id:
            return SyncResult(ErrorCode.illegal_generation)
        if _inconsistent(request.protocol_type, group.protocol_type) or _inconsistent(
            request.protocol_name, group.protocol_name
        ):
            return SyncResult(ErrorCode.inconsistent_group_protocol)
        if group.is_in(PREPARING):
            return SyncResult(ErrorCode.rebalance_in_progress)
        if group.is_in(STABLE):
            self._remove_pending_sync_member(group, member.member_id)
            return SyncResult(
                ErrorCode.none, group.protocol_type, group.protocol_name, member.assignment
            )
        # CompletingRebalance: park until the leader's assignment is stored.
        future: asyncio.Future[SyncResult] = asyncio.get_running_loop().create_future()
        member.complete_sync(SyncResult(ErrorCode.rebalance_in_progress))
        member.sync_future = future
        self._remove_pending_sync_member(group, member.member_id)
        if group.is_leader(member.member_id):
            given = dict(request.assignments)
            assignment = {m: given.get(m, b"") for m in group.members}
            log.info(
                "group %s: assignment for generation %s received from leader %s",
                group.group_id,
                group.generation_id,
                member.member_id,
            )
            spawn(self._complete_sync(group, group.generation_id, assignment))
        return await future

    async def _complete_sync(
        self, group: ClassicGroup, generation: int, assignment: dict[str, bytes]
    ) -> None:
        error = ErrorCode.none
        try:
            await self._store(
                group,
                STABLE,
                self._snapshot(group, assignment),
                assignment=assignment,
                event=f"group {group.group_id}: generation {generation} is stable with "
                f"{len(assignment)} members ({group.protocol_name})",
            )
        except Exception as exc:
            error = _storage_error(exc)
            log.warning(
                "group %s: could not store generation %s: %s", group.group_id, generation, exc
            )
        if not (
            self._owns(group) and group.is_in(COMPLETING) and group.generation_id == generation
        ):
            return
        if error != ErrorCode.none:
            self._reset_and_propagate_assignment_error(group, error)
            self._maybe_prepare_rebalance_or_complete_join(
                group, f"storing failed with {error.name}"
            )
            return
        for member in group.members.values():
            member.assignment = assignment.get(member.member_id, b"")
        self._propagate_assignment(group, ErrorCode.none)
        group.transition_to(STABLE)
        self._mark_dirty(group)

    # Heartbeat and LeaveGroup -------------------------------------------------------------------

    def heartbeat(
        self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None
    ) -> ErrorCode:
        if not group_id:
            return ErrorCode.invalid_group_id
        status = self._status(group_id)
        if status == ErrorCode.coordinator_load_in_progress:
            # Like Kafka: a loading coordinator lets heartbeats pass rather than break sessions.
            return ErrorCode.none
        if status != ErrorCode.none:
            return status
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.unknown_member_id
        if group.is_in(DEAD):
            return ErrorCode.coordinator_not_available
        try:
            member = group.validate_member(member_id, group_instance_id)
        except GroupError as exc:
            return exc.code
        if generation_id != group.generation_id:
            return ErrorCode.illegal_generation
        if group.is_empty:
            return ErrorCode.unknown_member_id
        self._schedule_heartbeat(group, member.member_id, member.session_timeout_ms)
        if group.is_in(PREPARING):
            return ErrorCode.rebalance_in_progress
        return ErrorCode.none

    def leave_group(
        self, group_id: str, members: Sequence[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[ErrorCode]]:
        """Remove members (a member id, or only an instance id for an admin's removal)."""
        if not group_id:
            return ErrorCode.invalid_group_id, []
        status = self._status(group_id)
        if status != ErrorCode.none:
            return status, []
        group = self.groups.get(group_id)
        if group is None:
            return ErrorCode.none, [ErrorCode.unknown_member_id for _ in members]
        if group.is_in(DEAD):
            return ErrorCode.coordinator_not_available, []
        results: list[ErrorCode] = []
        for member_id, instance_id in members:
            if member_id == "":
                static_id = None if instance_id is None else group.static_members.get(instance_id)
                if static_id is None:
                    results.append(ErrorCode.unknown_member_id)
                    continue
                self._remove_leaving(group, static_id)
            elif group.is_pending(member_id):
                self._cancel_heartbeat(group, member_id)
                group.remove(member_id)
            else:
                try:
                    group.validate_member(member_id, instance_id)
                except GroupError as exc:
                    results.append(exc.code)
                    continue
                self._remove_leaving(group, member_id)
            results.append(ErrorCode.none)
        if ErrorCode.none in results:
            if group.is_in(STABLE, COMPLETING):
                self._maybe_prepare_rebalance_or_complete_join(group, "members left the group")
            elif group.is_in(PREPARING):
                self._maybe_complete_join_phase(group)
        return ErrorCode.none, results

    def _remove_leaving(self, group: ClassicGroup, member_id: str) -> None:
        member = group.members[member_id]
        log.info("group %s: member %s leaves", group.group_id, member_id)
        self._cancel_heartbeat(group, member_id)
        member.complete_join(JoinResult(ErrorCode.unknown_member_id, ""))
        group.remove(member_id)

    # Offsets ------------------------------------------------------------------------------------

    async def commit_offsets(
        self, request: CommitRequest
    ) -> tuple[ErrorCode, dict[tuple[str, int], ErrorCode]]:
        """(group-level error, per-partition errors); a group-level error applies to all."""
        status = self._status(request.group_id)
        if status != ErrorCode.none:
            return status, {}
        group = self.groups.get(request.group_id)
        if group is None:
            if request.generation_id >= 0:
                return (
                    ErrorCode.group_id_not_found
                    if request.group_id_not_found_error
                    else ErrorCode.illegal_generation
                ), {}
            # A consumer using assign() (or an admin client): a group without members.
            group = ClassicGroup(request.group_id, self.partition_of(request.group_id))
            self.groups[group.group_id] = group
        try:
            self._validate_commit(group, request)
        except GroupError as exc:
            return exc.code, {}
        if group.is_in(STABLE, PREPARING):
            member = group.members.get(request.member_id)
            if member is not None:
                self._schedule_heartbeat(group, member.member_id, member.session_timeout_ms)
        errors, accepted = self._sized(request.offsets)
        if accepted:
            try:
                stored = await self._commits.write(
                    GroupCommit(self._fence(group), group.group_id, tuple(accepted))
                )
            except Exception as exc:
                log.warning("group %s: commit failed: %s", group.group_id, exc)
                return _storage_error(exc), {}
            if not stored:
                self._fenced_out(group.partition)
                return ErrorCode.not_coordinator, {}
            for record in accepted:
                group.offsets[(record.topic, record.partition)] = record
        return ErrorCode.none, errors

    def _sized(
        self, offsets: Sequence[OffsetRecord]
    ) -> tuple[dict[tuple[str, int], ErrorCode], list[OffsetRecord]]:
        """Each offset's error (metadata over offset.metadata.max.bytes) and those accepted."""
        errors: dict[tuple[str, int], ErrorCode] = {}
        accepted = []
        for record in offsets:
            key = (record.topic, record.partition)
            if len(record.metadata.encode()) > self.settings.offset_metadata_max_bytes:
                errors[key] = ErrorCode.offset_metadata_too_large
            else:
                errors[key] = ErrorCode.none
                accepted.append(record)
        return errors, accepted

    def _validate_commit(self, group: ClassicGroup, request: CommitRequest) -> None:
        if group.is_in(DEAD):
            raise GroupError(ErrorCode.coordinator_not_available)
        if request.generation_id < 0 and group.is_empty:
            return
        if request.generation_id >= 0 or request.member_id or request.group_instance_id:
            group.validate_member(request.member_id, request.group_instance_id)
            if request.generation_id != group.generation_id:
                raise GroupError(ErrorCode.illegal_generation)
        elif not group.is_empty:
            # A commit without member and generation is only for groups nobody consumes in.
            raise GroupError(ErrorCode.unknown_member_id)
        if group.is_in(COMPLETING):
            raise GroupError(ErrorCode.rebalance_in_progress)

    def fetch_offsets(
        self,
        group_id: str,
        topics: Sequence[tuple[str, Sequence[int]]] | None,
        require_stable: bool = False,
    ) -> tuple[ErrorCode, list[FetchedOffset]]:
        """Committed offsets, -1 where none; `topics` None means every committed partition.

        With `require_stable` (KIP-447), a partition with an offset an open transaction
        committed answers UNSTABLE_OFFSET_COMMIT until that transaction ends.
        """
        status = self._status(group_id)
        if status != ErrorCode.none:
            return status, []
        group = self.groups.get(group_id)
        offsets = {} if group is None or group.is_in(DEAD) else group.offsets
        unstable: set[tuple[str, int]] = set()
        if require_stable:
            for pending in self.pending_txn.get(group_id, {}).values():
                unstable.update(pending)
        if topics is None:
            return ErrorCode.none, [
                FetchedOffset(
                    o.topic,
                    o.partition,
                    o.offset,
                    o.leader_epoch,
                    o.metadata,
                    ErrorCode.unstable_offset_commit if key in unstable else ErrorCode.none,
                )
                for key, o in sorted(offsets.items())
            ]
        out = []
        for topic, partitions in topics:
            for partition in partitions:
                o = offsets.get((topic, partition))
                if (topic, partition) in unstable:
                    out.append(
                        FetchedOffset(
                            topic, partition, -1, -1, "", ErrorCode.unstable_offset_commit
                        )
                    )
                elif o is None:
                    out.append(FetchedOffset(topic, partition, -1, -1, ""))
                else:
                    out.append(
                        FetchedOffset(topic, partition, o.offset, o.leader_epoch, o.metadata)
                    )
        return ErrorCode.none, out

    async def delete_offsets(
        self, group_id: str, topics: Sequence[tuple[str, Sequence[int]]]
    ) -> tuple[ErrorCode, list[tuple[str, int, ErrorCode]]]:
        if not group_id:
            return ErrorCode.invalid_group_id, []
        status = self._status(group_id)
        if status != ErrorCode.none:
            return status, []
        group = self.groups.get(group_id)
        if group is None or group.is_in(DEAD):
            return ErrorCode.group_id_not_found, []
        if group.is_in(STABLE, PREPARING, COMPLETING) and (
            group.protocol_type != CONSUMER_PROTOCOL_TYPE
        ):
            return ErrorCode.non_empty_group, []
        results: list[tuple[str, int, ErrorCode]] = []
        doomed: list[tuple[str, int]] = []
        for topic, partitions in topics:
            subscribed = group.is_subscribed_to(topic)
            for partition in partitions:
                if subscribed:
                    results.append((topic, partition, ErrorCode.group_subscribed_to_topic))
                else:
                    results.append((topic, partition, ErrorCode.none))
                    if (topic, partition) in group.offsets:
                        doomed.append((topic, partition))
        if doomed:
            try:
                await self._db(metadata.delete_offsets, self._fence(group), group_id, doomed)
            except Exception as exc:
                return _storage_error(exc), []
            for key in doomed:
                group.offsets.pop(key, None)
        return ErrorCode.none, results

    # Transactional offsets (TxnOffsetCommit and the markers that end them) --------------------

    def _stage(self, pending: PendingOffset) -> None:
        o = pending.offset
        by_producer = self.pending_txn.setdefault(pending.group_id, {})
        by_producer.setdefault(pending.producer_id, {})[(o.topic, o.partition)] = o

    async def txn_commit_offsets(
        self, request: CommitRequest, producer_id: int
    ) -> tuple[ErrorCode, dict[tuple[str, int], ErrorCode]]:
        """TxnOffsetCommit: offsets stored as pending until the transaction's marker."""
        status = self._status(request.group_id)
        if status != ErrorCode.none:
            return status, {}
        group = self.groups.get(request.group_id)
        if group is not None and (request.member_id or request.generation_id >= 0):
            # KIP-447: a zombie of an older generation may not commit.
            try:
                if group.is_in(DEAD):
                    raise GroupError(ErrorCode.coordinator_not_available)
                if not group.is_empty or request.member_id:
                    group.validate_member(request.member_id, request.group_instance_id)
                if request.generation_id >= 0 and request.generation_id != group.generation_id:
                    raise GroupError(ErrorCode.illegal_generation)
            except GroupError as exc:
                return exc.code, {}
        errors, records = self._sized(request.offsets)
        accepted = [PendingOffset(request.group_id, producer_id, r) for r in records]
        if accepted:
            partition = self.partition_of(request.group_id)
            shard = self.shards.get(partition)
            if shard is None:
                return ErrorCode.not_coordinator, {}
            fence = CoordinatorFence(OFFSETS_TOPIC, partition, self.node_id, shard.epoch)
            try:
                await self._db(metadata.stage_txn_offsets, fence, accepted)
            except Exception as exc:
                log.warning("group %s: transactional commit failed: %s", request.group_id, exc)
                if isinstance(exc, metadata.NotCoordinator):
                    self._fenced_out(partition)
                return _storage_error(exc), {}
            for pending in accepted:
                self._stage(pending)
        return ErrorCode.none, errors

    async def complete_transaction(self, partition: int, producer_id: int, commit: bool) -> None:
        """A marker was written to offsets partition `partition`: make the producer's pending
        offsets there committed (or drop them). Raises if this broker no longer leads it."""
        shard = self.shards.get(partition)
        if shard is None:
            raise CoordinatorMoved(f"{OFFSETS_TOPIC}-{partition}")
        fence = CoordinatorFence(OFFSETS_TOPIC, partition, self.node_id, shard.epoch)
        done: list[PendingOffset] = await self._db(
            metadata.complete_txn_offsets, fence, producer_id, commit
        )
        for pending in done:
            group = self.groups.get(pending.group_id)
            if group is None:
                group = ClassicGroup(pending.group_id, partition)
                self.groups[group.group_id] = group
            o = pending.offset
            group.offsets[(o.topic, o.partition)] = o
        for group_id in [g for g in self.pending_txn if self.partition_of(g) == partition]:
            by_producer = self.pending_txn[group_id]
            by_producer.pop(producer_id, None)
            if not by_producer:
                del self.pending_txn[group_id]

    # DescribeGroups, ListGroups, DeleteGroups ---------------------------------------------------

    def describe_groups(self, group_ids: Sequence[str]) -> list[GroupDescription]:
        out = []
        for group_id in group_ids:
            status = self._status(group_id)
            if status != ErrorCode.none:
                out.append(GroupDescription(group_id, status))
                continue
            group = self.groups.get(group_id)
            if group is None:
                out.append(GroupDescription(group_id, ErrorCode.none, state=DEAD.value))
                continue
            stable = group.is_in(STABLE)
            members = tuple(
                DescribedMember(
                    m.member_id,
                    m.group_instance_id,
                    m.client_id,
                    m.client_host,
                    m.metadata(group.protocol_name) if stable else b"",
                    m.assignment if stable else b"",
                )
                for m in group.members.values()
            )
            out.append(
                GroupDescription(
                    group_id,
                    ErrorCode.none,
                    state=group.state.value,
                    protocol_type=group.protocol_type or "",
                    protocol=(group.protocol_name or "") if stable else "",
                    members=members,
                )
            )
        return out

    def list_groups(
        self, states: Sequence[str] = (), types: Sequence[str] = ()
    ) -> tuple[ErrorCode, list[ListedGroup]]:
        if any(not shard.loaded for shard in self.shards.values()):
            return ErrorCode.coordinator_load_in_progress, []
        wanted_states = {s.strip().lower() for s in states}
        wanted_types = {t.strip().lower() for t in types}
        if wanted_types and CLASSIC not in wanted_types:
            return ErrorCode.none, []
        out = [
            ListedGroup(g.group_id, g.protocol_type or "", g.state.value)
            for g in self.groups.values()
            if not wanted_states or g.state.value.lower() in wanted_states
        ]
        return ErrorCode.none, sorted(out, key=lambda g: g.group_id)

    async def delete_groups(self, group_ids: Sequence[str]) -> dict[str, ErrorCode]:
        results: dict[str, ErrorCode] = {}
        doomed: dict[int, list[ClassicGroup]] = {}
        for group_id in group_ids:
            status = self._status(group_id)
            group = self.groups.get(group_id)
            if status != ErrorCode.none:
                results[group_id] = status
            elif group is None or group.is_in(DEAD):
                results[group_id] = ErrorCode.group_id_not_found
            elif group.is_in(STABLE, PREPARING, COMPLETING):
                results[group_id] = ErrorCode.non_empty_group
            else:
                doomed.setdefault(group.partition, []).append(group)
        for groups in doomed.values():
            try:
                await self._db(
                    metadata.delete_groups, self._fence(groups[0]), [g.group_id for g in groups]
                )
            except Exception as exc:
                for group in groups:
                    results[group.group_id] = _storage_error(exc)
                continue
            for group in groups:
                if self._owns(group):
                    self._drop(group, ErrorCode.coordinator_not_available)
                log.info("group %s deleted", group.group_id)
                results[group.group_id] = ErrorCode.none
        return results

    def _forget_topics(self, topics: set[str]) -> None:
        """Like Kafka, drop the committed offsets of deleted topics."""
        for group in list(self.groups.values()):
            shard = self.shards.get(group.partition)
            doomed = [k for k in group.offsets if k[0] in topics]
            if not doomed or shard is None or not shard.loaded:
                continue
            for key in doomed:
                group.offsets.pop(key, None)
            spawn(self._delete_quietly(group, doomed))

    async def _delete_quietly(self, group: ClassicGroup, keys: list[tuple[str, int]]) -> None:
        try:
            await self._db(metadata.delete_offsets, self._fence(group), group.group_id, keys)
        except Exception as exc:
            log.warning("group %s: could not delete offsets: %s", group.group_id, exc)

    # Offset expiration (offsets.retention.minutes) ----------------------------------------------

    async def _expire_offsets_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.retention_check_interval_ms / 1000)
            try:
                await self.expire_offsets()
            except Exception:
                log.exception("expiring committed offsets failed")

    async def expire_offsets(self, now_ms: int | None = None) -> None:
        """Kafka's rules: an empty group's offsets expire `retention` after it became empty;
        a group without a protocol (assign() users) expires each offset after its last commit.
        Empty groups left without offsets are removed."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        retention = self.settings.offsets_retention_ms
        for group in list(self.groups.values()):
            shard = self.shards.get(group.partition)
            if shard is None or not shard.loaded or not group.is_empty:
                continue
            if group.protocol_type:
                expired = list(group.offsets) if now - group.state_timestamp_ms >= retention else []
            else:
                expired = [
                    k for k, o in group.offsets.items() if now - o.commit_timestamp_ms >= retention
                ]
            try:
                if expired and len(expired) < len(group.offsets):
                    await self._db(
                        metadata.delete_offsets, self._fence(group), group.group_id, expired
                    )
                    for key in expired:
                        group.offsets.pop(key, None)
                elif (expired or not group.offsets) and not group.pending_join_members:
                    await self._db(metadata.delete_groups, self._fence(group), [group.group_id])
                    if self._owns(group) and group.is_empty:
                        self._drop(group, ErrorCode.coordinator_not_available)
            except Exception as exc:
                log.warning("group %s: expiring offsets failed: %s", group.group_id, exc)

    # Persistence --------------------------------------------------------------------------------

    def _views(
        self, group: ClassicGroup, assignment: dict[str, bytes] | None
    ) -> tuple[MemberView, ...]:
        consumer = group.protocol_type == CONSUMER_PROTOCOL_TYPE
        views = []
        for m in group.members.values():
            given = m.assignment if assignment is None else assignment.get(m.member_id, b"")
            topics: tuple[str, ...] | None = None
            partitions: tuple[tuple[str, tuple[int, ...]], ...] | None = None
            if consumer:
                try:
                    chosen = group.protocol_name or (m.protocols[0].name if m.protocols else None)
                    topics = subscribed_topics(m.metadata(chosen))
                except ValueError:
                    topics = None
                try:
                    partitions = assigned_partitions(given)
                except ValueError:
                    partitions = None
            views.append(
                MemberView(
                    m.member_id,
                    m.group_instance_id,
                    m.client_id,
                    m.client_host,
                    m.session_timeout_ms,
                    m.rebalance_timeout_ms,
                    topics,
                    partitions,
                )
            )
        return tuple(views)

    def _snapshot(self, group: ClassicGroup, assignment: dict[str, bytes] | None) -> GroupSnapshot:
        return GroupSnapshot(
            protocol_type=group.protocol_type or "",
            protocol=group.protocol_name or "",
            generation=group.generation_id,
            leader=group.leader_id or "",
            members=tuple(
                MemberRecord(
                    m.member_id,
                    m.group_instance_id,
                    m.client_id,
                    m.client_host,
                    m.rebalance_timeout_ms,
                    m.session_timeout_ms,
                    m.metadata(group.protocol_name),
                    m.assignment if assignment is None else assignment.get(m.member_id, b""),
                )
                for m in group.members.values()
            ),
        )

    def _row(
        self,
        group: ClassicGroup,
        state: GroupState,
        snapshot: GroupSnapshot | None = None,
        assignment: dict[str, bytes] | None = None,
        event: str | None = None,
    ) -> GroupRow:
        return GroupRow(
            fence=self._fence(group),
            group_id=group.group_id,
            state=state.value,
            protocol_type=group.protocol_type or "",
            protocol=group.protocol_name or "",
            generation=group.generation_id,
            leader=group.leader_id or "",
            members=self._views(group, assignment),
            snapshot=snapshot,
            event=event,
        )

    async def _store(
        self,
        group: ClassicGroup,
        state: GroupState,
        snapshot: GroupSnapshot,
        *,
        assignment: dict[str, bytes] | None = None,
        event: str | None = None,
    ) -> None:
        """Write the group's durable snapshot; raises if it could not be stored here."""
        row = self._row(group, state, snapshot, assignment, event)
        fenced: set[int] = await self._db(metadata.store_groups, [row])
        if fenced:
            self._fenced_out(group.partition)
            raise CoordinatorMoved(group.group_id)

    async def _store_quietly(self, group: ClassicGroup, event: str | None = None) -> None:
        if not self._owns(group):
            return
        try:
            await self._store(group, group.state, self._snapshot(group, None), event=event)
        except Exception as exc:
            # The previous snapshot stays; its members will time out if the group moves.
            log.warning("group %s: could not store its state: %s", group.group_id, exc)

    def _mark_dirty(self, group: ClassicGroup) -> None:
        """Refresh the group's row for the admin UI soon; several changes make one write."""
        self._dirty[group.group_id] = group
        if self._flush_handle is None:
            loop = asyncio.get_running_loop()
            self._flush_handle = loop.call_later(FLUSH_DELAY_S, lambda: spawn(self._flush()))

    async def _flush(self) -> None:
        self._flush_handle = None
        groups, self._dirty = list(self._dirty.values()), {}
        rows = [
            self._row(g, g.state) for g in groups if self._owns(g) and g.partition in self.shards
        ]
        if not rows:
            return
        try:
            fenced: set[int] = await self._db(metadata.store_groups, rows)
        except Exception as exc:
            log.warning("could not refresh %d group rows: %s", len(rows), exc)
            return
        for partition in fenced:
            self._fenced_out(partition)


def _inconsistent(requested: str | None, current: str | None) -> bool:
    return requested is not None and current is not None and requested != current
