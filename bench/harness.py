"""What every workload shares: clusters of its own, CPU meters, result rows."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from brokers.coordinator.offsets_topic import OFFSETS_TOPIC
from kafkaweb import env
from kafkaweb.cluster import Cluster, ClusterSpec

BENCH_DIR = env.BASE_DIR / "var" / "bench"
SESSION_TIMEOUT_MS = 1500
# After the offsets topic appears, its coordinators load; then the cluster is quiet.
SETTLE_S = 1.0


# Throughput runs per figure, the best kept (a shared machine only ever slows a run down).
ROUNDS = 3


@dataclass
class Result:
    """One figure: what was measured, its value, and where it stands against its target."""

    section: str
    name: str
    value: float
    unit: str
    target: str = ""
    ok: bool | None = None
    # Other figures of the same run this one is compared with: name → value.
    versus: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@contextlib.contextmanager
def cluster(
    brokers: int = 1, *, controllers: int = 1, broker_config: str = ""
) -> Iterator[Cluster]:
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as tmp:
        spec = ClusterSpec.isolated(
            Path(tmp),
            brokers=brokers,
            controllers=controllers,
            broker_config=broker_config,
            session_timeout_ms=SESSION_TIMEOUT_MS,
        )
        running = Cluster(spec)
        with running.running(web=False):
            running.wait_until_ready()
            wait_until_settled(running)
            yield running


def wait_until_settled(cluster: Cluster) -> None:
    """Until `__consumer_offsets` has its leaders and their coordinators have loaded.

    The controller creates it once enough brokers are up, after the cluster is ready;
    measuring before then would time that one-off event, not the steady state.
    """
    wait_for_leaders(_admin(cluster), OFFSETS_TOPIC, timeout_s=60)
    time.sleep(SETTLE_S)


def create_topic(
    cluster: Cluster, name: str, partitions: int, replication_factor: int, **configs: str
) -> None:
    from confluent_kafka.admin import NewTopic

    admin = _admin(cluster)
    admin.create_topics([NewTopic(name, partitions, replication_factor, config=configs)])[
        name
    ].result(30)
    wait_for_leaders(admin, name)


def _admin(cluster: Cluster) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": cluster.spec.bootstrap_servers})


def wait_for_leaders(admin: Any, name: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        topic = admin.list_topics(name, timeout=10).topics.get(name)
        if (
            topic is not None
            and topic.error is None
            and topic.partitions
            and all(p.leader >= 0 for p in topic.partitions.values())
        ):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topic {name} has no leaders after {timeout_s:.0f} s")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU used by some processes over a stretch of wall time, in % of one core."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self._start = [cpu_seconds(p) for p in self.pids]
        self._t0 = time.perf_counter()

    def percent(self) -> list[float]:
        elapsed = time.perf_counter() - self._t0
        return [
            100 * (cpu_seconds(p) - s) / elapsed
            for p, s in zip(self.pids, self._start, strict=True)
        ]


def broker_pids(cluster: Cluster) -> list[int]:
    return [cluster.processes[f"broker-{n}"].pid for n in range(1, cluster.spec.brokers + 1)]


def quantile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]
