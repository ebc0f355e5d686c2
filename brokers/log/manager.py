"""LogManager: every partition log in a broker's data directory, its checkpoints and upkeep.

Threading model
---------------
Every method of LogManager and of the Log objects it hands out is called from ONE thread,
the broker's event loop thread (the "owner"). Nothing here takes a lock.

Two kinds of work run elsewhere, and touch only files the owner no longer writes:
- fsyncs of rolled segments (their `.log`, indexes, producer snapshot and the directory) on
  a single background flush thread; the owner raises a log's recovery point when it sees
  the fsync finished (on the next append, flush, or `maintain`);
- compaction on the cleaner thread, which reads inactive segments through duplicated file
  descriptors and writes `.cleaned` files; `maintain` swaps finished work into the log on
  the owner thread, and drops it if the log changed meanwhile.

A ReadSlice's descriptor may be used (os.sendfile, os.pread) from any thread until
file.delete.delay.ms after its segment was deleted.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from brokers.log.checkpoints import (
    CLEAN_SHUTDOWN,
    CLEANER_OFFSET_CHECKPOINT,
    LOG_START_OFFSET_CHECKPOINT,
    PARTITION_METADATA,
    RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
    TopicPartition,
    fsync_dir,
    read_offsets,
    write_atomically,
    write_offsets,
    write_partition_metadata,
)
from brokers.log.cleaner import LogCleaner
from brokers.log.config import LogConfig
from brokers.log.errors import InvalidTopicError, KafkaStorageError, LogError
from brokers.log.log import DELETE_DIR_SUFFIX, Log, parse_dir_name
from brokers.log.producer_state import DEFAULT_PRODUCER_ID_EXPIRATION_MS

logger = logging.getLogger(__name__)

LOCK_FILE = ".lock"
LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")
CHECKPOINT_INTERVAL_MS = 5_000


class LogManager:
    """Owns the logs of one data directory (Kafka's LogManager)."""

    def __init__(
        self,
        data_dir: Path,
        default_config: LogConfig,
        *,
        time: Callable[[], float] = time.time,
        cleaner_enabled: bool = True,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
        checkpoint_interval_ms: int = CHECKPOINT_INTERVAL_MS,
    ) -> None:
        self.data_dir = data_dir
        self.default_config = default_config
        self._time = time
        self._producer_id_expiration_ms = producer_id_expiration_ms
        self._checkpoint_interval_ms = checkpoint_interval_ms
        self._logs: dict[TopicPartition, Log] = {}
        # Deleted logs whose descriptors stay open for file.delete.delay.ms.
        self._deleted: list[Log] = []
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="log-flush")
        self._cleaner = LogCleaner(time) if cleaner_enabled else None
        self._lock_fd: int | None = None
        self._last_checkpoint_ms = 0
        self._checkpointing: Future[None] | None = None
        self.had_clean_shutdown = False

    def _now_ms(self) -> int:
        return int(self._time() * 1000)

    @property
    def is_open(self) -> bool:
        return self._lock_fd is not None

    def open(self, topic_configs: Mapping[str, LogConfig] | None = None) -> list[Log]:
        """Lock the directory and load every partition in it.

        With the `.clean-shutdown` marker present the checkpoints and indexes are trusted;
        without it each log recovers from its recovery point. The marker is removed once
        everything is loaded, so a crash from now on is seen as one.
        """
        configs = topic_configs or {}
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise KafkaStorageError(f"Cannot lock data directory {self.data_dir}: {exc}") from exc
        marker = self.data_dir / CLEAN_SHUTDOWN
        self.had_clean_shutdown = marker.exists()
        recovery_points = self._read_checkpoint(RECOVERY_POINT_CHECKPOINT)
        log_starts = self._read_checkpoint(LOG_START_OFFSET_CHECKPOINT)
        high_watermarks = self._read_checkpoint(REPLICATION_OFFSET_CHECKPOINT)
        cleaner_offsets = self._read_checkpoint(CLEANER_OFFSET_CHECKPOINT)
        for child in sorted(self.data_dir.iterdir()):
            if not child.is_dir():
                continue
            if child.name.endswith(DELETE_DIR_SUFFIX):
                shutil.rmtree(child, ignore_errors=True)
                continue
            try:
                topic, partition = parse_dir_name(child.name)
            except KafkaStorageError:
                logger.warning("Ignoring %s: not a partition directory", child)
                continue
            tp = TopicPartition(topic, partition)
            log = Log.open(
                child,
                configs.get(topic, self.default_config),
                topic_id=None,
                recovery_point=recovery_points.get(tp, 0),
                log_start_offset=log_starts.get(tp),
                high_watermark=high_watermarks.get(tp),
                had_clean_shutdown=self.had_clean_shutdown,
                time=self._time,
                background=self._background,
                producer_id_expiration_ms=self._producer_id_expiration_ms,
            )
            if tp in cleaner_offsets:
                log.cleaner_checkpoint = max(cleaner_offsets[tp], log.log_start_offset)
            self._logs[tp] = log
        if self.had_clean_shutdown:
            marker.unlink()
            fsync_dir(self.data_dir)
        self._last_checkpoint_ms = self._now_ms()
        return self.logs()

    def _read_checkpoint(self, name: str) -> dict[TopicPartition, int]:
        try:
            return read_offsets(self.data_dir / name)
        except KafkaStorageError as exc:
            # Losing a checkpoint costs a longer recovery, never data: carry on without it.
            logger.warning("Ignoring %s: %s", name, exc)
            return {}

    def get(self, topic: str, partition: int) -> Log | None:
        return self._logs.get(TopicPartition(topic, partition))

    def logs(self) -> list[Log]:
        return list(self._logs.values())

    def get_or_create(
        self,
        topic: str,
        partition: int,
        topic_id: uuid.UUID | None,
        config: LogConfig | None = None,
    ) -> Log:
        """The partition's log, created empty if missing.

        A log whose `partition.metadata` names another topic id is a leftover replica of a
        deleted topic of the same name: it is deleted and a fresh one created.
        """
        if not LEGAL_TOPIC.match(topic) or topic in (".", ".."):
            raise InvalidTopicError(f"Topic name {topic!r} is illegal")
        tp = TopicPartition(topic, partition)
        log = self._logs.get(tp)
        if log is not None:
            if topic_id is not None and log.topic_id is not None and log.topic_id != topic_id:
                logger.warning("Deleting stale replica %s of an older topic id", log.dir)
                self.delete(topic, partition)
            else:
                if config is not None and config != log.config:
                    log.update_config(config)
                if topic_id is not None and log.topic_id is None:
                    write_partition_metadata(log.dir / PARTITION_METADATA, topic_id)
                    log.topic_id = topic_id
                return log
        log = Log.open(
            self.data_dir / str(tp),
            config or self.default_config,
            topic_id=topic_id,
            recovery_point=0,
            log_start_offset=None,
            high_watermark=None,
            had_clean_shutdown=False,
            time=self._time,
            background=self._background,
            producer_id_expiration_ms=self._producer_id_expiration_ms,
        )
        self._logs[tp] = log
        return log

    def delete(self, topic: str, partition: int) -> None:
        """Delete a partition's log and its directory."""
        log = self._logs.pop(TopicPartition(topic, partition), None)
        if log is not None:
            log.delete()
            self._deleted.append(log)

    def maintain(self, now_ms: int | None = None) -> None:
        """Periodic upkeep (the broker calls this every few seconds): retention, segment.ms
        rolls, flush.ms, delayed file deletes, producer expiry, compaction, checkpoints."""
        now = self._now_ms() if now_ms is None else now_ms
        for log in self.logs():
            try:
                log.apply_retention(now)
                log.roll_if_due(now)
                log.flush_if_due(now)
                log.delete_expired_files(now)
                log.expire_producers(now)
            except LogError as exc:
                logger.error("Maintenance of %s failed: %s", log, exc)
        for log in self._deleted:
            log.delete_expired_files(now)
        self._deleted = [log for log in self._deleted if log.has_pending_deletes]
        if self._cleaner is not None:
            try:
                self._cleaner.complete()
                self._cleaner.schedule(self.logs(), now)
            except LogError as exc:
                logger.error("Log cleaning failed: %s", exc)
        if now - self._last_checkpoint_ms >= self._checkpoint_interval_ms:
            self._checkpointing = self.checkpoint(wait=False)

    def wait_for_checkpoints(self) -> None:
        """Return once the checkpoints maintain() started are on disk."""
        if self._checkpointing is not None:
            self._checkpointing.result()

    def checkpoint(self, *, wait: bool = True) -> Future[None]:
        """Write the recovery point, log start, high watermark and cleaner checkpoints.

        The offsets are read here; the files (eight fsyncs) are written on the background
        thread, in order with the flushes that raise recovery points, so the periodic
        checkpoint never stalls the thread serving requests. `wait` returns once written.
        """
        logs = self._logs
        snapshot = {
            RECOVERY_POINT_CHECKPOINT: {tp: log.recovery_point for tp, log in logs.items()},
            LOG_START_OFFSET_CHECKPOINT: {tp: log.log_start_offset for tp, log in logs.items()},
            REPLICATION_OFFSET_CHECKPOINT: {tp: log.high_watermark for tp, log in logs.items()},
            CLEANER_OFFSET_CHECKPOINT: {
                tp: log.cleaner_checkpoint for tp, log in logs.items() if log.config.compact
            },
        }
        self._last_checkpoint_ms = self._now_ms()
        future = self._background.submit(self._write_checkpoints, snapshot)
        if wait:
            future.result()
        else:
            future.add_done_callback(_log_checkpoint_failure)
        return future

    def _write_checkpoints(self, snapshot: Mapping[str, Mapping[TopicPartition, int]]) -> None:
        for name, offsets in snapshot.items():
            write_offsets(self.data_dir / name, offsets)

    def shutdown(self) -> None:
        """Flush every log, write checkpoints, close, and write `.clean-shutdown` last."""
        if self._cleaner is not None:
            self._cleaner.shutdown()
        for log in self.logs():
            log.flush()
        self.checkpoint()
        for log in self.logs():
            log.close()
        for log in self._deleted:
            log.delete_expired_files(2**62)
        self._deleted = []
        self._background.shutdown(wait=True)
        write_atomically(self.data_dir / CLEAN_SHUTDOWN, b"")
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _log_checkpoint_failure(future: Future[None]) -> None:
    exc = future.exception()
    if exc is not None:
        logger.error("Writing offset checkpoints failed: %s", exc)
