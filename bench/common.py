"""Shared by the bench scripts: repeat, summarize (median and spread), and record rows for docs/benchmarks.md.

A bench prints its numbers; when ``MLOPS_BENCH_RECORD`` names a file (``bench/run_all.py`` sets it), each row is
also appended to it as one JSON line. Benchmarks never fail on a timing.
"""

from __future__ import annotations

import json
import os
import statistics
from typing import Any


def summary(values: list[float]) -> dict[str, float]:
    """Median, min, max and count of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def spread(values: list[float], unit: str = "s") -> str:
    s = summary(values)
    return f"median {s['median']:.2f} {unit} (min {s['min']:.2f}, max {s['max']:.2f}, n={s['n']})"


def record(stage: str, what: str, ours: list[float], baseline: list[float] | None = None, *,
           baseline_name: str = "", ours_mb: float | None = None, baseline_mb: float | None = None,
           rows: int | None = None, note: str = "") -> None:  # fmt: skip
    """Append one row (times in seconds, memory in MB) to ``$MLOPS_BENCH_RECORD`` when it is set."""
    path = os.environ.get("MLOPS_BENCH_RECORD")
    if not path:
        return
    row: dict[str, Any] = {
        "stage": stage, "what": what, "rows": rows, "ours": summary(ours),
        "baseline": summary(baseline) if baseline else None, "baseline_name": baseline_name,
        "ours_mb": ours_mb, "baseline_mb": baseline_mb, "note": note,
    }  # fmt: skip
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")
