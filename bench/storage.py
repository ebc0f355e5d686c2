"""Storage benchmark: append and read throughput next to `dd` on the same disk, and lookup latency."""

from __future__ import annotations

import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import Result
from brokers.log.batch import Record, build_batch
from brokers.log.config import LogConfig
from brokers.log.log import Log

BATCH_BYTES = 16 * 1024
BATCH_SIZES = (1024, 16 * 1024, 64 * 1024, 256 * 1024)
FETCH_BYTES = 1024 * 1024  # Kafka's max.partition.fetch.bytes default
MIB = 1024 * 1024
DEFAULT_DIR = Path(__file__).resolve().parents[1] / "var" / "bench"


def batch_of_exact_size(size: int, records: int, timestamp: int) -> bytes:
    """A RecordBatch v2 of exactly `size` bytes holding `records` records."""
    value = (size - 61) // records - 12
    last = value
    while True:
        batch = build_batch(
            [
                Record(i, timestamp, b"key-%d" % i, b"x" * (last if i == records - 1 else value))
                for i in range(records)
            ]
        )
        if len(batch) == size:
            return batch
        last += size - len(batch)


def open_log(dir: Path, background: ThreadPoolExecutor | None = None) -> Log:
    return Log.open(
        dir,
        LogConfig(),
        topic_id=None,
        recovery_point=0,
        log_start_offset=None,
        high_watermark=None,
        had_clean_shutdown=False,
        background=background,
    )


