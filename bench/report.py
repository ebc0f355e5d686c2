"""The benchmark's outputs: a table on the terminal, a JSON file and a PNG plot."""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness import Result


def machine() -> dict[str, Any]:
    import os

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_gb),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def _format(value: float, unit: str) -> str:
    if unit in ("rec/s", "MB/s") or value >= 1000:
        return f"{value:,.0f} {unit}"
    if unit == "×":
        return f"{value:.2f}×"
    return f"{value:.3g} {unit}"


def table(results: Sequence[Result]) -> str:
    rows = [("section", "figure", "value", "target", "", "note")]
    for r in results:
        verdict = "" if r.ok is None else ("ok" if r.ok else "MISSED")
        note = r.note
        if r.versus:
            note = "; ".join(f"{k} {_format(v, '')}".strip() for k, v in r.versus.items()) + (
                f"; {note}" if note else ""
            )
        rows.append((r.section, r.name, _format(r.value, r.unit), r.target, verdict, note))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[c].ljust(widths[c]) for c in range(5)] + [row[5]]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(results: Sequence[Result]) -> str:
    lines = [
        "| section | figure | value | target | | side by side, same run |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        verdict = "" if r.ok is None else ("✓" if r.ok else "✗")
        beside = "; ".join(f"{k} {_format(v, '')}".strip() for k, v in r.versus.items())
        if r.note:
            beside = f"{beside}; {r.note}" if beside else r.note
        lines.append(
            f"| {r.section} | {r.name} | {_format(r.value, r.unit)} | {r.target} | {verdict} "
            f"| {beside} |"
        )
    return "\n".join(lines)


def write_json(path: Path, results: Sequence[Result], started: str, quick: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "started": started,
                "quick": quick,
                "machine": machine(),
                "results": [r.to_json() for r in results],
            },
            indent=2,
        )
    )


def plot(path: Path, results: Sequence[Result]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    throughput = [r for r in results if r.section == "throughput" and r.unit == "rec/s"]
    versus = [r for r in results if r.section == "versus Redis Streams"]
    latency = [r for r in results if r.section == "latency"]
    panels = [p for p in (throughput, versus, latency) if p]
    if not panels:
        return
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.2 * len(panels)))
    axes = list(axes) if len(panels) > 1 else [axes]
    for ax, panel in zip(axes, panels, strict=True):
        if panel is versus:
            labels, kafkaweb, redis_ = [], [], []
            for r in panel:
                labels.append(r.name.split(":")[0])
                kafkaweb.append(r.versus["kafkaweb rec/s"])
                redis_.append(r.versus["redis streams rec/s"])
            xs = range(len(labels))
            ax.bar([x - 0.2 for x in xs], kafkaweb, 0.4, label="Kafkaweb, 1 broker")
            ax.bar([x + 0.2 for x in xs], redis_, 0.4, label="Redis Streams (redis-py)")
            ax.set_xticks(list(xs), labels)
            ax.set_ylabel("records/s (100 B)")
            ax.legend()
            ax.set_title("Kafkaweb vs Redis Streams, same machine, same run")
        else:
            labels = [r.name.replace(": ", ":\n", 1) for r in panel]
            values = [r.value for r in panel]
            ax.barh(labels, values)
            ax.invert_yaxis()
            ax.set_xlabel(panel[0].unit)
            ax.set_title("Throughput" if panel is throughput else "End-to-end latency")
            ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
