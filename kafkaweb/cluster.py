"""Starting and stopping a whole Kafkaweb cluster: Redis, controllers, brokers and the web app.

`manage.py cluster` (what `make run` starts) and the test suite both use this module, so the
processes a test talks to are the processes a user runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kafkaweb import env

PYTHON = sys.executable
BIN = Path(PYTHON).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def consecutive_free_ports(count: int) -> int:
    """The first of `count` consecutive ports nothing listens on now."""
    for _ in range(200):
        base = free_port()
        if base + count >= 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError(f"no run of {count} free ports")


@contextlib.contextmanager
def private_redis(directory: Path) -> Iterator[str]:
    """A throwaway redis-server on a free port that keeps nothing on disk; yields its URL."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is needed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, 10, process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def metadata_broker_count(address: tuple[str, int]) -> int:
    """How many live brokers one broker lists in a Metadata v1 answer (topics: none)."""
    request = struct.pack(">hhih", 3, 1, 1, 5) + b"ready" + struct.pack(">i", 0)
    with socket.create_connection(address, timeout=2) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", _read_exactly(sock, 4))[0]
        body = _read_exactly(sock, size)
    # correlation id, then the brokers array's length.
    return int(struct.unpack_from(">i", body, 4)[0])


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    chunks = []
    while count:
        chunk = sock.recv(count)
        if not chunk:
            raise ValueError("connection closed")
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def wait_for_port(
    host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode} before listening on {port}"
            )
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s:.0f} s")


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes] | None = None
    _pump: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid


@dataclass
class ClusterSpec:
    """Where and how a cluster runs; defaults come from the environment (kafkaweb.env)."""

    data_dir: Path = field(default_factory=lambda: env.DATA_DIR)
    host: str = field(default_factory=lambda: env.HOST)
    brokers: int = field(default_factory=lambda: env.BROKER_COUNT)
    broker_port: int = field(default_factory=lambda: env.BROKER_PORT)
    controllers: int = field(default_factory=lambda: env.CONTROLLER_COUNT)
    web_port: int = field(default_factory=lambda: env.WEB_PORT)
    redis_url: str = field(default_factory=lambda: os.environ.get("REDIS_URL", ""))
    redis_port: int = field(default_factory=lambda: env.REDIS_PORT)
    database_url: str = field(default_factory=lambda: env.DATABASE_URL)
    session_timeout_ms: int = field(default_factory=lambda: env.SESSION_TIMEOUT_MS)
    broker_config: str = field(default_factory=lambda: os.environ.get("KAFKAWEB_BROKER_CONFIG", ""))
    echo: IO[str] | None = None

    @classmethod
    def isolated(
        cls,
        data_dir: Path,
        *,
        brokers: int = 3,
        controllers: int = 1,
        broker_config: str = "",
        session_timeout_ms: int = 1500,
    ) -> ClusterSpec:
        """A cluster of its own — free ports, its own Redis and database — for tests and benchmarks."""
        return cls(
            data_dir=data_dir,
            host="127.0.0.1",
            brokers=brokers,
            broker_port=consecutive_free_ports(brokers),
            controllers=controllers,
            web_port=free_port(),
            redis_url="",
            redis_port=free_port(),
            database_url=f"sqlite:///{data_dir / 'metadata.sqlite3'}",
            session_timeout_ms=session_timeout_ms,
            broker_config=broker_config,
        )

    def broker_address(self, node_id: int) -> tuple[str, int]:
        return self.host, self.broker_port + node_id - 1

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(
            f"{h}:{p}" for h, p in (self.broker_address(n) for n in range(1, self.brokers + 1))
        )

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    def environment(self) -> dict[str, str]:
        values = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "kafkaweb.settings",
            "KAFKAWEB_DATA_DIR": str(self.data_dir),
            "KAFKAWEB_HOST": self.host,
            "KAFKAWEB_BROKERS": str(self.brokers),
            "KAFKAWEB_BROKER_PORT": str(self.broker_port),
            "KAFKAWEB_WEB_PORT": str(self.web_port),
            "KAFKAWEB_SESSION_TIMEOUT_MS": str(self.session_timeout_ms),
            "KAFKAWEB_BROKER_CONFIG": self.broker_config,
            "REDIS_URL": self.effective_redis_url,
            "PYTHONUNBUFFERED": "1",
        }
        if self.database_url:
            values["DATABASE_URL"] = self.database_url
        else:
            values.pop("DATABASE_URL", None)
        return values