def timed(action: Callable[[], object], *, children: bool = False) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of an action; CPU of child processes with `children`.

    CPU time is the steadier measure on a shared machine: waiting for a core costs wall
    time but no CPU time.
    """
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    before = resource.getrusage(who)
    start = time.perf_counter()
    action()
    wall = time.perf_counter() - start
    after = resource.getrusage(who)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def dd(args: list[str]) -> tuple[float, float]:
    return timed(
        lambda: subprocess.run(["dd", *args], check=True, capture_output=True), children=True
    )


def append_all(log: Log, batch: bytes, count: int) -> None:
    append = log.append_as_leader
    for _ in range(count):
        append(batch, 0)


def read_back(log: Log, batch_bytes: int, records_per_batch: int) -> None:
    """Fetch everything in FETCH_BYTES reads, as a consumer would, and copy it out."""
    offset = 0
    end = log.log_end_offset
    read = log.read
    pread = os.pread
    while offset < end:
        piece = read(offset, FETCH_BYTES)
        if piece is None:
            break
        data = pread(piece.fd, piece.length, piece.position)
        assert len(data) == piece.length
        offset = piece.first_offset + piece.length // batch_bytes * records_per_batch


def throughput(
    data_dir: Path, total: int, rounds: int, batch_bytes: int = BATCH_BYTES
) -> dict[str, float]:
    """MB/s of Log append and read (read + os.pread) and of dd write and read, same bytes.

    The four run interleaved, `rounds` times, and the best of each counts: other work on
    the machine only ever slows a run down.
    """
    count = total // batch_bytes
    mb = total / 1e6
    records = max(1, batch_bytes // 1024)
    batch = batch_of_exact_size(batch_bytes, records, int(time.time() * 1000))
    best: dict[str, float] = {}

    def keep(name: str, seconds: tuple[float, float]) -> None:
        wall, cpu = seconds
        best[name + "_mb_s"] = max(best.get(name + "_mb_s", 0.0), mb / wall)
        best[name + "_mb_cpu_s"] = max(best.get(name + "_mb_cpu_s", 0.0), mb / max(cpu, 1e-6))

    for _ in range(rounds):
        dd_file = data_dir / "dd.out"
        # Each write starts with no dirty pages left by the one before, or the kernel's
        # writeback throttling would decide the result rather than the writer.
        os.sync()
        block = f"bs={batch_bytes}"
        keep("dd_write", dd(["if=/dev/zero", f"of={dd_file}", block, f"count={count}"]))
        keep("dd_read", dd([f"if={dd_file}", "of=/dev/null", block]))
        dd_file.unlink()
        with ThreadPoolExecutor(max_workers=1) as background:
            log = open_log(data_dir / "bench-0", background)
            os.sync()
            keep("append", timed(lambda log=log: append_all(log, batch, count)))
            keep("read", timed(lambda log=log: read_back(log, batch_bytes, records)))
            log.close()
        shutil.rmtree(data_dir / "bench-0")
    return best


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def lookups(data_dir: Path, batches: int, probes: int = 2000) -> dict[str, float]:
    """µs per offset lookup (a read from a random offset) and per timestamp lookup."""
    dir = data_dir / f"lookup-{batches}-0"
    log = open_log(dir)
    base_ts = int(time.time() * 1000) - batches
    template = [build_batch([Record(0, base_ts + i, b"k", b"v" * 40)]) for i in range(1000)]
    # Timestamps increase with offsets: batch i carries base_ts + i.
    for i in range(batches):
        log.append_as_leader(
            template[i % 1000]
            if i < 1000
            else build_batch([Record(0, base_ts + i, b"k", b"v" * 40)]),
            0,
        )
    log.close()
    log = Log.open(
        dir,
        LogConfig(),
        topic_id=None,
        recovery_point=batches,
        log_start_offset=None,
        high_watermark=None,
        had_clean_shutdown=True,
    )
    rng = random.Random(1)
    offsets = [rng.randrange(batches) for _ in range(probes)]
    offset_us: list[float] = []
    for offset in offsets:
        start = time.perf_counter()
        log.read(offset, 4096)
        offset_us.append((time.perf_counter() - start) * 1e6)
    timestamp_us: list[float] = []
    for offset in offsets:
        start = time.perf_counter()
        found = log.offset_for_timestamp(base_ts + offset)
        timestamp_us.append((time.perf_counter() - start) * 1e6)
        assert found is not None and found[0] == offset
    log.close()
    shutil.rmtree(dir)
    return {
        "offset_lookup_p50_us": statistics.median(offset_us),
        "offset_lookup_p99_us": percentile(offset_us, 0.99),
        "timestamp_lookup_p50_us": statistics.median(timestamp_us),
        "timestamp_lookup_p99_us": percentile(timestamp_us, 0.99),
    }


def run(data_dir: Path = DEFAULT_DIR, quick: bool = False) -> dict[str, object]:
    """Measure everything; `data_dir` is created and removed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        total = 64 * MIB if quick else 1024 * MIB
        big = 100_000 if quick else 1_000_000
        results: dict[str, object] = {"bytes": total, "batch_bytes": BATCH_BYTES}
        results.update(throughput(data_dir, total, rounds=3))
        results["small"] = lookups(data_dir, 10_000)
        results["large"] = lookups(data_dir, big)
        results["large_batches"] = big
        results["by_size"] = {
            size: throughput(data_dir, 32 * MIB, rounds=2, batch_bytes=size) for size in BATCH_SIZES
        }
        return results
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def table(results: dict[str, object]) -> str:
    r: dict[str, float] = {k: v for k, v in results.items() if isinstance(v, float)}
    small = results["small"]
    large = results["large"]
    assert isinstance(small, dict) and isinstance(large, dict)
    size = int(str(results["bytes"])) // MIB
    head = f"{'':32} {'Log':>9} {'dd':>9} {'ratio':>6}   {'Log':>9} {'dd':>9} {'ratio':>6}"
    lines = [
        f"storage benchmark: {size} MiB in {BATCH_BYTES // 1024} KiB batches, best of 3 "
        "interleaved rounds, same disk",
        "",
        f"{'':32} {'MB/s (wall clock)':^26}   {'MB per CPU-second':^26}",
        head,
    ]
    for label, ours, theirs in (
        ("append (append_as_leader)", "append", "dd_write"),
        ("read (read + pread, 1 MiB)", "read", "dd_read"),
    ):
        wall, wall_dd = r[ours + "_mb_s"], r[theirs + "_mb_s"]
        cpu, cpu_dd = r[ours + "_mb_cpu_s"], r[theirs + "_mb_cpu_s"]
        lines.append(
            f"{label:32} {wall:>9.0f} {wall_dd:>9.0f} {wall / wall_dd:>6.2f}   "
            f"{cpu:>9.0f} {cpu_dd:>9.0f} {cpu / cpu_dd:>6.2f}"
        )
    by_size = results["by_size"]
    assert isinstance(by_size, dict)
    lines += ["", "append / dd write by batch size (32 MiB, best of 2; MB per CPU-second)"]
    for batch_bytes, sizes in by_size.items():
        cpu, cpu_dd = sizes["append_mb_cpu_s"], sizes["dd_write_mb_cpu_s"]
        lines.append(
            f"{f'  {batch_bytes // 1024} KiB batches':32} {cpu:>9.0f} {cpu_dd:>9.0f} "
            f"{cpu / cpu_dd:>6.2f}"
        )
    lines += ["", f"{'lookup latency (µs)':40} {'p50':>8} {'p99':>8}"]
    for count, stats in ((10_000, small), (results["large_batches"], large)):
        for kind, key in (("offset → batch", "offset"), ("timestamp → offset", "timestamp")):
            lines.append(
                f"{f'  {kind}, {count:,} batches':40} "
                f"{stats[key + '_lookup_p50_us']:>8.1f} {stats[key + '_lookup_p99_us']:>8.1f}"
            )
    return "\n".join(lines)


