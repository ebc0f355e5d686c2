"""The controller: one active at a time, fenced by its epoch.

It watches broker liveness, elects partition leaders from the ISR, places replicas, and makes
every topic change. Each change is one fenced database commit (brokers.metadata.commit) whose
delta is sent to every live broker on its own Celery queue.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import redis
from celery import bootsteps
from kio.schema.errors import ErrorCode

from brokers import control, metadata, placement
from brokers.config import BROKER_DEFAULTS, broker_log_defaults, broker_values
from brokers.coordinator.offsets_topic import OFFSETS_TOPIC
from brokers.image import (
    NO_LEADER,
    BrokerInfo,
    MetadataDelta,
    MetadataImage,
    PartitionState,
    TopicInfo,
)
from brokers.log.config import TOPIC_CONFIGS, ConfigType, LogConfig
from brokers.log.errors import InvalidConfigError
from brokers.metadata import Event, NotController
from brokers.topic_names import collision_key, invalid_reason
from kafkaweb import env
from kafkaweb.celery import app

log = logging.getLogger(__name__)

REASSIGNMENT_CHECK_INTERVAL_S = 5.0

_RENEW_LEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


# Deletes a broker's heartbeat if it is still the given incarnation's.
_FORGET_BEAT = """
local beat = redis.call('get', KEYS[1])
if beat and cjson.decode(beat)['incarnation'] == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""
DEATH_PROBE_TIMEOUT_S = 0.2


def _refuses_connections(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=DEATH_PROBE_TIMEOUT_S):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    session_timeout_ms: int
    defaults: Mapping[str, str] = field(default_factory=lambda: dict(BROKER_DEFAULTS))

    @property
    def lease_ms(self) -> int:
        return self.session_timeout_ms

    def int(self, name: str) -> int:
        return int(self.defaults[name])

    def flag(self, name: str) -> bool:
        return self.defaults[name].lower() == "true"


def _error(code: ErrorCode, message: str | None = None) -> dict[str, Any]:
    return {"error_code": int(code), "error_message": message}


class Changes:
    """A working copy of the partitions and brokers one controller decision touches."""

    def __init__(self, image: MetadataImage, actor: str = "controller") -> None:
        self.image = image
        self.actor = actor
        self.topics: dict[str, TopicInfo] = {}
        self.deleted: list[str] = []
        self.brokers: dict[int, BrokerInfo] = {}
        self.events: list[Event] = []

    def broker(self, node_id: int) -> BrokerInfo | None:
        return self.brokers.get(node_id) or self.image.brokers.get(node_id)

    def alive(self) -> set[int]:
        """Brokers that may lead: alive and not in a controlled shutdown."""
        ids = set(self.image.brokers) | set(self.brokers)
        return {
            i for i in ids if (b := self.broker(i)) is not None and b.alive and not b.shutting_down
        }

    def topic(self, name: str) -> TopicInfo | None:
        if name in self.deleted:
            return None
        return self.topics.get(name) or self.image.topics.get(name)

    def all_topics(self) -> list[TopicInfo]:
        names = (set(self.image.topics) | set(self.topics)) - set(self.deleted)
        return [t for n in sorted(names) if (t := self.topic(n)) is not None]

    def put_topic(self, topic: TopicInfo) -> None:
        self.topics[topic.name] = topic

    def put_broker(self, broker: BrokerInfo) -> None:
        self.brokers[broker.id] = broker

    def put_partition(self, state: PartitionState, reason: str = "") -> None:
        topic = self.topic(state.topic)
        assert topic is not None
        old = topic.partitions[state.index]
        if old == state:
            return
        partitions = list(topic.partitions)
        partitions[state.index] = state
        self.topics[topic.name] = replace(topic, partitions=tuple(partitions))
        suffix = f" ({reason})" if reason else ""
        if old.leader != state.leader or old.leader_epoch != state.leader_epoch:
            self.events.append(
                Event(
                    kind="leader",
                    message=f"{state.topic}-{state.index}: leader {_name(old.leader)} → "
                    f"{_name(state.leader)}, epoch {state.leader_epoch}{suffix}",
                    broker_id=None if state.leader < 0 else state.leader,
                    topic=state.topic,
                    partition=state.index,
                    data={
                        "old_leader": old.leader,
                        "leader": state.leader,
                        "leader_epoch": state.leader_epoch,
                        "isr": list(state.isr),
                        "replicas": list(state.replicas),
                    },
                    actor=self.actor,
                )
            )
        if old.isr != state.isr:
            self.events.append(
                Event(
                    kind="isr",
                    message=f"{state.topic}-{state.index}: ISR {list(old.isr)} → {list(state.isr)}{suffix}",
                    topic=state.topic,
                    partition=state.index,
                    data={"old_isr": list(old.isr), "isr": list(state.isr), "leader": state.leader},
                    actor=self.actor,
                )
            )

    def partitions_of(self, node_id: int) -> Iterable[PartitionState]:
        for topic in self.all_topics():
            for state in topic.partitions:
                if node_id in state.replicas:
                    yield state

    @property
    def empty(self) -> bool:
        return not (self.topics or self.deleted or self.brokers or self.events)


def _name(node_id: int) -> str:
    return "none" if node_id < 0 else str(node_id)


