"""The broker node: a Celery worker whose bootstep runs the Kafka listener and the log manager.

Components start in order — log manager, metadata image, replica manager and fetchers,
listener, heartbeats — on one event loop in a thread of their own, and stop in reverse, the
clean-shutdown marker written last. The worker's own thread runs control tasks from the
broker's Celery queue and hands them to the loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from celery import bootsteps
from kio.schema.errors import ErrorCode

from brokers import control, metadata
from brokers.background import spawn
from brokers.config import BrokerConfig, broker_log_defaults
from brokers.coordinator.group_coordinator import GroupCoordinator, GroupSettings
from brokers.coordinator.markers import TxnMarkerChannel, TxnMarkerWriter
from brokers.coordinator.producer_ids import BLOCK_SIZE, ProducerIdManager
from brokers.coordinator.transaction_coordinator import TransactionCoordinator, TxnSettings
from brokers.image import MetadataDelta, MetadataImage
from brokers.log.config import LogConfig
from brokers.log.manager import LogManager
from brokers.protocol.dispatch import Dispatcher
from brokers.protocol.handlers import register_all
from brokers.protocol.server import KafkaListener
from brokers.protocol.wire import NodeEndpoint
from brokers.replication.fetcher import FetcherManager, FetcherSettings
from brokers.replication.partition import Partition
from brokers.replication.replica_manager import ReplicaManager
from kafkaweb import env

log = logging.getLogger(__name__)

T = TypeVar("T")
METADATA_CHECK_INTERVAL_S = 2.0
MAINTENANCE_INTERVAL_S = 1.0
STATS_INTERVAL_S = 1.0


class BrokerNode:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        self.incarnation = uuid.uuid4().hex
        self.image = MetadataImage.empty()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stopping: asyncio.Event | None = None
        self._db = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"broker-{self.node_id}-db"
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._version_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._creating: set[str] = set()
        self._isr_pending: set[tuple[str, int]] = set()
        self.log_defaults = broker_log_defaults(config.values)
        self.logs = LogManager(
            config.data_dir, LogConfig.from_properties({}, defaults=self.log_defaults)
        )
        self.replicas = ReplicaManager(self.node_id, self.logs, self.log_defaults)
        self.fetchers = FetcherManager(
            self.node_id,
            self.replicas,
            self._address,
            FetcherSettings(
                max_wait_ms=config.int("replica.fetch.wait.max.ms"),
                min_bytes=config.int("replica.fetch.min.bytes"),
                max_bytes=config.int("replica.fetch.response.max.bytes"),
                partition_max_bytes=config.int("replica.fetch.max.bytes"),
            ),
        )
        self.replicas.on_following = self.fetchers.update
        self.replicas.on_isr_candidate = self._propose_isr_expansion
        self.producer_ids = ProducerIdManager(self._allocate_producer_ids)
        self.group_coordinator = GroupCoordinator(
            self.node_id,
            GroupSettings.from_config(config),
            self.db,
            on_fenced=lambda: spawn(self._reload()),
        )
        self.marker_writer = TxnMarkerWriter(self.replicas, self.group_coordinator)
        self.txn_coordinator = TransactionCoordinator(
            self.node_id,
            TxnSettings.from_config(config),
            self.db,
            self.producer_ids.next_id,
            TxnMarkerChannel(
                self.node_id, lambda: self.image, self._address, self.marker_writer.write
            ),
            on_fenced=lambda: spawn(self._reload()),
        )
        self.dispatcher = Dispatcher()
        register_all(self.dispatcher, self)
        self.listener = KafkaListener(
            self.dispatcher, config.host, config.port, config.int("socket.request.max.bytes")
        )
        self.redis: aioredis.Redis | None = None

    # Lifecycle (called from the worker's thread) ----------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"broker-{self.node_id}", daemon=True
        )
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise RuntimeError(f"broker {self.node_id} failed to start") from self._failure

    def stop(self, timeout: float = 30.0) -> None:
        if self.loop is not None and self._stopping is not None:
            self.loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to start() or logged at shutdown
            if not self._ready.is_set():
                self._failure = exc
                self._ready.set()
            else:
                log.exception("broker %s stopped with an error", self.node_id)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        await self._start_components()
        # What start-up built lives as long as the broker: keep the collector off it, so
        # full collections stay short and rare on the request path.
        gc.collect()
        gc.freeze()
        self._ready.set()
        await self._stopping.wait()
        await self._stop_components()

    async def _start_components(self) -> None:
        started = time.monotonic()
        self.logs.open()
        log.info(
            "broker %s: %d logs loaded in %.2f s",
            self.node_id,
            len(self.logs.logs()),
            time.monotonic() - started,
        )
        self.redis = aioredis.Redis.from_url(
            env.REDIS_URL, client_name=control.presence_name(self.node_id, self.incarnation)
        )
        self._apply(await self.db(metadata.load_image))
        self.group_coordinator.start()
        self.txn_coordinator.start()
        await self.listener.start()
        await self._heartbeat()
        self._tasks = [
            spawn(self._every(self._heartbeat_interval(), self._heartbeat)),
            spawn(self._every(METADATA_CHECK_INTERVAL_S, self._check_metadata)),
            spawn(self._every(MAINTENANCE_INTERVAL_S, self._maintain)),
            spawn(self._every(self._isr_check_interval(), self._shrink_isr)),
            spawn(self._every(STATS_INTERVAL_S, self._publish_stats)),
        ]

    async def _stop_components(self) -> None:
        await self._controlled_shutdown()
        for task in self._tasks:
            task.cancel()
        await self._stop_step(
            "periodic tasks", asyncio.gather(*self._tasks, return_exceptions=True)
        )
        await self._stop_step("the listener", self.listener.stop())
        await self._stop_step("the transaction coordinator", self.txn_coordinator.stop())
        await self._stop_step("the group coordinator", self.group_coordinator.stop())
        await self._stop_step("the replica fetchers", self.fetchers.stop())
        self.replicas.stop()
        if self.redis is not None:
            await self._stop_step(
                "clearing the heartbeat", self.redis.delete(control.broker_key(self.node_id))
            )
            await self._stop_step("closing Redis", self.redis.aclose())
        self._db.shutdown(wait=True)
        self.logs.shutdown()
        log.info("broker %s stopped cleanly", self.node_id)

    async def _stop_step(self, what: str, step: Awaitable[Any], timeout_s: float = 10.0) -> None:
        """One step of a shutdown; a step that hangs is given up on, so the logs still close."""
        try:
            await asyncio.wait_for(step, timeout_s)
        except TimeoutError:
            log.warning(
                "broker %s: %s did not stop in %.0f s; going on", self.node_id, what, timeout_s
            )
        except Exception:
            log.exception("broker %s: stopping %s failed; going on", self.node_id, what)

    async def _controlled_shutdown(self) -> None:
        """Ask the controller to move leadership away before going, as Kafka does."""
        if self.redis is None or not self.replicas.registered:
            return
        try:
            reply = await asyncio.wait_for(
                control.call_async(
                    self.redis,
                    "controlled_shutdown",
                    {"broker_id": self.node_id, "incarnation": self.incarnation},
                    timeout_s=10.0,
                ),
                15.0,
            )
        except (control.ControllerUnavailable, TimeoutError):
            log.warning("broker %s: no controller for a controlled shutdown", self.node_id)
            return
        # Stop leading before going: the worker may no longer deliver the controller's
        # delta, so read the change from the database if it does not arrive at once.
        version = reply.get("version")
        if version is not None:
            await self.wait_for_metadata(version, timeout_s=1.0)

    async def _every(self, interval_s: float, action: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await action()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "broker %s: %s failed", self.node_id, getattr(action, "__name__", action)
                )
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # redis-py pipelines can swallow a cancellation; without this the loop would
                # outlive _stop_components and hang the broker's shutdown.
                raise asyncio.CancelledError

    def _heartbeat_interval(self) -> float:
        return self.config.int("broker.heartbeat.interval.ms") / 1000

    def _isr_check_interval(self) -> float:
        return max(0.1, self.config.int("replica.lag.time.max.ms") / 2000)

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a metadata DB call on the broker's DB thread, never on the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, fn, *args)

    # Liveness ------------------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        assert self.redis is not None
        beat = json.dumps(
            {
                "host": self.config.host,
                "port": self.config.port,
                "rack": None,
                "incarnation": self.incarnation,
            }
        )
        pipe = self.redis.pipeline()
        pipe.set(
            control.broker_key(self.node_id), beat, px=self.config.int("broker.session.timeout.ms")
        )
        pipe.sadd(control.BROKER_IDS_KEY, self.node_id)
        await pipe.execute()

    # Metadata ------------------------------------------------------------------------------

    def submit_delta(self, delta: dict[str, Any]) -> None:
        """From the Celery task thread: apply a controller's metadata delta on the loop."""
        if self.loop is None:
            return
        self.loop.call_soon_threadsafe(self._on_delta, MetadataDelta.from_json(delta))

    def _on_delta(self, delta: MetadataDelta) -> None:
        if delta.controller_epoch < self.image.controller_epoch:
            log.warning(
                "broker %s refused metadata from controller epoch %s (current %s)",
                self.node_id,
                delta.controller_epoch,
                self.image.controller_epoch,
            )
            return
        if delta.version <= self.image.version:
            return
        stale = self._stale_leader_epochs(delta)
        if stale:
            log.warning(
                "broker %s refused metadata with stale leader epochs for %s",
                self.node_id,
                stale[:5],
            )
            return
        if delta.version == self.image.version + 1:
            self._apply(self.image.apply(delta))
        else:
            spawn(self._reload())

    def _stale_leader_epochs(self, delta: MetadataDelta) -> list[str]:
        """Partitions whose leader epoch would go back: a command no controller should send."""
        stale = []
        for topic in delta.topics:
            current = self.image.topics.get(topic.name)
            if current is None or current.topic_id != topic.topic_id:
                continue
            for state, old in zip(topic.partitions, current.partitions, strict=False):
                if state.leader_epoch < old.leader_epoch:
                    stale.append(f"{topic.name}-{state.index}")
        return stale

    async def _reload(self) -> None:
        image = await self.db(metadata.load_image)
        if (
            image.version > self.image.version
            and image.controller_epoch >= self.image.controller_epoch
        ):
            self._apply(image)

    async def _check_metadata(self) -> None:
        if await self.db(metadata.metadata_version) > self.image.version:
            await self._reload()

    def _apply(self, image: MetadataImage) -> None:
        self.image = image
        self.replicas.apply_image(image, self.incarnation)
        # Leading an offsets partition makes this broker its groups' coordinator.
        self.group_coordinator.on_metadata(image, self.replicas)
        self.txn_coordinator.on_metadata(image, self.replicas)
        self._isr_pending.intersection_update(self.replicas.partitions)
        waiting = []
        for version, future in self._version_waiters:
            if future.done():
                continue
            if image.version >= version:
                future.set_result(None)
            else:
                waiting.append((version, future))
        self._version_waiters = waiting

    async def wait_for_metadata(self, version: int, timeout_s: float = 5.0) -> bool:
        """Wait until this broker has applied metadata `version` (after a change it asked for)."""
        if self.image.version >= version:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._version_waiters.append((version, future))
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            # The delta did not come (a lost task, a stopping worker): read the database.
            await self._reload()
            return self.image.version >= version
        return True

    def endpoint(self, node_id: int) -> NodeEndpoint | None:
        broker = self.image.brokers.get(node_id)
        if broker is None:
            return None
        return NodeEndpoint(broker.id, broker.host, broker.port, broker.rack)

    def _address(self, node_id: int) -> tuple[str, int] | None:
        broker = self.image.brokers.get(node_id)
        if broker is None or not broker.alive:
            return None
        return broker.host, broker.port

    # Requests to the controller --------------------------------------------------------------

    async def controller_call(
        self, name: str, payload: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        assert self.redis is not None
        return await control.call_async(self.redis, name, payload, timeout_s)

    def auto_create_topics(self, names: list[str]) -> None:
        """Metadata named unknown topics and auto-creation is on: ask for them in the background."""
        fresh = [n for n in names if n not in self._creating]
        if not fresh:
            return
        self._creating.update(fresh)

        async def create() -> None:
            try:
                reply = await self.controller_call(
                    "create_topics",
                    {
                        "topics": [
                            {"name": n, "num_partitions": -1, "replication_factor": -1}
                            for n in fresh
                        ],
                        "actor": f"broker {self.node_id} (auto-create)",
                    },
                    30.0,
                )
                if reply.get("version") is not None:
                    await self.wait_for_metadata(reply["version"])
            except control.ControllerUnavailable:
                log.warning("broker %s: could not auto-create %s", self.node_id, fresh)
            finally:
                self._creating.difference_update(fresh)

        spawn(create())

    async def _allocate_producer_ids(self) -> tuple[int, int]:
        return await self.db(metadata.allocate_producer_ids, self.node_id, BLOCK_SIZE)

    # ISR changes (proposed by leaders, committed by the controller) --------------------------

    def _propose_isr_expansion(self, partition: Partition, replica_id: int) -> None:
        key = (partition.topic, partition.index)
        if key in self._isr_pending:
            return
        isr = tuple(dict.fromkeys((*partition.state.isr, replica_id)))
        partition.pending_isr = isr
        self._propose_isr(partition, isr)

    async def _shrink_isr(self) -> None:
        max_lag_s = self.config.int("replica.lag.time.max.ms") / 1000
        for partition in list(self.replicas.partitions.values()):
            if not partition.is_leader or (partition.topic, partition.index) in self._isr_pending:
                continue
            lagging = partition.lagging_isr_members(max_lag_s)
            if lagging:
                isr = tuple(r for r in partition.state.isr if r not in lagging)
                log.info(
                    "%s-%s: followers %s fell behind; shrinking the ISR",
                    partition.topic,
                    partition.index,
                    lagging,
                )
                self._propose_isr(partition, isr)

    def _propose_isr(self, partition: Partition, isr: tuple[int, ...]) -> None:
        key = (partition.topic, partition.index)
        self._isr_pending.add(key)
        state = partition.state

        async def propose() -> None:
            try:
                reply = await self.controller_call(
                    "alter_partition",
                    {
                        "broker_id": self.node_id,
                        "broker_epoch": self.image.brokers[self.node_id].epoch,
                        "topic": state.topic,
                        "index": state.index,
                        "leader_epoch": state.leader_epoch,
                        "partition_epoch": state.partition_epoch,
                        "isr": list(isr),
                    },
                    10.0,
                )
                if reply.get("version") is not None:
                    await self.wait_for_metadata(reply["version"])
                if reply.get("error_code", 0) != ErrorCode.none:
                    log.info(
                        "%s-%s: ISR change refused: %s",
                        state.topic,
                        state.index,
                        reply.get("error_message"),
                    )
            except control.ControllerUnavailable:
                log.warning("%s-%s: no controller for the ISR change", state.topic, state.index)
            finally:
                self._isr_pending.discard(key)
                current = self.replicas.partition(*key)
                # A refused expansion no longer counts towards the high watermark.
                if (
                    current is not None
                    and current.pending_isr is not None
                    and not set(current.pending_isr) <= set(current.state.isr)
                ):
                    current.pending_isr = None
                    current.maybe_advance_high_watermark()

        spawn(propose())

    # Housekeeping ----------------------------------------------------------------------------

    async def _publish_stats(self) -> None:
        """Every second, what the UI shows of this broker and the partitions it leads.

        Counters are cumulative; readers turn them into rates. Keys expire, so a dead
        broker's numbers vanish on their own.
        """
        assert self.redis is not None
        now_ms = int(time.time() * 1000)
        partitions: dict[Any, str] = {}
        hosted = led = under_replicated = disk = 0
        for (topic, index), partition in self.replicas.partitions.items():
            plog = partition.log
            hosted += 1
            disk += plog.size_in_bytes
            if not partition.is_leader:
                continue
            led += 1
            if len(partition.state.isr) < len(partition.state.replicas):
                under_replicated += 1
            partitions[f"{topic}/{index}"] = json.dumps(
                {
                    "log_start": plog.log_start_offset,
                    "high_watermark": plog.high_watermark,
                    "log_end": plog.log_end_offset,
                    "size": plog.size_in_bytes,
                    "leader_epoch": partition.leader_epoch,
                    "isr": list(partition.state.isr),
                }
            )
        totals = [0, 0, 0]
        for traffic in self.replicas.topic_traffic.values():
            for i in range(3):
                totals[i] += traffic[i]
        stats = {
            "id": self.node_id,
            "at": now_ms,
            "bytes_in": totals[0],
            "messages_in": totals[1],
            "bytes_out": totals[2],
            "connections": len(self.listener.connections),
            "partitions": hosted,
            "leaders": led,
            "under_replicated": under_replicated,
            "disk_bytes": disk,
        }
        ttl_ms = int(STATS_INTERVAL_S * 5000)
        pipe = self.redis.pipeline()
        pipe.set(control.stats_key(self.node_id), json.dumps(stats), px=ttl_ms)
        partitions_key = control.partitions_key(self.node_id)
        pipe.delete(partitions_key)
        if partitions:
            pipe.hset(partitions_key, mapping=partitions)
            pipe.pexpire(partitions_key, ttl_ms)
        traffic_key = control.traffic_key(self.node_id)
        pipe.delete(traffic_key)
        if self.replicas.topic_traffic:
            pipe.hset(
                traffic_key,
                mapping={
                    t: json.dumps(
                        {"at": now_ms, "bytes_in": v[0], "messages_in": v[1], "bytes_out": v[2]}
                    )
                    for t, v in self.replicas.topic_traffic.items()
                },
            )
            pipe.pexpire(traffic_key, ttl_ms)
        await pipe.execute()

    async def _maintain(self) -> None:
        self.logs.maintain(int(time.time() * 1000))


NODE: BrokerNode | None = None


class BrokerBootstep(bootsteps.StartStopStep):
    """Runs a broker node inside a Celery worker started with --broker-id."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, broker_id: int | None = None, **options: Any) -> None:
        super().__init__(worker, **options)
        self.broker_id = int(broker_id) if broker_id else None

    def start(self, worker: Any) -> None:
        global NODE
        if self.broker_id is None:
            return
        NODE = BrokerNode(BrokerConfig.for_node(self.broker_id))
        NODE.start()
        log.info(
            "broker %s is serving Kafka clients on %s:%s",
            self.broker_id,
            NODE.config.host,
            NODE.config.port,
        )

    def stop(self, worker: Any) -> None:
        global NODE
        if NODE is not None:
            NODE.stop()
            NODE = None