def results(data_dir: Path = DEFAULT_DIR, quick: bool = False) -> list[Result]:
    """The storage figures as rows of the benchmark report, each next to dd."""
    measured = run(data_dir, quick)
    r: dict[str, float] = {k: v for k, v in measured.items() if isinstance(v, float)}
    size = int(str(measured["bytes"])) // MIB
    rows = []
    for kind, ours, theirs, target in (
        ("append", "append", "dd_write", 0.7),
        ("read", "read", "dd_read", 0.8),
    ):
        ratio = r[ours + "_mb_s"] / r[theirs + "_mb_s"]
        rows.append(
            Result(
                "storage",
                f"{kind} {size} MiB in {BATCH_BYTES // 1024} KiB batches ÷ dd",
                ratio,
                "×",
                f"≥ {target:g}× dd",
                ratio >= target,
                versus={"log MB/s": r[ours + "_mb_s"], "dd MB/s": r[theirs + "_mb_s"]},
                note=f"per CPU-second {r[ours + '_mb_cpu_s'] / r[theirs + '_mb_cpu_s']:.2f}× dd",
            )
        )
    by_size = measured["by_size"]
    assert isinstance(by_size, dict)
    for batch_bytes, sizes in by_size.items():
        rows.append(
            Result(
                "storage",
                f"append 32 MiB in {batch_bytes // 1024} KiB batches ÷ dd",
                sizes["append_mb_s"] / sizes["dd_write_mb_s"],
                "×",
                note=f"log MB/s {sizes['append_mb_s']:,.0f}; dd MB/s {sizes['dd_write_mb_s']:,.0f}",
            )
        )
    for count, stats in (
        (10_000, measured["small"]),
        (measured["large_batches"], measured["large"]),
    ):
        assert isinstance(stats, dict)
        for kind, key in (("offset → batch", "offset"), ("timestamp → offset", "timestamp")):
            rows.append(
                Result(
                    "storage",
                    f"lookup {kind} in a {count:,}-batch log (p50)",
                    stats[key + "_lookup_p50_us"],
                    "µs",
                    note=f"p99 {stats[key + '_lookup_p99_us']:.1f} µs",
                )
            )
    return rows


if __name__ == "__main__":
    print(table(run(DEFAULT_DIR, quick="--quick" in sys.argv)))
