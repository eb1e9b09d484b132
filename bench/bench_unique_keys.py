"""The uniqueness keys of batched validation alone at a large size: memory and time of ``BatchMerger`` adding
``ROWS`` rows in batches of 250,000 with two unique columns (the demo suite's ``event_id`` and ``customer_id``
become 8-byte keys; int64 columns here, so the text hashing, the same before and after, is left out) and a third
column beside them, then merging. Each measurement is a fresh process; with ``--compare REF`` REF's ``src`` (a
detached ``git worktree``, this virtual environment) and this checkout alternate ``--rounds`` times, REF first.

Prints, per run: the RSS over the batches (MB every 10% of the rows) and its growth in bytes a row, the peak RSS
while adding and while merging (the kernel's peak, reset between the two), wall and CPU seconds, the verdict.
Never fails on a number.

Usage: python bench/bench_unique_keys.py [--compare REF] [--rounds N] [ROWS]      (default 50000000)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import inspect, json, sys, time
import numpy as np, pandas as pd
import mlops_provider
from mlops_provider.ml.validation_batches import BatchMerger
def status(field):
    with open("/proc/self/status") as handle:
        return round(next(int(line.split()[1]) for line in handle if line.startswith(field + ":")) / 1024)
def reset_peak():
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
rows, batch, spill = int(sys.argv[1]), 250_000, sys.argv[2]
kind = "expect_column_values_to_be_unique"
items = [{"expectation_config": {"type": kind, "kwargs": {"column": c}}, "success": True,
          "result": {"element_count": batch, "unexpected_count": 0, "missing_count": 0}} for c in ("a", "b")]
kwargs = {"spill_dir": spill} if "spill_dir" in inspect.signature(BatchMerger).parameters else {}
start, cpu = time.perf_counter(), time.process_time()
reset_peak()
base = status("VmRSS")
merger, curve = BatchMerger(rows=rows, **kwargs), []
step = max(rows // batch // 10, 1)
for index, first in enumerate(range(0, rows, batch)):
    n = min(batch, rows - first)
    a = np.arange(first, first + n, dtype="int64")
    merger.add(items, pd.DataFrame({"a": a[::-1], "b": a * 7 + 3, "c": np.ones(n)}))
    del a
    if (index + 1) % step == 0:
        curve.append((first + n, status("VmRSS")))
adding = status("VmHWM")
reset_peak()
merged = merger.merged()
print(json.dumps({"src": mlops_provider.__file__, "start_mb": base, "curve": curve, "adding_peak": adding,
    "merge_peak": status("VmHWM"), "seconds": time.perf_counter() - start, "cpu": time.process_time() - cpu,
    "verdict": [(m["success"], m["result"]["unexpected_count"]) for m in merged]}))
"""


def run(name: str, root: Path, rows: int, folder: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(root / "src"))
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", CHILD, str(rows), str(folder)], env=env, capture_output=True,
                          text=True)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if not out["src"].startswith(str(root / "src")):
        raise SystemExit(f"{name}: the child ran {out['src']}, not {root / 'src'}")
    curve = out["curve"]
    (r0, m0), (r1, m1) = curve[0], curve[-1]
    growth = (m1 - m0) * 1024 * 1024 / (r1 - r0) if r1 > r0 else float("nan")
    print(
        f"{rows:>9} {name}: RSS at start {out['start_mb']} MB, over the rows {[m for _, m in curve]} MB"
        f" (growth {growth:.1f} bytes a row), peak adding {out['adding_peak']} MB, peak merging {out['merge_peak']} MB,"
        f" {out['seconds']:.1f} s wall, {out['cpu']:.1f} s CPU, verdict {out['verdict']}"
        f" (load average {load:.1f} -> {os.getloadavg()[0]:.1f})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=50_000_000)
    parser.add_argument("--compare", metavar="REF")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-unique-keys-") as tmp:
        roots = [("HEAD", PROJECT_ROOT)]
        if args.compare:
            base = Path(tmp) / "base"
            subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "add", "-q", "--detach", str(base),
                            args.compare], check=True)  # fmt: skip
            roots.insert(0, (args.compare[:12], base))
        try:
            for _ in range(args.rounds):
                for name, root in roots:
                    run(name, root, args.rows, Path(tmp) / "spill")
        finally:
            if args.compare:
                subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "remove", "--force", str(roots[0][1])])


if __name__ == "__main__":
    main()