class Cluster:
    """The processes of one cluster, each startable, stoppable and killable on its own."""

    def __init__(self, spec: ClusterSpec) -> None:
        self.spec = spec
        self.processes: dict[str, Process] = {}
        self.log_dir = spec.data_dir / "logs"
        self._echo_lock = threading.Lock()

    # Processes -----------------------------------------------------------------------------

    def _spawn(
        self, name: str, argv: list[str], extra_env: Mapping[str, str] | None = None
    ) -> Process:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        process = self.processes.get(name)
        if process is not None and process.running:
            raise RuntimeError(f"{name} is already running")
        environment = {**self.spec.environment(), **(extra_env or {})}
        process = Process(name, argv, environment, self.log_dir / f"{name}.log")
        process.popen = subprocess.Popen(
            argv,
            cwd=env.BASE_DIR,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process._pump = threading.Thread(target=self._pump, args=(process,), daemon=True)
        process._pump.start()
        self.processes[name] = process
        return process

    def _pump(self, process: Process) -> None:
        assert process.popen is not None and process.popen.stdout is not None
        with process.log_path.open("ab") as log:
            for line in process.popen.stdout:
                log.write(line)
                log.flush()
                if self.spec.echo is not None:
                    with self._echo_lock:
                        self.spec.echo.write(
                            f"{process.name:>12} | {line.decode(errors='replace')}"
                        )
                        self.spec.echo.flush()

    def start_redis(self) -> None:
        if self.spec.redis_url:
            return
        if shutil.which("redis-server") is None:
            raise SystemExit(
                "redis-server is not installed (apt-get install redis-server), or set REDIS_URL"
            )
        redis_dir = self.spec.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        process = self._spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(self.spec.redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(redis_dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
        )
        wait_for_port("127.0.0.1", self.spec.redis_port, 10, process.popen)

    def migrate(self) -> None:
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"],
            cwd=env.BASE_DIR,
            env=self.spec.environment(),
            check=True,
        )

    def _celery(self, *args: str) -> list[str]:
        return [
            str(BIN / "celery"),
            "-A",
            "kafkaweb",
            "worker",
            "--pool",
            "solo",
            "--concurrency",
            "1",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
            *args,
        ]

    def start_controller(self, node_id: int) -> Process:
        return self._spawn(
            f"controller-{node_id}",
            self._celery(
                "--controller-id",
                str(node_id),
                "-Q",
                f"controller.{node_id}",
                "-n",
                f"controller-{node_id}@%h",
            ),
        )

    def start_broker(self, node_id: int, wait: bool = True) -> Process:
        process = self._spawn(
            f"broker-{node_id}",
            self._celery(
                "--broker-id", str(node_id), "-Q", f"broker.{node_id}", "-n", f"broker-{node_id}@%h"
            ),
        )
        if wait:
            wait_for_port(*self.spec.broker_address(node_id), 60, process.popen)
        return process

    def start_web(self) -> Process:
        process = self._spawn(
            "web",
            [
                str(BIN / "daphne"),
                "-b",
                self.spec.host,
                "-p",
                str(self.spec.web_port),
                "kafkaweb.asgi:application",
            ],
        )
        wait_for_port(self.spec.host, self.spec.web_port, 60, process.popen)
        return process

    def start_monitor(self) -> Process:
        """`manage.py monitor`: consumer lag for the UI, computed every second."""
        return self._spawn("monitor", [PYTHON, "manage.py", "monitor"])

    def start(self, *, web: bool = True) -> None:
        self.start_redis()
        self.migrate()
        for n in range(1, self.spec.controllers + 1):
            self.start_controller(n)
        for n in range(1, self.spec.brokers + 1):
            self.start_broker(n, wait=False)
        for n in range(1, self.spec.brokers + 1):
            wait_for_port(*self.spec.broker_address(n), 60, self.processes[f"broker-{n}"].popen)
        self.start_monitor()
        if web:
            self.start_web()

    def send_signal(self, name: str, sig: signal.Signals) -> None:
        process = self.processes[name]
        if process.running:
            os.kill(process.pid, sig)

    def stop_process(
        self, name: str, timeout_s: float = 30.0, sig: signal.Signals = signal.SIGTERM
    ) -> int | None:
        process = self.processes.get(name)
        if process is None or process.popen is None:
            return None
        if process.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)
                os.kill(process.pid, sig)
            try:
                process.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.popen.wait(10)
        if process._pump is not None:
            process._pump.join(5)
        return process.popen.returncode

    def kill(self, name: str) -> None:
        self.stop_process(name, timeout_s=10, sig=signal.SIGKILL)

    def stop(self) -> None:
        """Stop everything in the order that keeps data safe: web, brokers, controllers, Redis.

        Brokers stop together (each hands its leaderships over first) while a controller is
        still there to move them.
        """
        for prefix in ("web", "monitor", "broker-", "controller-", "redis"):
            group = [n for n in self.processes if n.startswith(prefix)]
            for name in group:
                with contextlib.suppress(ProcessLookupError):
                    self.send_signal(name, signal.SIGTERM)
            for name in group:
                self.stop_process(name)

    def wait_until_ready(self, timeout_s: float = 60.0) -> None:
        """Until every broker names every other alive in its Metadata answers.

        Asking one broker is not enough: a client that next asks a broker still catching up
        with the registrations would drop the brokers it does not list.
        """
        deadline = time.monotonic() + timeout_s
        pending = list(range(1, self.spec.brokers + 1))
        while pending and time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError):
                if metadata_broker_count(self.spec.broker_address(pending[0])) == self.spec.brokers:
                    pending.pop(0)
                    continue
            time.sleep(0.1)
        if pending:
            raise TimeoutError(f"brokers {pending} were not ready after {timeout_s:.0f} s")

    def kill_all(self) -> None:
        """SIGKILL every process, no clean stop: for a throwaway cluster whose data nobody keeps."""
        for name in self.processes:
            self.kill(name)

    @contextlib.contextmanager
    def running(self, *, web: bool = True, keep: bool = True) -> Iterator[Cluster]:
        """Start, and stop at the end: cleanly, or (keep=False) by killing everything."""
        try:
            self.start(web=web)
            yield self
        finally:
            if keep:
                self.stop()
            else:
                self.kill_all()
