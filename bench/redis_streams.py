"""The alternative a Python team would reach for: Redis Streams through redis-py."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import redis

from bench.harness import BENCH_DIR, ROUNDS, Result
from kafkaweb.cluster import private_redis

BATCH = 1024


def run(quick: bool = False, rounds: int = ROUNDS) -> dict[str, float]:
    """Records/s producing (pipelined XADD) and consuming (XREAD in batches of 10,000),
    the best of `rounds` runs each, as for Kafkaweb."""
    count = 200_000 if quick else 1_000_000
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    produce = consume = 0.0
    with tempfile.TemporaryDirectory(dir=BENCH_DIR) as tmp, private_redis(Path(tmp)) as url:
        client = redis.Redis.from_url(url)
        payload = b"x" * 100
        for round_ in range(1 if quick else rounds):
            stream = f"bench-{round_}"
            started = time.perf_counter()
            pipe = client.pipeline(transaction=False)
            for i in range(count):
                pipe.xadd(stream, {"v": payload})
                if (i + 1) % BATCH == 0:
                    pipe.execute()
            pipe.execute()
            produce = max(produce, count / (time.perf_counter() - started))
            started = time.perf_counter()
            last, got = "0", 0
            while got < count:
                reply = client.xread({stream: last}, count=10000)
                entries = reply[0][1]
                got += len(entries)
                last = entries[-1][0]
            consume = max(consume, count / (time.perf_counter() - started))
            client.delete(stream)
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
