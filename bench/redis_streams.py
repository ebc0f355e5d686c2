"""The alternative a Python team would reach for: Redis Streams through redis-py."""

from __future__ import annotations

import shutil
import subprocess
import time

import redis

from bench.harness import Result
from kafkaweb.cluster import free_port, wait_for_port

BATCH = 1024


def run(quick: bool = False) -> dict[str, float]:
    """Records/s producing (pipelined XADD) and consuming (XREAD in batches of 10,000)."""
    count = 200_000 if quick else 1_000_000
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is needed for the Redis Streams comparison")
    port = free_port()
    server = subprocess.Popen(
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
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_for_port("127.0.0.1", port, 10, server)
        client = redis.Redis(port=port)
        payload = b"x" * 100
        started = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for i in range(count):
            pipe.xadd("bench", {"v": payload})
            if (i + 1) % BATCH == 0:
                pipe.execute()
        pipe.execute()
        produce = count / (time.perf_counter() - started)
        started = time.perf_counter()
        last, got = "0", 0
        while got < count:
            reply = client.xread({"bench": last}, count=10000)
            entries = reply[0][1]
            got += len(entries)
            last = entries[-1][0]
        consume = count / (time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait(10)
    return {"produce": produce, "consume": consume, "count": count}


def compare(kafkaweb: list[Result], baseline: dict[str, float]) -> list[Result]:
    """Put the ratios to Redis Streams on the single-broker 100 B figures."""
    out = []
    for result in kafkaweb:
        if (
            result.section != "throughput"
            or "1 broker" not in result.name
            or "× 100 B" not in result.name
        ):
            continue
        kind = "produce" if result.name.startswith("produce") else "consume"
        ratio = result.value / baseline[kind]
        target = 5 if kind == "produce" else 2
        out.append(
            Result(
                "versus Redis Streams",
                f"{kind}: Kafkaweb 1 broker ÷ Redis Streams (100 B)",
                ratio,
                "×",
                f"≥ {target}×",
                ratio >= target,
                versus={"kafkaweb rec/s": result.value, "redis streams rec/s": baseline[kind]},
            )
        )
    return out
