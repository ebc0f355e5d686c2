"""Every environment variable Kafkaweb reads, with its default, in one place."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.lower() in {"1", "true", "yes", "on"}


HOST = os.environ.get("KAFKAWEB_HOST", "127.0.0.1")
BROKER_COUNT = _int("KAFKAWEB_BROKERS", 3)
BROKER_PORT = _int("KAFKAWEB_BROKER_PORT", 9092)
CONTROLLER_COUNT = _int("KAFKAWEB_CONTROLLERS", 2)
WEB_PORT = _int("KAFKAWEB_WEB_PORT", 8000)
REDIS_PORT = _int("KAFKAWEB_REDIS_PORT", 6399)
DATA_DIR = Path(os.environ.get("KAFKAWEB_DATA_DIR", str(BASE_DIR / "var"))).resolve()
REDIS_URL = os.environ.get("REDIS_URL", "") or f"redis://127.0.0.1:{REDIS_PORT}/0"
PRIVATE_REDIS = not os.environ.get("REDIS_URL")
DATABASE_URL = os.environ.get("DATABASE_URL", "")
DEBUG = _flag("KAFKAWEB_DEBUG", False)
# broker.session.timeout.ms: how long a silent broker keeps its partitions.
SESSION_TIMEOUT_MS = _int("KAFKAWEB_SESSION_TIMEOUT_MS", 2000)
HEARTBEAT_INTERVAL_MS = _int("KAFKAWEB_HEARTBEAT_INTERVAL_MS", 250)


def broker_port(node_id: int) -> int:
    """Broker N listens on KAFKAWEB_BROKER_PORT + N - 1."""
    return BROKER_PORT + node_id - 1


def bootstrap_servers(count: int = BROKER_COUNT) -> str:
    return ",".join(f"{HOST}:{broker_port(n)}" for n in range(1, count + 1))
