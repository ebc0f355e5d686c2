"""One partition replica on this broker: its log, its role, and (as leader) its followers' progress."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from kio.schema.errors import ErrorCode

from brokers.image import PartitionState
from brokers.log.log import AppendInfo, Log
from brokers.log.producer_state import AppendOrigin

UNKNOWN_OFFSET = -1
INFINITE_OFFSET = 2**63


class PartitionError(Exception):
    def __init__(self, code: ErrorCode, message: str | None = None) -> None:
        super().__init__(message or code.name)
        self.code = code
        self.message = message


@dataclass(slots=True)
class FollowerProgress:
    """What the leader knows of one follower (Kafka's Replica state)."""

    log_end_offset: int = UNKNOWN_OFFSET
    log_start_offset: int = UNKNOWN_OFFSET
    last_caught_up: float = 0.0
    last_fetch: float = 0.0
    last_fetch_leader_end_offset: int = 0


class Waiter:
    """A parked long-poll fetch; partitions wake it when there is something new to read.

    The future's result says whether to answer at once even with nothing to read.
    """

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def wake(self, answer_now: bool = False) -> None:
        if not self.future.done():
            self.future.set_result(answer_now)


class Partition:
    def __init__(
        self,
        node_id: int,
        log: Log,
        state: PartitionState,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_id = node_id
        self.log = log
        self.topic = state.topic
        self.index = state.index
        self.state = state
        self.clock = clock
        self.followers: dict[int, FollowerProgress] = {}
        # ISR members the leader has asked the controller to add; they count for the high
        # watermark at once (KIP-497: the "maximal" ISR), before the change is committed.
        self.pending_isr: tuple[int, ...] | None = None
        self.pending_since = 0.0
        self.leader_epoch_start_offset = 0
        self.consumer_waiters: set[Waiter] = set()
        self.replica_waiters: set[Waiter] = set()
        self._acks: list[tuple[int, asyncio.Future[ErrorCode]]] = []
        self._deletes: list[tuple[int, asyncio.Future[ErrorCode]]] = []

    @property
    def is_leader(self) -> bool:
        return self.state.leader == self.node_id

    @property
    def leader_epoch(self) -> int:
        return self.state.leader_epoch

    @property
    def high_watermark(self) -> int:
        return self.log.high_watermark

    @property
    def log_end_offset(self) -> int:
        return self.log.log_end_offset

    @property
    def min_insync_replicas(self) -> int:
        return self.log.config.min_insync_replicas

    def maximal_isr(self) -> tuple[int, ...]:
        if self.pending_isr is None:
            return self.state.isr
        return tuple(dict.fromkeys(self.state.isr + self.pending_isr))

    # Role changes ---------------------------------------------------------------------------

    def become_leader(self, state: PartitionState) -> None:
        was_leader = self.is_leader and self.state.leader_epoch == state.leader_epoch
        self.state = state
        self.pending_isr = None
        if was_leader:
            self.followers = {
                r: self.followers.get(r, FollowerProgress(last_caught_up=self.clock()))
                for r in state.replicas
                if r != self.node_id
            }
        else:
            now = self.clock()
            self.followers = {
                r: FollowerProgress(last_caught_up=now) for r in state.replicas if r != self.node_id
            }
            self.log.maybe_assign_epoch_start_offset(state.leader_epoch, self.log.log_end_offset)
            self.leader_epoch_start_offset = self.log.log_end_offset
        self.maybe_advance_high_watermark()
        self._wake_all()

    def become_follower(self, state: PartitionState) -> None:
        self.state = state
        self.followers = {}
        self.pending_isr = None
        self._fail_acks(ErrorCode.not_leader_or_follower)
        self._fail_deletes(ErrorCode.not_leader_or_follower)
        self._wake_all()

    def update_state(self, state: PartitionState) -> None:
        """Same role, new ISR or replica set (an ISR change the controller committed)."""
        self.state = state
        if self.pending_isr is not None and set(self.pending_isr) <= set(state.isr):
            self.pending_isr = None
        if self.is_leader:
            for replica in state.replicas:
                if replica != self.node_id and replica not in self.followers:
                    self.followers[replica] = FollowerProgress(last_caught_up=self.clock())
            for replica in list(self.followers):
                if replica not in state.replicas:
                    del self.followers[replica]
            self.maybe_advance_high_watermark()
            self._complete_acks()
            self._complete_deletes()

    def stop(self) -> None:
        self._fail_acks(ErrorCode.not_leader_or_follower)
        self._fail_deletes(ErrorCode.not_leader_or_follower)
        self._wake_all()

    # Leader: appends and acknowledgements ------------------------------------------------------

    def check_leader(self, current_leader_epoch: int = -1) -> None:
        if not self.is_leader:
            raise PartitionError(ErrorCode.not_leader_or_follower)
        self.check_epoch(current_leader_epoch)

    def check_epoch(self, current_leader_epoch: int) -> None:
        if current_leader_epoch < 0:
            return
        if current_leader_epoch < self.leader_epoch:
            raise PartitionError(ErrorCode.fenced_leader_epoch)
        if current_leader_epoch > self.leader_epoch:
            raise PartitionError(ErrorCode.unknown_leader_epoch)

    def append_as_leader(
        self, records: bytes, acks: int, origin: AppendOrigin = AppendOrigin.CLIENT
    ) -> AppendInfo:
        self.check_leader()
        if acks == -1 and len(self.state.isr) < self.min_insync_replicas:
            raise PartitionError(
                ErrorCode.not_enough_replicas,
                f"The size of the current ISR {list(self.state.isr)} is insufficient to satisfy "
                f"the min.isr requirement of {self.min_insync_replicas} for partition {self.topic}-{self.index}",
            )
        info = self.log.append_as_leader(records, self.leader_epoch, origin=origin)
        if not info.duplicate:
            self._wake(self.replica_waiters)
            self.maybe_advance_high_watermark()
        return info

    def wait_for_acks(self, required_offset: int) -> asyncio.Future[ErrorCode]:
        """Resolves when the high watermark reaches required_offset (acks=all)."""
        future: asyncio.Future[ErrorCode] = asyncio.get_running_loop().create_future()
        if not self.is_leader:
            future.set_result(ErrorCode.not_leader_or_follower)
        elif self.high_watermark >= required_offset:
            future.set_result(self._acks_outcome())
        else:
            self._acks.append((required_offset, future))
        return future

    def _acks_outcome(self) -> ErrorCode:
        if len(self.state.isr) < self.min_insync_replicas:
            return ErrorCode.not_enough_replicas_after_append
        return ErrorCode.none

    def _complete_acks(self) -> None:
        if self._acks:
            self._acks = _settle(self._acks, self.high_watermark, self._acks_outcome)

    def _fail_acks(self, code: ErrorCode) -> None:
        _settle(self._acks, INFINITE_OFFSET, lambda: code)
        self._acks = []

    def maybe_advance_high_watermark(self) -> bool:
        if not self.is_leader:
            return False
        hw = self.log.log_end_offset
        for replica in self.maximal_isr():
            if replica == self.node_id:
                continue
            progress = self.followers.get(replica)
            offset = progress.log_end_offset if progress is not None else UNKNOWN_OFFSET
            if offset < hw:
                hw = offset
        if hw > self.log.high_watermark:
            self.log.high_watermark = hw
            self._wake(self.consumer_waiters)
            self._complete_acks()
            return True
        return False

    # Leader: followers ------------------------------------------------------------------------

    def record_follower_fetch(
        self, replica_id: int, fetch_offset: int, log_start_offset: int = UNKNOWN_OFFSET
    ) -> bool:
        """A follower fetched from fetch_offset, so its log ends there. True if it may join the ISR."""
        progress = self.followers.get(replica_id)
        if progress is None:
            return False
        if log_start_offset != progress.log_start_offset:
            progress.log_start_offset = log_start_offset
            if self._deletes:
                self._complete_deletes()
        now = self.clock()
        leader_end = self.log.log_end_offset
        if fetch_offset >= leader_end:
            progress.last_caught_up = now
        elif fetch_offset >= progress.last_fetch_leader_end_offset:
            progress.last_caught_up = max(progress.last_caught_up, progress.last_fetch)
        progress.last_fetch = now
        progress.last_fetch_leader_end_offset = leader_end
        progress.log_end_offset = fetch_offset
        self.maybe_advance_high_watermark()
        return (
            replica_id not in self.maximal_isr()
            and fetch_offset >= self.high_watermark
            and fetch_offset >= self.leader_epoch_start_offset
        )

    # Leader: DeleteRecords ---------------------------------------------------------------------

    @property
    def low_watermark(self) -> int:
        """The lowest log start offset among the leader and the in-sync followers.

        Followers learn the leader's log start offset from fetch responses and report
        theirs in their next fetch, so DeleteRecords completes once every in-sync replica
        has dropped the records (Kafka's DelayedDeleteRecords).
        """
        low = self.log.log_start_offset
        for replica in self.maximal_isr():
            if replica == self.node_id:
                continue
            progress = self.followers.get(replica)
            if progress is not None and 0 <= progress.log_start_offset < low:
                low = progress.log_start_offset
        return low

    def wait_for_low_watermark(self, offset: int) -> asyncio.Future[ErrorCode]:
        """Resolves when every in-sync replica's log starts at `offset` or later."""
        future: asyncio.Future[ErrorCode] = asyncio.get_running_loop().create_future()
        if not self.is_leader:
            future.set_result(ErrorCode.not_leader_or_follower)
        elif self.low_watermark >= offset:
            future.set_result(ErrorCode.none)
        else:
            self._deletes.append((offset, future))
        return future

    def _complete_deletes(self) -> None:
        if self._deletes:
            self._deletes = _settle(self._deletes, self.low_watermark, lambda: ErrorCode.none)

    def _fail_deletes(self, code: ErrorCode) -> None:
        _settle(self._deletes, INFINITE_OFFSET, lambda: code)
        self._deletes = []

    def lagging_isr_members(self, max_lag_s: float) -> list[int]:
        now = self.clock()
        return [
            r
            for r in self.state.isr
            if r != self.node_id
            and (progress := self.followers.get(r)) is not None
            and now - progress.last_caught_up > max_lag_s
        ]

    # Waiting for data -------------------------------------------------------------------------

    def _wake(self, waiters: set[Waiter], answer_now: bool = False) -> None:
        if waiters:
            for waiter in waiters:
                waiter.wake(answer_now)
            waiters.clear()

    def _wake_all(self) -> None:
        self._wake(self.consumer_waiters)
        self._wake(self.replica_waiters)

    def wake_replicas(self, answer_now: bool = False) -> None:
        """Wake parked follower fetches; `answer_now` answers them even with no new records
        (so they learn a new log start offset without waiting for replica.fetch.wait.max.ms)."""
        self._wake(self.replica_waiters, answer_now)

    def wake_consumers(self) -> None:
        self._wake(self.consumer_waiters)


def _settle(
    waiting: list[tuple[int, asyncio.Future[ErrorCode]]],
    reached: int,
    outcome: Callable[[], ErrorCode],
) -> list[tuple[int, asyncio.Future[ErrorCode]]]:
    """Resolve the waits whose offset has been reached; return the ones still waiting."""
    still = []
    for required, future in waiting:
        if future.done():
            continue
        if reached >= required:
            future.set_result(outcome())
        else:
            still.append((required, future))
    return still
