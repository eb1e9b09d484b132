"""Monitoring a day of captured rows (issue 33): the served drift check's read of a day's capture, bounded.

A day of ``--sizes`` captured rows (13 feature columns of the churn demo's kinds and the 5 capture columns, one
parquet file per 5,000 rows as a backend flushes by default, 90% answered by v1 and 10% by a v2 canary) is written
under a temporary ``MLOPS_HOME``. Each measurement runs in a fresh child process (its peak RSS is the child's
``VmHWM``):

* ``ours``: what ``DriftReportOperator(current="served")`` does: ``sample_day`` (only the declared and capture
  columns, one record batch at a time, at most ``max_rows`` (100,000) rows kept while reading, seeded) and
  Evidently's column drift of the day and of each version against a 100,000-row reference;
* ``baseline``: the read before issue 33's item 1: every file read whole (``read_day``), concatenated, then sampled;
  then the same Evidently runs.

With ``--join``, the realised-performance join instead (``ModelPerformanceOperator``'s served join): the day's
late labels (every 10th request id of the day labelled, as a labelled day's partition holds each entity once)
joined to the captured predictions by request id, then the realised ROC AUC per version:

* ``join_ours``: ``join_day`` (three columns read, one record batch at a time, each batch joined to the labels
  before the next is read);
* ``join_baseline``: the read before: the day's capture columns read whole (``read_day``), then ``join_labels``.

Prints one JSON object per run and a markdown table. Never asserts a time.
Usage: python bench/bench_served_monitoring.py [--sizes 100000 1000000] [--repeats 1] [--join]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402

MODEL, DAY = "bench_served", "2026-12-01"
NUMERICAL = ["tenure_days", "monthly_charges", "total_charges", "sessions_7d", "avg_session_minutes",
             "support_tickets_30d", "payment_failures_90d", "discount_pct", "last_login_days_ago"]  # fmt: skip
CATEGORICAL = ["plan", "region", "device", "payment_method"]
FILE_ROWS = 5_000
MAX_ROWS = 100_000


def features(rng, n: int):  # noqa: ANN001, ANN201 - numpy Generator -> DataFrame
    import pandas as pd

    frame = pd.DataFrame({c: rng.gamma(2.0, 10.0 * (i + 1), n) for i, c in enumerate(NUMERICAL)})
    for column, values in zip(
        CATEGORICAL,
        (
            ["basic", "standard", "premium"],
            ["north", "south", "east", "west"],
            ["ios", "android", "web"],
            ["card", "paypal", "invoice"],
        ),
        strict=True,
    ):
        frame[column] = rng.choice(values, n)
    return frame


def write_day(home: Path, rows: int) -> None:
    """``rows`` captured rows of MODEL on DAY, one file per FILE_ROWS, as a backend writes them."""
    import datetime as dt

    import numpy as np
    import pandas as pd

    from mlops_provider.ml.capture import (
        CAPTURED_AT,
        PREDICTION,
        REQUEST,
        REQUEST_ID,
        VERSION,
        capture_file_name,
    )  # fmt: skip

    os.environ["MLOPS_HOME"] = str(home)
    from mlops_provider.utils.records import capture_folder

    folder = Path(capture_folder(MODEL, DAY).path)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    start = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)
    for n, first in enumerate(range(0, rows, FILE_ROWS)):
        size = min(FILE_ROWS, rows - first)
        version = "2" if n % 10 == 9 else "1"  # a 10% canary
        frame = features(rng, size)
        frame[REQUEST_ID] = [f"k{first + i}" for i in range(size)]
        frame[REQUEST] = [f"r{first + i}" for i in range(size)]
        frame[PREDICTION] = rng.random(size)
        frame[VERSION] = version
        at = start + dt.timedelta(seconds=first / 20)
        frame[CAPTURED_AT] = pd.Timestamp(at)
        frame.to_parquet(folder / capture_file_name(at, version, 1000 + int(version), n), index=False)


def child(mode: str, home: str) -> None:
    """One measurement in this process; prints JSON with seconds and the peak RSS."""
    os.environ["MLOPS_HOME"] = home
    if mode.startswith("join_"):
        join_child(mode)
        return
    import numpy as np

    from mlops_provider.ml.capture import VERSION
    from mlops_provider.operators.evidently import DriftReportOperator

    op = DriftReportOperator(task_id="drift", dataset="d", model_name=MODEL, numerical_columns=NUMERICAL,
                             categorical_columns=CATEGORICAL, current="served", max_rows=MAX_ROWS)  # fmt: skip
    started = time.perf_counter()
    if mode == "ours":
        served = op._served_rows(DAY)
        frame, rows = served.frame, served.rows
    else:
        from mlops_provider.runtime.capture import read_day

        whole, _ = read_day(MODEL, DAY, NUMERICAL + CATEGORICAL)
        rows = len(whole)
        frame = whole.sample(n=MAX_ROWS, random_state=0) if rows > MAX_ROWS else whole
        del whole
    read = time.perf_counter() - started
    read_peak = _peak_mb()  # the imports and the read (the reference is built after it)
    reference = features(np.random.default_rng(2), MAX_ROWS)
    columns = NUMERICAL + CATEGORICAL
    share, _ = op._evidently(reference, frame[columns])
    for version in sorted(frame[VERSION].astype(str).unique()):
        op._evidently(reference, frame[frame[VERSION].astype(str) == version][columns])
    total = time.perf_counter() - started
    print(json.dumps({"mode": mode, "rows": rows, "sampled": len(frame), "read_s": round(read, 2),
                      "read_peak_mb": round(read_peak, 1), "total_s": round(total, 2), "peak_mb": round(_peak_mb(), 1),
                      "drift_share": share}))  # fmt: skip


def join_child(mode: str) -> None:
    """The served join of the day (``join_ours`` or ``join_baseline``) and the realised metric per version."""
    import pandas as pd
    import pyarrow.parquet as pq

    from mlops_provider.ml.capture import join_labels, label_lookup, realised_by_version
    from mlops_provider.runtime.capture import capture_files, join_day, read_day

    rows = sum(pq.read_metadata(p.path).num_rows for p in capture_files(MODEL, DAY))
    keys = [f"k{i}" for i in range(0, rows, 10)]
    labels = pd.DataFrame({"customer_id": keys, "churned": [i % 3 == 0 for i in range(len(keys))]})
    before = _peak_mb()  # imports and the labels
    started = time.perf_counter()
    if mode == "join_ours":
        joined = join_day(MODEL, DAY, lambda: label_lookup(labels, "customer_id", "churned")).joined
    else:
        whole, _ = read_day(MODEL, DAY, [])
        joined = join_labels(whole, labels, "customer_id", "churned")
        del whole
    realised = realised_by_version(joined, "churned", True, "roc_auc", 0.5)
    print(json.dumps({"mode": mode, "rows": rows, "labels": len(keys), "joined": len(joined),
                      "total_s": round(time.perf_counter() - started, 2), "before_mb": round(before, 1),
                      "peak_mb": round(_peak_mb(), 1), "read_s": None, "read_peak_mb": round(before, 1),
                      "versions": {v: e["rows"] for v, e in realised.items()}}))  # fmt: skip


def _peak_mb() -> float:
    """This process's peak resident size so far (``VmHWM``), in MB."""
    return next(int(line.split()[1]) / 1024 for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmHWM:"))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--join", action="store_true", help="the realised-performance join instead of the drift read")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    table = []
    for rows in args.sizes:
        with tempfile.TemporaryDirectory(prefix="bench-served-") as tmp:
            home = Path(tmp) / "home"
            started = time.perf_counter()
            write_day(home, rows)
            print(json.dumps({"wrote": rows, "files": -(-rows // FILE_ROWS),
                              "seconds": round(time.perf_counter() - started, 1)}), flush=True)  # fmt: skip
            modes = ("join_ours", "join_baseline") if args.join else ("ours", "baseline")
            results: dict[str, list[dict]] = {m: [] for m in modes}
            for _ in range(args.repeats):
                for mode in modes:
                    out = subprocess.run([sys.executable, __file__, "--child", mode, str(home)], check=True,
                                         capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
                    print(out, flush=True)
                    results[mode].append(json.loads(out))
            load = os.getloadavg()[0]
            ours, base = results[modes[0]], results[modes[1]]
            what = "served join with late labels" if args.join else "served drift check"
            record("served-join" if args.join else "served-drift", f"{what} of a captured day, {rows} rows",
                   [r["total_s"] for r in ours], [r["total_s"] for r in base],
                   baseline_name="read whole, then join" if args.join else "read whole, then sample",
                   ours_mb=max(r["peak_mb"] for r in ours), baseline_mb=max(r["peak_mb"] for r in base), rows=rows,
                   note=f"load average {load:.1f}")  # fmt: skip
            table.append((rows, ours, base, load))
    if args.join:
        print(
            "\n| captured rows | labels | joined | batched join (s) | peak RSS before / after (MB) "
            "| read whole, then join (s) | peak RSS before / after (MB) | load avg |\n" + "|---" * 8 + "|"
        )
        for rows, ours, base, load in table:
            o, b = ours[-1], base[-1]
            print(
                f"| {rows:,} | {o['labels']:,} | {o['joined']:,} | {o['total_s']} "
                f"| {o['before_mb']} / {o['peak_mb']} | {b['total_s']} | {b['before_mb']} / {b['peak_mb']} "
                f"| {load:.1f} |"
            )
        return 0
    print(
        "\n| captured rows | sampled read + drift (s) | its read (s) | peak RSS after read / after drift (MB) "
        "| read whole, then sample (s) | its read (s) | peak RSS after read / after drift (MB) | load avg |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for rows, ours, base, load in table:
        o, b = ours[-1], base[-1]
        print(
            f"| {rows:,} | {o['total_s']} | {o['read_s']} | {o['read_peak_mb']} / {o['peak_mb']} | {b['total_s']} "
            f"| {b['read_s']} | {b['read_peak_mb']} / {b['peak_mb']} | {load:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
