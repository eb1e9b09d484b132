"""Shared by the bench scripts: repeat, summarize (median and spread), and record rows for docs/benchmarks.md.

A bench prints its numbers; when ``MLOPS_BENCH_RECORD`` names a file (``bench/run_all.py`` sets it), each row is
also appended to it as one JSON line. Benchmarks never fail on a timing.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any


def summary(values: list[float]) -> dict[str, float]:
    """Median, min, max and count of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def spread(values: list[float], unit: str = "s") -> str:
    s = summary(values)
    return f"median {s['median']:.2f} {unit} (min {s['min']:.2f}, max {s['max']:.2f}, n={s['n']})"


def available_mb() -> float:
    """Memory available to a new process now (``MemAvailable``), in MB."""
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def projected_mb(measured: dict[int, float], rows: int) -> float | None:
    """Peak MB at ``rows``: its own measurement when this size was measured before, else extrapolated along the
    line through the two largest smaller sizes measured (through the origin when only one was measured; None when
    none was)."""
    if rows in measured:
        return measured[rows]
    smaller = sorted(n for n in measured if n < rows)
    if not smaller:
        return None
    if len(smaller) == 1:
        return measured[smaller[0]] * rows / smaller[0]
    lo, hi = smaller[-2:]
    slope = (measured[hi] - measured[lo]) / (hi - lo)
    return measured[hi] + max(slope, 0.0) * (rows - hi)


def does_not_fit(measured: dict[int, float], rows: int, share: float = 0.75) -> str:
    """Why a run at ``rows`` is skipped ('' when it fits): its projected peak over ``share`` of available memory.

    Running it anyway would swap or be killed by the OOM killer, taking the rest of the suite with it.
    """
    need = projected_mb(measured, rows)
    free = available_mb()
    if need is None or need <= share * free:
        return ""
    return (
        f"not run: projected peak {need / 1024:.1f} GB (extrapolated from the smaller sizes) > {share:.0%} of the "
        f"{free / 1024:.1f} GB available"
    )


def record(stage: str, what: str, ours: list[float], baseline: list[float] | None = None, *,
           baseline_name: str = "", ours_mb: float | None = None, baseline_mb: float | None = None,
           rows: int | None = None, note: str = "") -> None:  # fmt: skip
    """Append one row (times in seconds, memory in MB) to ``$MLOPS_BENCH_RECORD`` when it is set."""
    path = os.environ.get("MLOPS_BENCH_RECORD")
    if not path:
        return
    row: dict[str, Any] = {
        "stage": stage, "what": what, "rows": rows, "ours": summary(ours) if ours else None,
        "baseline": summary(baseline) if baseline else None, "baseline_name": baseline_name,
        "ours_mb": ours_mb, "baseline_mb": baseline_mb, "note": note,
    }  # fmt: skip
    with open(path, "a") as handle:
        handle.write(json.dumps(row) + "\n")


def model_dir(root: Path) -> Path:
    """A small saved pyfunc model (logistic regression on two columns ``a``, ``b``) for the serving benches."""
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    folder = root / "model"
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400)})
    model = LogisticRegression().fit(features, (features["a"] + features["b"] > 0).astype(int))
    mlflow.sklearn.save_model(model, folder, pip_requirements=[], pyfunc_predict_fn="predict_proba",
                              signature=infer_signature(features, model.predict_proba(features)[:, 1]))  # fmt: skip
    return folder
