"""`python -m bench [--quick]`: every workload in one run; a table, a JSON file and a PNG plot."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
import traceback
from collections.abc import Callable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kafkaweb.settings")

from bench import failover, latency, redis_streams, report, throughput
from bench.harness import BENCH_DIR, Result
from kafkaweb import env

RESULTS_DIR = env.BASE_DIR / "bench" / "results"


def storage(quick: bool) -> list[Result]:
    from bench import storage as storage_bench

    return storage_bench.results(BENCH_DIR / "storage", quick)


def groups(quick: bool) -> list[Result]:
    from bench import groups as groups_bench

    return groups_bench.results(quick)


def ui(quick: bool) -> list[Result]:
    from bench import ui as ui_bench

    return ui_bench.results(quick)


WORKLOADS: list[tuple[str, Callable[[bool], list[Result]]]] = [
    ("throughput", throughput.run),
    ("latency", latency.run),
    ("failover", failover.run),
    ("storage", storage),
    ("groups", groups),
    ("ui", ui),
]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    parser.add_argument("--only", nargs="*", help="run only these workloads")
    args = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC)
    results: list[Result] = []
    failures = []
    for name, workload in WORKLOADS:
        if args.only and name not in args.only:
            continue
        print(f"[bench] {name}...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            results += workload(args.quick)
        except Exception:
            failures.append(name)
            traceback.print_exc()
        print(f"[bench] {name} took {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    if not args.only or "throughput" in args.only:
        print("[bench] redis streams...", file=sys.stderr, flush=True)
        try:
            results += redis_streams.compare(results, redis_streams.run(args.quick))
        except Exception:
            failures.append("redis streams")
            traceback.print_exc()
    stamp = started.strftime("%Y-%m-%dT%H%M%S")
    json_path = RESULTS_DIR / f"{stamp}.json"
    png_path = RESULTS_DIR / f"{stamp}.png"
    md_path = RESULTS_DIR / f"{stamp}.md"
    report.write_json(json_path, results, started.isoformat(), args.quick)
    report.plot(png_path, results)
    machine = report.machine()
    when = (
        f"{started:%Y-%m-%d %H:%M} UTC on {machine['cpu']} "
        f"({machine['cores']} cores, {machine['memory_gb']} GB)"
    )
    md_path.write_text(f"{when}\n\n{report.markdown(results)}\n")
    print()
    print(report.table(results))
    print()
    print(when)
    print(
        f"results: {json_path.relative_to(env.BASE_DIR)}  plot: {png_path.relative_to(env.BASE_DIR)}"
        f"  table: {md_path.relative_to(env.BASE_DIR)}"
    )
    if failures:
        print(f"workloads that failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