def _with_leader(state: PartitionState, leader: int, isr: tuple[int, ...]) -> PartitionState:
    leader_changed = leader != state.leader
    return replace(
        state,
        leader=leader,
        isr=isr,
        leader_epoch=state.leader_epoch + 1 if leader_changed else state.leader_epoch,
        partition_epoch=state.partition_epoch + 1,
    )


def elect_leader(
    state: PartitionState, alive: set[int], *, unclean: bool, exclude: Iterable[int] = ()
) -> tuple[int, tuple[int, ...]]:
    """The new (leader, ISR): the first live ISR member in replica order, as Kafka elects."""
    excluded = set(exclude)
    for replica in state.replicas:
        if (
            replica in state.isr
            and replica in alive
            and replica not in excluded
            and replica not in state.removing
        ):
            return replica, state.isr
    if unclean:
        for replica in state.replicas:
            if replica in alive and replica not in excluded:
                # Unclean: a replica outside the ISR leads, and the ISR restarts from it.
                return replica, (replica,)
    return NO_LEADER, state.isr


class Controller:
    def __init__(self, node_id: int, client: redis.Redis, settings: ControllerSettings) -> None:
        self.node_id = node_id
        self.redis = client
        self.settings = settings
        self.lock = threading.RLock()
        self.epoch = 0
        self.image = MetadataImage.empty()
        self._lease_value = ""
        self._renew = client.register_script(_RENEW_LEASE)
        self._last_rebalance = time.monotonic()
        self._last_reassignment_check = time.monotonic()
        self._warned_client_list = False
        self.send_task: Callable[..., Any] = app.send_task

    @property
    def active(self) -> bool:
        return self.epoch > 0

    # Leadership ---------------------------------------------------------------------------

    def tick(self) -> None:
        """One turn of the control loop: hold or take the lease, then watch the brokers."""
        with self.lock:
            if not self.active:
                self._try_become_active()
            elif not self._renew(
                keys=[control.CONTROLLER_KEY], args=[self._lease_value, self.settings.lease_ms]
            ):
                log.warning("controller %s lost its lease (epoch %s)", self.node_id, self.epoch)
                self._step_down()
                return
            if self.active:
                try:
                    self._check_brokers()
                    self._complete_reassignments()
                    self._create_internal_topics()
                    self._maybe_rebalance_leaders()
                except NotController:
                    self._step_down()

    def _try_become_active(self) -> None:
        claiming = f"{self.node_id}:0"
        if not self.redis.set(control.CONTROLLER_KEY, claiming, nx=True, px=self.settings.lease_ms):
            return
        try:
            epoch = metadata.claim_controller(self.node_id)
            image = metadata.load_image()
        except Exception:
            self.redis.delete(control.CONTROLLER_KEY)
            raise
        self._lease_value = f"{self.node_id}:{epoch}"
        self.redis.set(control.CONTROLLER_KEY, self._lease_value, px=self.settings.lease_ms)
        self.epoch = epoch
        self.image = image
        log.info("controller %s is active with epoch %s", self.node_id, epoch)
        changes = Changes(image)
        changes.events.append(
            Event(
                kind="controller",
                message=f"controller {self.node_id} is active (epoch {epoch})",
                data={"controller": self.node_id, "epoch": epoch},
            )
        )
        self._commit(changes)

    def _step_down(self) -> None:
        self.epoch = 0
        self._lease_value = ""

    def release(self) -> None:
        """Give the lease up at shutdown so a standby takes over at once."""
        with self.lock:
            if self.active:
                self.redis.eval(
                    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
                    1,
                    control.CONTROLLER_KEY,
                    self._lease_value,
                )
            self._step_down()

    # Committing -----------------------------------------------------------------------------

    def _commit(self, changes: Changes) -> MetadataDelta | None:
        if changes.empty:
            return None
        delta = metadata.commit(
            self.epoch,
            self.image,
            topics=list(changes.topics.values()),
            deleted_topics=changes.deleted,
            brokers=list(changes.brokers.values()),
            events_=changes.events,
        )
        self.image = self.image.apply(delta)
        self._broadcast(delta)
        return delta

    def _broadcast(self, delta: MetadataDelta) -> None:
        payload = delta.to_json()
        for broker in self.image.brokers.values():
            if broker.alive:
                self.send_task(
                    "brokers.apply_metadata",
                    kwargs={"delta": payload},
                    queue=control.broker_queue(broker.id),
                    expires=60,
                    ignore_result=True,
                )

    # Liveness ---------------------------------------------------------------------------------

    def _heartbeats(self) -> dict[int, dict[str, Any]]:
        ids = sorted(int(i) for i in self.redis.smembers(control.BROKER_IDS_KEY))
        if not ids:
            return {}
        values = self.redis.mget([control.broker_key(i) for i in ids])
        beats = {}
        for node_id, raw in zip(ids, values, strict=True):
            if raw is not None:
                beats[node_id] = json.loads(raw)
        return beats

    def _departed(self, beats: dict[int, dict[str, Any]]) -> set[int]:
        """Brokers whose heartbeat is still live but whose process is gone.

        A broker's Redis connections carry its name and incarnation; when they are all gone,
        a connect to its Kafka port decides: refused means no process listens there any
        more, so the broker is down now rather than when its heartbeat key expires. Anything
        else (accepted, timed out - a stopped process still completes handshakes) leaves the
        session timeout to decide.
        """
        watched = {
            node_id: beat
            for node_id, beat in beats.items()
            if (known := self.image.brokers.get(node_id)) is not None
            and known.alive
            and beat.get("incarnation") == known.incarnation
        }
        if not watched:
            return set()
        try:
            clients = self.redis.client_list(_type="normal")
        except redis.ResponseError as exc:
            # A Redis that refuses CLIENT LIST (an ACL): heartbeats alone decide.
            if not self._warned_client_list:
                log.warning("controller %s: no fast death detection: %s", self.node_id, exc)
                self._warned_client_list = True
            return set()
        present = {client.get("name") for client in clients}
        gone = set()
        for node_id, beat in watched.items():
            if control.presence_name(node_id, beat["incarnation"]) in present:
                continue
            if _refuses_connections(beat["host"], beat["port"]):
                gone.add(node_id)
                self.redis.eval(_FORGET_BEAT, 1, control.broker_key(node_id), beat["incarnation"])
        return gone

    def _check_brokers(self) -> None:
        beats = self._heartbeats()
        for node_id in self._departed(beats):
            del beats[node_id]
        changes = Changes(self.image)
        unclean_default = self.settings.flag("unclean.leader.election.enable")
        for node_id, known in self.image.brokers.items():
            beat = beats.get(node_id)
            if known.alive and (beat is None or beat.get("incarnation") != known.incarnation):
                self._broker_down(changes, node_id, unclean_default)
        for node_id, beat in beats.items():
            registered = changes.broker(node_id)
            if registered is None or not registered.alive:
                self._broker_up(changes, node_id, beat, unclean_default)
        self._commit(changes)

    def _broker_down(self, changes: Changes, node_id: int, unclean_default: bool) -> None:
        known = changes.broker(node_id)
        assert known is not None
        log.info("broker %s is down", node_id)
        changes.put_broker(replace(known, alive=False, shutting_down=False))
        changes.events.append(
            Event(kind="broker_down", message=f"broker {node_id} is down", broker_id=node_id)
        )
        self._move_leadership_away(
            changes, node_id, unclean_default, reason=f"broker {node_id} down"
        )

    def _move_leadership_away(
        self,
        changes: Changes,
        node_id: int,
        unclean_default: bool,
        *,
        reason: str,
        still_alive: bool = False,
    ) -> None:
        """Elect new leaders where `node_id` leads and drop it from every ISR it is in.

        An ISR never becomes empty: its last member stays, so that when it returns it can
        lead again without losing what it acknowledged. A broker in a controlled shutdown
        keeps the partitions nobody else can take, until it is really gone.
        """
        alive = changes.alive() - {node_id}
        for state in list(changes.partitions_of(node_id)):
            isr = state.isr
            if node_id in isr and len(isr) > 1:
                isr = tuple(r for r in isr if r != node_id)
            if state.leader == node_id:
                candidate = replace(state, isr=isr)
                leader, new_isr = elect_leader(
                    candidate,
                    alive,
                    unclean=self._unclean(state.topic, unclean_default),
                    exclude=[node_id],
                )
                if leader == NO_LEADER and still_alive:
                    continue
                changes.put_partition(_with_leader(state, leader, new_isr), reason)
            elif isr != state.isr:
                changes.put_partition(
                    replace(state, isr=isr, partition_epoch=state.partition_epoch + 1), reason
                )

    def _broker_up(
        self, changes: Changes, node_id: int, beat: dict[str, Any], unclean_default: bool
    ) -> None:
        known = changes.broker(node_id)
        info = BrokerInfo(
            id=node_id,
            host=beat["host"],
            port=int(beat["port"]),
            rack=beat.get("rack"),
            alive=True,
            epoch=(known.epoch + 1) if known is not None else 1,
            incarnation=beat["incarnation"],
        )
        changes.put_broker(info)
        log.info("broker %s is up at %s:%s (epoch %s)", node_id, info.host, info.port, info.epoch)
        changes.events.append(
            Event(
                kind="broker_up",
                message=f"broker {node_id} is up at {info.host}:{info.port}",
                broker_id=node_id,
                data={"epoch": info.epoch},
            )
        )
        alive = changes.alive()
        for state in list(changes.partitions_of(node_id)):
            if state.leader != NO_LEADER:
                continue
            leader, isr = elect_leader(
                state, alive, unclean=self._unclean(state.topic, unclean_default)
            )
            if leader != NO_LEADER:
                changes.put_partition(_with_leader(state, leader, isr), f"broker {node_id} up")

    def _unclean(self, topic: str, default: bool) -> bool:
        info = self.image.topics.get(topic)
        value = info.configs.get("unclean.leader.election.enable") if info else None
        return default if value is None else value.lower() == "true"

    # Internal topics -------------------------------------------------------------------------

    def _create_internal_topics(self) -> None:
        """Create `__consumer_offsets` when missing; its partition leaders coordinate groups.

        As Kafka does, only once `offsets.topic.replication.factor` brokers are alive, with
        that many replicas each; until then FindCoordinator answers COORDINATOR_NOT_AVAILABLE
        and clients retry.
        """
        if OFFSETS_TOPIC in self.image.topics:
            return
        replication_factor = self.settings.int("offsets.topic.replication.factor")
        if len(self._placeable_brokers()) < replication_factor:
            return
        changes = Changes(self.image)
        result = self._create_topic(
            changes,
            {
                "name": OFFSETS_TOPIC,
                "num_partitions": self.settings.int("offsets.topic.num.partitions"),
                "replication_factor": replication_factor,
                "configs": {"cleanup.policy": "compact"},
                "internal": True,
            },
            validate_only=False,
        )
        if result["error_code"] != ErrorCode.none:
            log.warning("cannot create %s: %s", OFFSETS_TOPIC, result.get("error_message"))
            return
        self._commit(changes)

    def _maybe_rebalance_leaders(self) -> None:
        if not self.settings.flag("auto.leader.rebalance.enable"):
            return
        interval = self.settings.int("leader.imbalance.check.interval.seconds")
        if time.monotonic() - self._last_rebalance < interval:
            return
        self._last_rebalance = time.monotonic()
        changes = Changes(self.image)
        self._elect_preferred(changes, None)
        self._commit(changes)

    def _elect_preferred(
        self, changes: Changes, partitions: Iterable[tuple[str, int]] | None
    ) -> dict[tuple[str, int], ErrorCode]:
        """Move leadership back to each partition's first replica where it is alive and in sync."""
        alive = {b.id for b in self.image.brokers.values() if b.alive and not b.shutting_down}
        wanted = None if partitions is None else set(partitions)
        results: dict[tuple[str, int], ErrorCode] = {}
        for topic in changes.all_topics():
            for state in topic.partitions:
                key = (topic.name, state.index)
                if wanted is not None and key not in wanted:
                    continue
                preferred = state.replicas[0]
                if state.leader == preferred:
                    results[key] = ErrorCode.election_not_needed
                elif preferred in alive and preferred in state.isr:
                    changes.put_partition(
                        _with_leader(state, preferred, state.isr), "preferred leader"
                    )
                    results[key] = ErrorCode.none
                else:
                    results[key] = ErrorCode.preferred_leader_not_available
        return results

    # Requests from brokers ------------------------------------------------------------------

    def handle(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if not self.active:
                return _error(ErrorCode.not_controller, f"controller {self.node_id} is not active")
            handler = getattr(self, f"request_{name}", None)
            if handler is None:
                return _error(ErrorCode.invalid_request, f"unknown controller request {name}")
            try:
                result: dict[str, Any] = handler(payload)
            except NotController:
                self._step_down()
                return _error(ErrorCode.not_controller, "another controller took over")
            # The version a broker waits for before answering, so its client sees the change.
            result["version"] = self.image.version
            return result

    def _topic_defaults(self, replication_factor: int) -> dict[str, str]:
        if replication_factor >= 3:
            # A topic on three brokers keeps acknowledged writes through one loss.
            return {"min.insync.replicas": "2"}
        return {}

    def _placeable_brokers(self) -> list[int]:
        return sorted(b.id for b in self.image.brokers.values() if b.alive and not b.shutting_down)

    def request_create_topics(self, payload: dict[str, Any]) -> dict[str, Any]:
        validate_only = bool(payload.get("validate_only"))
        actor = payload.get("actor") or "controller"
        changes = Changes(self.image, actor)
        results = []
        for spec in payload["topics"]:
            result = self._create_topic(changes, spec, validate_only)
            results.append(result)
        if not validate_only:
            self._commit(changes)
        return {"error_code": 0, "topics": results}

    def _create_topic(
        self, changes: Changes, spec: dict[str, Any], validate_only: bool
    ) -> dict[str, Any]:
        name = spec["name"]
        result: dict[str, Any] = {"name": name, **_error(ErrorCode.none)}
        if reason := invalid_reason(name):
            return {**result, **_error(ErrorCode.invalid_topic_exception, reason)}
        if changes.topic(name) is not None:
            return {
                **result,
                **_error(ErrorCode.topic_already_exists, f"Topic '{name}' already exists."),
            }
        key = collision_key(name)
        for other in changes.all_topics():
            if collision_key(other.name) == key:
                return {
                    **result,
                    **_error(
                        ErrorCode.invalid_topic_exception,
                        f"Topic '{name}' collides with existing topic: {other.name}",
                    ),
                }
        brokers = self._placeable_brokers()
        assignments: dict[int, list[int]] | None = spec.get("assignments") or None
        num_partitions = int(spec.get("num_partitions", -1))
        replication_factor = int(spec.get("replication_factor", -1))
        if assignments:
            if num_partitions != -1 or replication_factor != -1:
                return {
                    **result,
                    **_error(
                        ErrorCode.invalid_request,
                        "Both numPartitions or replicationFactor and replicasAssignments were set. "
                        "Both cannot be used at the same time.",
                    ),
                }
            replica_lists = [assignments[i] for i in sorted(assignments)]
            if sorted(assignments) != list(range(len(assignments))):
                return {
                    **result,
                    **_error(
                        ErrorCode.invalid_replica_assignment, "Partitions must be numbered 0..n-1."
                    ),
                }
            error = self._check_assignment(replica_lists)
            if error:
                return {**result, **_error(ErrorCode.invalid_replica_assignment, error)}
            num_partitions = len(replica_lists)
            replication_factor = len(replica_lists[0])
        else:
            if num_partitions == -1:
                num_partitions = self.settings.int("num.partitions")
            if replication_factor == -1:
                replication_factor = min(
                    self.settings.int("default.replication.factor"), max(1, len(brokers))
                )
            if num_partitions <= 0:
                return {
                    **result,
                    **_error(
                        ErrorCode.invalid_partitions, "Number of partitions must be larger than 0."
                    ),
                }
            if replication_factor <= 0:
                return {
                    **result,
                    **_error(
                        ErrorCode.invalid_replication_factor,
                        "Replication factor must be larger than 0.",
                    ),
                }
            try:
                replica_lists = placement.assign_replicas(
                    brokers, num_partitions, replication_factor
                )
            except placement.PlacementError as exc:
                return {**result, **_error(ErrorCode.invalid_replication_factor, str(exc))}
        configs = {**self._topic_defaults(replication_factor), **(spec.get("configs") or {})}
        try:
            LogConfig.from_properties(configs)
        except InvalidConfigError as exc:
            return {**result, **_error(ErrorCode.invalid_config, str(exc))}
        topic_id = uuid.uuid4()
        result.update(
            topic_id=str(topic_id),
            num_partitions=num_partitions,
            replication_factor=replication_factor,
            configs=configs,
        )
        if validate_only:
            return result
        alive = set(brokers)
        partitions = []
        for index, replicas in enumerate(replica_lists):
            leader = next((r for r in replicas if r in alive), NO_LEADER)
            partitions.append(
                PartitionState(
                    topic=name,
                    index=index,
                    leader=leader,
                    leader_epoch=0,
                    partition_epoch=0,
                    replicas=tuple(replicas),
                    isr=tuple(replicas),
                )
            )
        changes.put_topic(
            TopicInfo(
                name=name,
                topic_id=topic_id,
                internal=bool(spec.get("internal")),
                configs=configs,
                partitions=tuple(partitions),
            )
        )
        changes.events.append(
            Event(
                kind="topic",
                message=f"topic {name} created with {num_partitions} partitions, "
                f"replication factor {replication_factor}",
                topic=name,
                data={"partitions": num_partitions, "replication_factor": replication_factor},
                actor=changes.actor,
            )
        )
        return result

    def _check_assignment(self, replica_lists: list[list[int]]) -> str | None:
        if not replica_lists or not replica_lists[0]:
            return "Replica assignment must not be empty."
        known = set(self.image.brokers)
        width = len(replica_lists[0])
        for index, replicas in enumerate(replica_lists):
            if len(replicas) != width:
                return f"Partition {index} has {len(replicas)} replicas, others have {width}."
            if len(set(replicas)) != len(replicas):
                return f"Duplicate brokers in the replica list of partition {index}: {replicas}."
            unknown = [r for r in replicas if r not in known]
            if unknown:
                return f"Unknown broker(s) {unknown} in the replica list of partition {index}."
        return None

    def request_delete_topics(self, payload: dict[str, Any]) -> dict[str, Any]:
        changes = Changes(self.image, payload.get("actor") or "controller")
        results = []
        for item in payload["topics"]:
            name, topic_id = item.get("name"), item.get("topic_id")
            info = None
            if topic_id:
                info = self.image.topics_by_id.get(uuid.UUID(topic_id))
                if info is None:
                    results.append(
                        {"name": name, "topic_id": topic_id, **_error(ErrorCode.unknown_topic_id)}
                    )
                    continue
            elif name:
                info = changes.topic(name)
            if info is None or info.name in changes.deleted:
                results.append(
                    {
                        "name": name,
                        "topic_id": topic_id,
                        **_error(ErrorCode.unknown_topic_or_partition),
                    }
                )
                continue
            changes.deleted.append(info.name)
            changes.events.append(
                Event(
                    kind="topic",
                    message=f"topic {info.name} deleted",
                    topic=info.name,
                    actor=changes.actor,
                )
            )
            results.append(
                {"name": info.name, "topic_id": str(info.topic_id), **_error(ErrorCode.none)}
            )
        self._commit(changes)
        return {"error_code": 0, "topics": results}

    def request_create_partitions(self, payload: dict[str, Any]) -> dict[str, Any]:
        validate_only = bool(payload.get("validate_only"))
        changes = Changes(self.image, payload.get("actor") or "controller")
        results = []
        for spec in payload["topics"]:
            name, count = spec["name"], int(spec["count"])
            info = changes.topic(name)
            if info is None:
                results.append(
                    {
                        "name": name,
                        **_error(
                            ErrorCode.unknown_topic_or_partition,
                            f"The topic '{name}' does not exist.",
                        ),
                    }
                )
                continue
            current = len(info.partitions)
            if count < current:
                results.append(
                    {
                        "name": name,
                        **_error(
                            ErrorCode.invalid_partitions,
                            f"Topic currently has {current} partitions, which is higher than the requested {count}.",
                        ),
                    }
                )
                continue
            if count == current:
                results.append(
                    {
                        "name": name,
                        **_error(
                            ErrorCode.invalid_partitions, f"Topic already has {current} partitions."
                        ),
                    }
                )
                continue
            width = len(info.partitions[0].replicas)
            assignments = spec.get("assignments")
            if assignments:
                if len(assignments) != count - current:
                    results.append(
                        {
                            "name": name,
                            **_error(
                                ErrorCode.invalid_replica_assignment,
                                f"Increasing the number of partitions by {count - current} but {len(assignments)} assignments provided.",
                            ),
                        }
                    )
                    continue
                error = self._check_assignment([list(info.partitions[0].replicas), *assignments])
                if error:
                    results.append(
                        {"name": name, **_error(ErrorCode.invalid_replica_assignment, error)}
                    )
                    continue
                new_lists = assignments
            else:
                brokers = self._placeable_brokers()
                try:
                    start = (
                        sorted(brokers).index(info.partitions[0].replicas[0])
                        if info.partitions[0].replicas[0] in brokers
                        else None
                    )
                    new_lists = placement.assign_replicas(
                        brokers, count - current, width, first_partition=current, start_index=start
                    )
                except placement.PlacementError as exc:
                    results.append(
                        {"name": name, **_error(ErrorCode.invalid_replication_factor, str(exc))}
                    )
                    continue
            results.append({"name": name, **_error(ErrorCode.none)})
            if validate_only:
                continue
            alive = changes.alive()
            added = tuple(
                PartitionState(
                    topic=name,
                    index=current + i,
                    leader=next((r for r in replicas if r in alive), NO_LEADER),
                    leader_epoch=0,
                    partition_epoch=0,
                    replicas=tuple(replicas),
                    isr=tuple(replicas),
                )
                for i, replicas in enumerate(new_lists)
            )
            changes.put_topic(replace(info, partitions=info.partitions + added))
            changes.events.append(
                Event(
                    kind="topic",
                    message=f"topic {name}: partitions {current} → {count}",
                    topic=name,
                    actor=changes.actor,
                )
            )
        if not validate_only:
            self._commit(changes)
        return {"error_code": 0, "topics": results}

    def request_alter_configs(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Topic config changes; `incremental` ops are SET/DELETE/APPEND/SUBTRACT (KIP-339)."""
        validate_only = bool(payload.get("validate_only"))
        changes = Changes(self.image, payload.get("actor") or "controller")
        results = []
        for resource in payload["resources"]:
            name = resource["name"]
            info = changes.topic(name)
            if info is None:
                results.append(
                    {
                        "name": name,
                        **_error(
                            ErrorCode.unknown_topic_or_partition, f"Topic {name} does not exist."
                        ),
                    }
                )
                continue
            if resource.get("incremental"):
                configs, error = _apply_incremental(
                    dict(info.configs), resource["ops"], self._effective_defaults()
                )
                if error:
                    results.append({"name": name, **_error(ErrorCode.invalid_config, error)})
                    continue
            else:
                configs = {k: v for k, v in resource["configs"].items() if v is not None}
            try:
                LogConfig.from_properties(configs)
            except InvalidConfigError as exc:
                results.append({"name": name, **_error(ErrorCode.invalid_config, str(exc))})
                continue
            results.append({"name": name, **_error(ErrorCode.none)})
            if not validate_only and configs != dict(info.configs):
                changes.put_topic(replace(info, configs=configs))
                changes.events.append(
                    Event(
                        kind="config",
                        message=f"topic {name} configs changed",
                        topic=name,
                        data={"before": dict(info.configs), "after": configs},
                        actor=changes.actor,
                    )
                )
        if not validate_only:
            self._commit(changes)
        return {"error_code": 0, "resources": results}

    def _effective_defaults(self) -> dict[str, str]:
        """Every topic config's value for a topic without overrides, under these brokers."""
        return LogConfig.from_properties(
            {}, defaults=broker_log_defaults(self.settings.defaults)
        ).to_properties()

    def request_elect_leaders(self, payload: dict[str, Any]) -> dict[str, Any]:
        changes = Changes(self.image, payload.get("actor") or "controller")
        wanted = None
        if payload.get("partitions") is not None:
            wanted = [(t, int(p)) for t, p in payload["partitions"]]
        if payload.get("election_type", 0) == 0:
            results = self._elect_preferred(changes, wanted)
        else:
            results = self._elect_unclean(changes, wanted)
        if wanted is not None:
            for key in wanted:
                if changes.topic(key[0]) is None or key[1] >= len(changes.topic(key[0]).partitions):  # type: ignore[union-attr]
                    results[key] = ErrorCode.unknown_topic_or_partition
        self._commit(changes)
        return {
            "error_code": 0,
            "partitions": [[t, p, int(code)] for (t, p), code in sorted(results.items())],
        }

    def request_alter_partition(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A leader proposes a new ISR (KIP-497's AlterPartition)."""
        topic, index, broker_id = payload["topic"], int(payload["index"]), int(payload["broker_id"])
        state = self.image.partition(topic, index)
        if state is None:
            return _error(ErrorCode.unknown_topic_or_partition)
        broker = self.image.brokers.get(broker_id)
        if broker is None or broker.epoch != payload["broker_epoch"]:
            return _error(
                ErrorCode.stale_broker_epoch,
                f"broker {broker_id} epoch {payload['broker_epoch']} is stale",
            )
        if state.leader != broker_id:
            return _error(
                ErrorCode.not_leader_or_follower,
                f"broker {broker_id} does not lead {topic}-{index}",
            )
        if payload["leader_epoch"] != state.leader_epoch:
            return _error(ErrorCode.fenced_leader_epoch)
        if payload["partition_epoch"] != state.partition_epoch:
            return _error(ErrorCode.invalid_update_version)
        isr = tuple(int(r) for r in payload["isr"])
        if broker_id not in isr or not set(isr) <= set(state.replicas):
            return _error(
                ErrorCode.invalid_request, f"ISR {list(isr)} must hold the leader and only replicas"
            )
        changes = Changes(self.image, f"broker {broker_id}")
        alive = changes.alive()
        joining = [r for r in isr if r not in state.isr]
        ineligible = [r for r in joining if r not in alive]
        if ineligible:
            return _error(ErrorCode.ineligible_replica, f"brokers {ineligible} are not alive")
        if isr != state.isr:
            reason = "caught up" if joining else "fell behind"
            changes.put_partition(
                replace(state, isr=isr, partition_epoch=state.partition_epoch + 1), reason
            )
            self._commit(changes)
        return {"error_code": 0, "isr": list(isr)}

    def request_reassign_partitions(self, payload: dict[str, Any]) -> dict[str, Any]:
        """KIP-455: move replicas — add the new ones, let them catch up, switch, drop the old."""
        changes = Changes(self.image, payload.get("actor") or "controller")
        allow_rf_change = bool(payload.get("allow_replication_factor_change", True))
        results = []
        for topic, index, target in payload["partitions"]:
            key = {"topic": topic, "partition": index}
            info = changes.topic(topic)
            if info is None or not 0 <= index < len(info.partitions):
                results.append({**key, **_error(ErrorCode.unknown_topic_or_partition)})
                continue
            state = info.partitions[index]
            if target is None:
                if not (state.adding or state.removing):
                    results.append({**key, **_error(ErrorCode.no_reassignment_in_progress)})
                    continue
                original = tuple(r for r in state.replicas if r not in state.adding)
                changes.put_partition(
                    self._settle(state, original, changes.alive()), "reassignment cancelled"
                )
                results.append({**key, **_error(ErrorCode.none)})
                continue
            target = tuple(int(r) for r in target)
            error = self._check_assignment([list(target)])
            if error:
                results.append({**key, **_error(ErrorCode.invalid_replica_assignment, error)})
                continue
            current = (
                tuple(r for r in state.replicas if r not in state.adding)
                if state.adding
                else state.replicas
            )
            if not allow_rf_change and len(target) != len(current):
                results.append(
                    {
                        **key,
                        **_error(
                            ErrorCode.invalid_replication_factor,
                            "The replication factor is changed",
                        ),
                    }
                )
                continue
            adding = tuple(r for r in target if r not in current)
            removing = tuple(r for r in current if r not in target)
            if not adding and not removing and target == state.replicas:
                results.append({**key, **_error(ErrorCode.none)})
                continue
            moving = replace(
                state,
                replicas=tuple(dict.fromkeys(target + current)),
                adding=adding,
                removing=removing,
                partition_epoch=state.partition_epoch + 1,
            )
            changes.put_partition(moving, f"reassigning to {list(target)}")
            changes.events.append(
                Event(
                    kind="admin",
                    message=f"{topic}-{index}: reassigning replicas {list(current)} → {list(target)}",
                    topic=topic,
                    partition=index,
                    actor=changes.actor,
                )
            )
            self._complete_reassignment(changes, topic, index)
            results.append({**key, **_error(ErrorCode.none)})
        self._commit(changes)
        return {"error_code": 0, "partitions": results}

    def _settle(
        self, state: PartitionState, replicas: tuple[int, ...], alive: set[int]
    ) -> PartitionState:
        """The partition on exactly `replicas`, its leader among them."""
        isr = tuple(r for r in state.isr if r in replicas) or (replicas[0],)
        settled = replace(
            state,
            replicas=replicas,
            isr=isr,
            adding=(),
            removing=(),
            partition_epoch=state.partition_epoch + 1,
        )
        if state.leader in replicas and state.leader in isr:
            return settled
        leader, new_isr = elect_leader(settled, alive, unclean=False)
        return _with_leader(settled, leader, new_isr)

    def _complete_reassignment(self, changes: Changes, topic: str, index: int) -> None:
        info = changes.topic(topic)
        if info is None:
            return
        state = info.partitions[index]
        if not (state.adding or state.removing):
            return
        target = tuple(r for r in state.replicas if r not in state.removing)
        if all(r in state.isr for r in target):
            changes.put_partition(
                self._settle(state, target, changes.alive()), "reassignment complete"
            )

    def _complete_reassignments(self) -> None:
        """A backstop: reassignments normally complete on the ISR change that allows it."""
        if time.monotonic() - self._last_reassignment_check < REASSIGNMENT_CHECK_INTERVAL_S:
            return
        self._last_reassignment_check = time.monotonic()
        changes = Changes(self.image)
        for topic in self.image.topics.values():
            for state in topic.partitions:
                if state.adding or state.removing:
                    self._complete_reassignment(changes, topic.name, state.index)
        self._commit(changes)

    def request_list_reassignments(self, payload: dict[str, Any]) -> dict[str, Any]:
        wanted = payload.get("partitions")
        wanted_set = None if wanted is None else {(t, int(p)) for t, p in wanted}
        ongoing = []
        for topic in self.image.topics.values():
            for state in topic.partitions:
                if not (state.adding or state.removing):
                    continue
                if wanted_set is not None and (topic.name, state.index) not in wanted_set:
                    continue
                ongoing.append(
                    {
                        "topic": topic.name,
                        "partition": state.index,
                        "replicas": list(state.replicas),
                        "adding": list(state.adding),
                        "removing": list(state.removing),
                    }
                )
        return {"error_code": 0, "reassignments": ongoing}

    def request_decommission_broker(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Move every replica off a broker, each to the live broker holding the fewest."""
        broker_id = int(payload["broker_id"])
        if broker_id not in self.image.brokers:
            return _error(ErrorCode.broker_not_available, f"broker {broker_id} is unknown")
        load: dict[int, int] = {b: 0 for b in self._placeable_brokers() if b != broker_id}
        for topic in self.image.topics.values():
            for state in topic.partitions:
                for r in state.replicas:
                    if r in load:
                        load[r] += 1
        moves = []
        for topic in self.image.topics.values():
            for state in topic.partitions:
                if broker_id not in state.replicas:
                    continue
                candidates = sorted((n, b) for b, n in load.items() if b not in state.replicas)
                if not candidates:
                    return _error(
                        ErrorCode.invalid_replication_factor,
                        f"no broker can take {topic.name}-{state.index} from broker {broker_id}",
                    )
                replacement = candidates[0][1]
                load[replacement] += 1
                target = [
                    replacement if r == broker_id else r
                    for r in state.replicas
                    if r not in state.adding
                ]
                moves.append([topic.name, state.index, target])
        if not moves:
            return {"error_code": 0, "partitions": []}
        return self.request_reassign_partitions(
            {"partitions": moves, "actor": payload.get("actor") or "controller"}
        )

    def request_controlled_shutdown(self, payload: dict[str, Any]) -> dict[str, Any]:
        """A broker is stopping: move its leaderships and ISR memberships away first."""
        broker_id = int(payload["broker_id"])
        known = self.image.brokers.get(broker_id)
        if known is None or not known.alive or known.incarnation != payload.get("incarnation"):
            return _error(ErrorCode.stale_broker_epoch, f"broker {broker_id} is not registered")
        changes = Changes(self.image, f"broker {broker_id}")
        changes.put_broker(replace(known, shutting_down=True))
        changes.events.append(
            Event(
                kind="broker_down",
                message=f"broker {broker_id} is shutting down",
                broker_id=broker_id,
            )
        )
        self._move_leadership_away(
            changes,
            broker_id,
            self.settings.flag("unclean.leader.election.enable"),
            reason=f"broker {broker_id} controlled shutdown",
            still_alive=True,
        )
        self._commit(changes)
        remaining = [
            f"{s.topic}-{s.index}"
            for s in changes.partitions_of(broker_id)
            if s.leader == broker_id
        ]
        return {"error_code": 0, "remaining_partitions": remaining}

    def _elect_unclean(
        self, changes: Changes, partitions: list[tuple[str, int]] | None
    ) -> dict[tuple[str, int], ErrorCode]:
        alive = changes.alive()
        results: dict[tuple[str, int], ErrorCode] = {}
        for topic in changes.all_topics():
            for state in topic.partitions:
                key = (topic.name, state.index)
                if partitions is not None and key not in partitions:
                    continue
                if state.leader != NO_LEADER:
                    results[key] = ErrorCode.election_not_needed
                    continue
                leader, isr = elect_leader(state, alive, unclean=True)
                if leader == NO_LEADER:
                    results[key] = ErrorCode.eligible_leaders_not_available
                else:
                    changes.put_partition(_with_leader(state, leader, isr), "unclean election")
                    results[key] = ErrorCode.none
        return results


def _apply_incremental(
    configs: dict[str, str], ops: list[dict[str, Any]], defaults: Mapping[str, str]
) -> tuple[dict[str, str], str | None]:
    """Kafka's SET / DELETE / APPEND / SUBTRACT; APPEND and SUBTRACT start from the value in
    effect, the default when the topic has no override."""
    for op in ops:
        name, kind, value = op["name"], int(op["op"]), op.get("value")
        if kind == 0:  # SET
            if value is None:
                return configs, f"Null value not supported for : {name}"
            configs[name] = value
        elif kind == 1:  # DELETE
            configs.pop(name, None)
        elif kind in (2, 3):  # APPEND / SUBTRACT, for list configs
            definition = TOPIC_CONFIGS.get(name)
            if definition is None or definition.type is not ConfigType.LIST:
                return configs, f"Config value append is not allowed for config key: {name}"
            start = configs[name] if name in configs else defaults.get(name, "")
            current = [v for v in start.split(",") if v]
            items = [v for v in (value or "").split(",") if v]
            if kind == 2:
                current += [v for v in items if v not in current]
            else:
                current = [v for v in current if v not in items]
            configs[name] = ",".join(current)
        else:
            return configs, f"Unknown config operation {kind} for {name}"
    return configs, None


CONTROLLER: Controller | None = None
TICK_INTERVAL_S = 0.1


class ControllerBootstep(bootsteps.StartStopStep):
    """Runs a controller inside a Celery worker started with --controller-id."""

    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker: Any, controller_id: int | None = None, **options: Any) -> None:
        super().__init__(worker, **options)
        self.controller_id = int(controller_id) if controller_id else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, worker: Any) -> None:
        global CONTROLLER
        if self.controller_id is None:
            return
        client = redis.Redis.from_url(env.REDIS_URL)
        CONTROLLER = Controller(
            self.controller_id, client, ControllerSettings(env.SESSION_TIMEOUT_MS, broker_values())
        )
        self._thread = threading.Thread(
            target=self._loop, args=(CONTROLLER,), name="controller", daemon=True
        )
        self._thread.start()
        log.info("controller %s started", self.controller_id)

    def _loop(self, controller: Controller) -> None:
        while not self._stop.wait(TICK_INTERVAL_S):
            try:
                controller.tick()
            except Exception:
                log.exception("controller %s: control loop turn failed", controller.node_id)

    def stop(self, worker: Any) -> None:
        global CONTROLLER
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if CONTROLLER is not None:
            CONTROLLER.release()
            CONTROLLER = None
