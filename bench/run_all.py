"""The benchmark suite: run every bench script, collect their rows, write docs/benchmarks.md and print it.

Each row: what is measured, ours, the baseline measured in the same run, the ratio, peak memory; medians of
repeated runs with the spread. A last section fits how each cost grows with rows (``t ~ rows^b`` on the
medians; b close to 1 is linear). Benchmarks never fail on a timing.

Usage: python bench/run_all.py [--quick]   (``make bench``; --quick: the smaller sizes only)
Environment: MLOPS_BENCH_SIZES_<STAGE> overrides a stage's sizes, e.g. MLOPS_BENCH_SIZES_INGEST="100000 1000000".
``--only STAGE ...`` runs those stages and keeps every row of docs/benchmarks.json it did not measure again (same
stage, what and rows), so one size can be added to a full run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PROJECT_ROOT = BENCH.parent
SIZES = {
    "ingest": ([10_000, 100_000, 1_000_000, 10_000_000], [10_000, 100_000]),
    "training": ([10_000, 100_000, 1_000_000], [10_000, 100_000]),
    "drift": ([100_000, 1_000_000, 10_000_000], [100_000, 1_000_000]),
}
SCRIPTS = [("parse", "bench_dag_parse.py"), ("parse", "bench_parse.py"), ("ingest", "bench_ingest.py"),
           ("training", "bench_training.py"), ("drift", "bench_drift.py"), ("drift-html", "bench_drift_html.py"),
           ("scheduler", "bench_scheduler.py"), ("tuning", "bench_tuning.py")]  # fmt: skip
NOTES = [
    "Tuning (bench_tuning.py, 2026-12-06; "
    '`MLOPS_BENCH_SIZES_TUNING="10 2000" make bench BENCH_ARGS="--only tuning"`): '
    "each example model's demo generator, 7 days x ~2,000 rows; the gate's holdout ROC AUC of the model trained with "
    "the fixed hyperparameters vs the one trained with the best of 10 trials (scored on validation rows carved from "
    "the training rows), one run each. Measured while other test suites ran on the machine (load average 9-12 on 2 "
    "CPUs): the times are several times this machine's idle ones; compare the two sides of a row. With 10 trials "
    "Optuna's TPE sampler is still in its 10 random start-up trials, so both models drew the same points (seed 7).",
    "Scheduler rows come from the metadata DB of the last `make demo` (LocalExecutor on SQLite; task processes are "
    "forked from the scheduler, which preloads the task libraries: see docs/configuration.md, Task start-up).",
    "A run whose peak memory, extrapolated from the smaller sizes, exceeds 75% of the memory available is "
    "not run (it would swap or be OOM-killed and take the suite with it); its row says so.",
    "Ingest validates against a copy of the demo suite whose row-count bound (5M) is widened to the size measured; "
    "every other expectation is unchanged.",
    "Ingest (issue 18): ours is the default, chunked path (rows fetched, written and validated `chunk_rows` at a "
    "time, batches merged into the whole partition's verdict); the baseline is the whole-frame path, the only one "
    "before issue 18, measured in the same run. The 10M row used the default `chunk_rows` 250,000; the 10k-1M rows "
    "were measured the same day with 500,000 (one batch up to 500k rows, two at 1M; at 10M, 500,000 peaked at "
    "2349 MB in 313 s, hence the smaller default). The whole-frame path took 257 s at 10M on 2026-11-27 and 423 s "
    "here today: this machine was slower today, so compare the two sides of one row, not rows of different days.",
    "50M ingest rows: not measured. The run of 2026-12-04 failed validation on its own data (17M duplicate "
    "customer_id: the bench seeds 10M rows at a time and the pieces draw ids independently), a bench defect; the "
    "whole-frame side was projected at ~66 GB from the recorded peaks and not started.",
    "Live serving (issue 32; `bench/bench_proxy.py`, not yet run by `make bench`), 2026-12-06 on this 2-core "
    "machine while other jobs ran (load average 10-15): a real Caddy 2.11.7 before two backends serving a small "
    "scikit-learn pyfunc model, the replay client at 100 req/s, batch of 1 row. Proxy overhead p50 added: -24.8, "
    "-2.7, +1.0 ms in 3 alternated runs of 2,000 requests (p99 added: -58.1, -36.2, +9.6 ms): below the machine's"
    " noise, not a measurement (the stack notes' quiet-machine figure: +0.6 ms, one request at a time). Canary "
    "share over 10,000 requests at 95/5: 5.00% (Caddy's weighted_round_robin is deterministic: runs of 19 and 1 "
    "after the gcd reduction). Rollback, `Endpoint.set_weights({baseline: 100})` from 75/25: 39-41 ms (n=3), in "
    "the worker; a deferred analysis adds the scheduler's resume. 20 weight changes under 100 req/s: 0 requests "
    "failed at the client, 20 retried once after a connection reset by Caddy's configuration reload. Not yet "
    "measured: 500 req/s, one backend's throughput at p99 < 100 ms.",
    "Loop wall time under a real scheduler (not a bench script: the end-to-end tests' durations in `.ci/run` of "
    "2026-12-04): distributed, card_fraud over 4 days on CeleryExecutor with two workers on separate disks, moto S3 "
    "and git daemon: 292 s after a 71 s start-up; embedded, churn over 5 days on `airflow standalone`: 156 s after "
    "52 s (different models and day counts: a scale, not a ratio).",
]
NOTES += [
    "Issue 31, 2026-12-06, measured with a load average of 10-13 on the 2 cores (other sessions ran beside): wall "
    "times are inflated and noisy, the child's CPU time is the steadier figure. Parse (`bench/bench_parse.py`, the "
    "dag processor's measure: a forked child fills a DagBag, fastest of 5, against a floor of as many plain DAGs and "
    "tasks; before = 4974df1, after = this branch, one after the other): no byte code (this venv, and the project's "
    "own src in the image): 2 models 4.21x -> 4.08x wall, 8.20x -> 4.31x CPU (0.371 -> 0.175 s vs a 0.041-0.045 s "
    "floor); 10 models 6.02x -> 5.67x wall (CPU 0.449 -> 0.407 s); 50 models 2.71x -> 1.44x wall, 2.12x -> 1.65x CPU; "
    "growth per added model (10 -> 50) 48.0 -> 19.7 ms wall, 9.8 -> 5.9 ms CPU (the floor: 7.9-8.0 ms CPU). With "
    "byte code: 2 models 3.57x -> 4.57x wall, 3.73x -> 3.59x CPU (0.102 -> 0.089 s vs 0.025-0.027 s); 50 models "
    "2.79x -> 1.88x wall, 2.82x -> 2.07x CPU; growth per model 9.3 -> 6.3 ms CPU (floor 3.3-3.4 ms). Goal (<= 2x for "
    "2 models) not met: what remains is a fixed cost, mostly the spec's pydantic models (~25-30 ms CPU to define "
    "15 models, as much as the whole floor) and Airflow's HITL module chain the approval operators import.",
    "Issue 31, drift check of a calm day at the demo's size (`bench/bench_drift_html.py`, 1,000 rows a day, 7-day "
    "reference and window, 13 columns, same run): before (metrics + HTML) median 5.83 s wall / 2.34 s CPU, after "
    "(metrics only) 5.44 s / 2.23 s; the HTML alone 0.38 s / 0.12 s and 4.5 MB a report (plus its MLflow artifact "
    "copy, not in this bench). Evidently's metrics themselves, not the HTML, are most of the step. The model-day "
    "bench (every task of ingest + drift monitoring before/after) was not written.",
    "Issue 31, `make demo` wall time (2026-12-06, `make clean && make demo`, base 3c33c53 + the GET retry at 16:32, "
    "this branch at 16:48, one after the other; load average 17-28 from other sessions throughout, the second run "
    "also beside this session's lint, unit tests and end-to-end test: both inflated several times; neither run was "
    "left to its end, so no wall time is recorded). From the metadata DBs (`bench/demo_timeline.py`) and the demo's "
    "output: `make init` 57 s (base); seeding 40 s before Airflow started (base), during its start-up (this branch); "
    "the scheduler's preload of the task libraries 116.8 s (base) / 105.7 s (this branch), the scheduler job starting"
    " 91 s / 70 s after the triggerer's; \"Airflow is healthy after\" 175 s / 162 s by the demo's clock. Loop progress "
    "from the first task started, task instances finished (task seconds): +120 s 11 (226) / 15 (225), +300 s 38 (669)"
    " / 42 (707), +600 s 83 (1416) / 103 (1463); first champion promoted +491 s / +436 s; mean concurrency 2.30 / "
    "2.42 on 2 cores, no task running 0% / 2% of the span, median queue wait 0.5 s: CPU-bound, not scheduler-bound. A"
    " DAG-file parse by the dag-processor 4.9 s at that load (every 30 s by default; once during the demo now); each "
    "task's own parse of the factory file (`dag_file_parse_ms` in the task log) 0.85-2.7 s; parsing it in a child "
    "forked from a process with the task libraries preloaded, 3 times: 0.52-0.70 s, and 0.20-0.44 s when the "
    "provider's operator, sensor and factory modules are preloaded too (not done here: the preload runs while Airflow"
    " initialises, in `airflow_local_settings`). The base run's day-1 cold start at that load: ingest of day 1 then "
    "`wait_for_training_set` 97 s, the bootstrap `train` 97 s, the first promotion 146 s of task time.",
]
PACKAGES = ("apache-airflow", "mlflow", "great-expectations", "evidently", "dvc", "xgboost", "pandas")


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next(int(ln.split()[1]) for ln in meminfo if ln.startswith("MemTotal"))
    system = f"{platform.platform()}, Python {platform.python_version()}"
    return f"{os.cpu_count()} CPUs ({cpu}), {mem_kb / 2**20:.0f} GB RAM, {system}"


def fmt(summary: dict | None) -> str:
    if not summary:
        return "-"
    return f"{summary['median']:.2f} s ({summary['min']:.2f}-{summary['max']:.2f}, n={summary['n']})"


def growth(rows: list[dict]) -> list[str]:
    """Per stage and what, on the medians: the exponent b of ``t ~ rows^b`` (least squares on logs; b close to 1
    is linear) and the straight line ``t = fixed + per_million * rows / 1e6`` (least squares)."""
    lines = []
    groups: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for row in rows:
        if row.get("rows") and row["ours"]:
            groups.setdefault((row["stage"], row["what"]), []).append((row["rows"], row["ours"]["median"]))
    for (stage, what), points in sorted(groups.items()):
        if len(points) < 2:
            continue
        b = _slope([math.log(p[0]) for p in points], [math.log(p[1]) for p in points])
        per_row = _slope([p[0] for p in points], [p[1] for p in points])
        fixed = sum(p[1] for p in points) / len(points) - per_row * sum(p[0] for p in points) / len(points)
        kind = "sub-linear (fixed costs dominate)" if b < 0.8 else "about linear" if b <= 1.2 else "super-linear"
        span = f"{min(p[0] for p in points):,} -> {max(p[0] for p in points):,} rows"
        lines.append(f"| {stage} | {what} | {span} | {b:.2f} | {kind} | {fixed:.1f} s | {per_row * 1e6:.2f} s |")
    return lines


def _slope(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def write_markdown(rows: list[dict], path: Path, notes: list[str]) -> str:
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in PACKAGES)
    out = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`bench/run_all.py`) on {dt.date.today()}: {machine()}.",
        f"Versions: {versions}.",
        "",
        "Medians of repeated runs (min-max, n); every measurement in a fresh process, imports included; the baseline",
        "is measured in the same run on the same machine. Ratio = ours / baseline (below 1: ours is faster).",
        "",
        "| stage | what | rows | ours | baseline | ratio | peak MB ours / baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = row["baseline"]
        ratio = f"{row['ours']['median'] / base['median']:.2f}x" if base and row["ours"] else "-"
        mem = " / ".join(f"{m:.0f}" if m else "-" for m in (row.get("ours_mb"), row.get("baseline_mb")))
        baseline = f"{fmt(base)} {row['baseline_name']}" if base else (row.get("baseline_name") or "-")
        what = row["what"] + (f" ({row['note']})" if row.get("note") else "")
        rows_cell = row.get("rows") or ""
        out.append(f"| {row['stage']} | {what} | {rows_cell} | {fmt(row['ours'])} | {baseline} | {ratio} | {mem} |")
    out += ["", "## Growth with rows", "",
            "| stage | what | range | exponent b (t ~ rows^b) | | fixed cost (line fit) | per 1M rows (line fit) |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    out += growth(rows)
    if notes:
        out += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    text = "\n".join(out) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes only")
    parser.add_argument("--only", nargs="*", help="stages to run (default: all)")
    parser.add_argument("--render", action="store_true", help="only rewrite docs/benchmarks.md from its JSON")
    args = parser.parse_args()
    raw = PROJECT_ROOT / "docs" / "benchmarks.json"
    if args.render:
        print(write_markdown(json.loads(raw.read_text()), PROJECT_ROOT / "docs" / "benchmarks.md", list(NOTES)))
        return 0
    notes = list(NOTES)
    with tempfile.NamedTemporaryFile(prefix="bench-", suffix=".jsonl", delete=False) as handle:
        record_path = Path(handle.name)
    env = dict(os.environ, MLOPS_BENCH_RECORD=str(record_path))
    for stage, script in SCRIPTS:
        if args.only and stage not in args.only:
            continue
        full, quick = SIZES.get(stage, ([], []))
        sizes = os.environ.get(f"MLOPS_BENCH_SIZES_{stage.upper()}", "").split() or [
            str(n) for n in (quick if args.quick else full)
        ]
        print(f"\n=== {script} {' '.join(sizes)}", flush=True)
        proc = subprocess.run([sys.executable, str(BENCH / script), *sizes], env=env, cwd=PROJECT_ROOT)
        if proc.returncode != 0:
            notes.append(f"`{script}` exited with {proc.returncode}; its rows are missing or partial.")
    rows = [json.loads(line) for line in record_path.read_text().splitlines() if line.strip()]
    record_path.unlink()
    if args.only and raw.exists():  # keep the last run's rows that this run did not measure again
        measured = {(r["stage"], r["what"], r.get("rows")) for r in rows}
        kept = [r for r in json.loads(raw.read_text()) if (r["stage"], r["what"], r.get("rows")) not in measured]
        rows = kept + rows
        order = [stage for stage, _ in SCRIPTS]
        rows.sort(key=lambda r: (order.index(r["stage"]) if r["stage"] in order else len(order), r.get("rows") or 0))
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(rows, indent=1) + "\n")
    print()
    print(write_markdown(rows, PROJECT_ROOT / "docs" / "benchmarks.md", notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
