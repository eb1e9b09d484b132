"""Drift: the operator's way (seeded bounded samples read batch by batch, then Evidently) vs a full-frame
Evidently run, at 100k, 1M and 10M rows x 20 columns (14 numerical, 6 categorical; 7 of them drifted).

Each measurement runs in a fresh process (wall time and peak RSS of that process). Prints the medians and
spreads, the ratio, and whether both ways reach the same verdict (dataset drift and the drifted columns).
Never fails on a timing.

Usage: python bench/bench_drift.py [ROWS ...]   (default: 100000 1000000 10000000)
Full-frame runs above MLOPS_BENCH_FULL_MAX_ROWS rows (default 10000000) are skipped, and so is one whose peak
memory, extrapolated from the smaller sizes, would not fit in the memory available.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import does_not_fit, projected_mb, record, spread, summary  # noqa: E402

NUMERICAL = [f"n{i}" for i in range(14)]
CATEGORICAL = [f"c{i}" for i in range(6)]
REPEATS = int(os.environ.get("MLOPS_BENCH_REPEATS", "3"))
MAX_ROWS = 100_000

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
mode, ref_path, cur_path = sys.argv[1:4]
num, cat = json.loads(sys.argv[4]), json.loads(sys.argv[5])
from mlops_provider.operators.evidently import DriftReportOperator
op = DriftReportOperator(task_id="drift", dataset="bench", model_name="bench", numerical_columns=num,
                         categorical_columns=cat, max_rows=int(sys.argv[6]))
if mode == "ours":
    from mlops_provider.ml.sampling import sample_parquet
    ref = sample_parquet(ref_path, num + cat, op.max_rows, op.seed)
    cur = sample_parquet(cur_path, num + cat, op.max_rows, op.seed)
else:
    import pandas as pd
    ref, cur = pd.read_parquet(ref_path, columns=num + cat), pd.read_parquet(cur_path, columns=num + cat)
summary = op._run_evidently(ref, cur)
drifted = sorted(c for c, v in summary["columns"].items() if v["drifted"])
print(json.dumps({"seconds": time.perf_counter() - t0, "mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "dataset_drift": summary["dataset_drift"], "share": summary["drift_share"], "drifted": drifted}))
"""


def write_frames(rows: int, folder: Path) -> tuple[Path, Path]:
    """Reference and current Parquet files, written in chunks of 1M rows (bounded memory while generating)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = folder / f"ref-{rows}.parquet", folder / f"cur-{rows}.parquet"
    for path, drifted, seed in ((paths[0], False, 1), (paths[1], True, 2)):
        rng = np.random.default_rng(seed)
        writer = None
        for start in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - start)
            columns = {}
            for i, name in enumerate(NUMERICAL):
                shift = 0.5 if drifted and i < 5 else 0.0
                columns[name] = rng.normal(shift, 1.0, n)
            for i, name in enumerate(CATEGORICAL):
                p = [0.4, 0.3, 0.15, 0.1, 0.05] if not (drifted and i < 2) else [0.1, 0.15, 0.25, 0.2, 0.3]
                columns[name] = rng.choice(["a", "b", "c", "d", "e"], size=n, p=p)
            table = pa.table(columns)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
        assert writer is not None
        writer.close()
    return paths


def run(mode: str, ref: Path, cur: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(ref), str(cur), json.dumps(NUMERICAL), json.dumps(CATEGORICAL),
         str(MAX_ROWS)], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def main(sizes: list[int]) -> None:
    full_max = int(os.environ.get("MLOPS_BENCH_FULL_MAX_ROWS", "10000000"))
    print(f"Drift, {len(NUMERICAL) + len(CATEGORICAL)} columns, sample bound {MAX_ROWS} rows per side, "
          f"{REPEATS} runs each (fresh process; wall incl. imports)")  # fmt: skip
    full_peaks: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        for rows in sizes:
            ref, cur = write_frames(rows, Path(tmp))
            results = {"ours": [run("ours", ref, cur) for _ in range(REPEATS)]}
            skip = does_not_fit(full_peaks, rows)
            if rows > full_max and not skip:
                need = projected_mb(full_peaks, rows)
                skip = f"not run above {full_max} rows (MLOPS_BENCH_FULL_MAX_ROWS)" + (
                    f"; projected peak {need / 1024:.1f} GB" if need else ""
                )
            if not skip:
                results["full"] = [run("full", ref, cur) for _ in range(REPEATS)]
                full_peaks[rows] = max(r["mb"] for r in results["full"])
            ours = results["ours"]
            print(f"\n{rows} rows:")
            print(f"  ours  {spread([r['seconds'] for r in ours])}, peak {max(r['mb'] for r in ours):.0f} MB, "
                  f"share {ours[0]['share']:.2f}, drifted {ours[0]['drifted']}")  # fmt: skip
            full = results.get("full")
            if full:
                medians = [summary([r["seconds"] for r in side])["median"] for side in (ours, full)]
                ratio = medians[0] / medians[1]
                agree = (ours[0]["dataset_drift"], ours[0]["drifted"]) == (full[0]["dataset_drift"], full[0]["drifted"])
                print(f"  full  {spread([r['seconds'] for r in full])}, peak {max(r['mb'] for r in full):.0f} MB, "
                      f"share {full[0]['share']:.2f}, drifted {full[0]['drifted']}")  # fmt: skip
                print(f"  ratio {ratio:.2f}x full-frame; verdicts agree: {agree}")
                note = f"verdicts agree: {agree}"
            else:
                note = f"full-frame {skip}"
                print(f"  full  skipped ({note})")
            record("drift", "Evidently DataDriftPreset, 20 columns", [r["seconds"] for r in ours],
                   [r["seconds"] for r in full] if full else None, baseline_name="full-frame Evidently",
                   ours_mb=max(r["mb"] for r in ours), baseline_mb=max(r["mb"] for r in full) if full else None,
                   rows=rows, note=note)  # fmt: skip
            ref.unlink()
            cur.unlink()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000, 10_000_000])
