"""Task time of a steady-state model-day (ingest + drift monitoring, no training) and of a promotion's shadow check,
at the demo's size, the tasks run the way Airflow runs them (issue 31).

Each checkout measured gets a fresh MLOPS_HOME and AIRFLOW_HOME (SQLite metadata DB, migrated; the project's pools)
and one worker process that preloads the task libraries as the scheduler's worker does
(:mod:`mlops_provider.runtime.preload`), parses ``dags/mlops_models.py`` with the churn spec only (its gate made
lenient so every challenger reaches the shadow check) and runs the DAGs with ``dag.test()``: the real task runner
and operators, deferrable sensors' triggers inline. The demo source (SQLite, the demo's rows per day) is seeded for
every day. Steps: ingest of a first day, a bootstrap training and its promotion (a champion), then DAYS model-days
(ingest + drift monitoring of one day each), then PROMOTIONS trainings and promotions (each promotion's shadow
check replays the newest partition on the candidate and the champion). A task's time is its task instance's
``end_date - start_date``.

Prints every task's median (and a model-day's total: the sum of its tasks' medians); with ``--compare BASE_REF``
BASE_REF is measured first in the same run (a detached ``git worktree``, this virtual environment) and the table
shows both. Never fails on a timing.

Usage: python bench/bench_model_day.py [--compare BASE_REF] [--days N] [--promotions N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402

MODEL = "churn_classifier"
START = "2026-11-01"
#: The DAGs of a steady-state model-day (no training) and of a promotion.
DAY_DAGS = ("ingest", "drift_monitoring")

WORKER = r"""
import datetime as dt, json, os, sys, time
from pathlib import Path

from mlops_provider.runtime.preload import DEFAULT_MODULES, preload
preload(DEFAULT_MODULES)  # what the LocalExecutor's (or Celery's) worker holds before it forks a task

import pendulum
from sqlalchemy import create_engine
from airflow.dag_processing.dagbag import DagBag
from mlops_provider.demo.churn_source import SourceSpec, seed_range

root, days, promotions, out = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
start = dt.date.fromisoformat(os.environ["MLOPS_START_DATE"])
seed_range(create_engine(f"sqlite:///{os.environ['MLOPS_HOME']}/source.db"),
           [start + dt.timedelta(days=i) for i in range(days + 1)], SourceSpec(seed=7))
bag = DagBag(dag_folder=str(root / "dags" / "mlops_models.py"))
assert not bag.import_errors, bag.import_errors
rows = []

def run(stage, day=None, phase="", **conf):
    dag = bag.get_dag(f"{os.environ['BENCH_MODEL']}__{stage}")
    logical = pendulum.datetime(day.year, day.month, day.day, tz="UTC").add(days=1) if day else None
    wall = time.perf_counter()
    dr = dag.test(logical_date=logical, run_conf=conf or None)
    wall = time.perf_counter() - wall
    for ti in dr.get_task_instances():
        seconds = (ti.end_date - ti.start_date).total_seconds() if ti.start_date and ti.end_date else None
        rows.append({"phase": phase, "stage": stage, "task": ti.task_id, "state": str(ti.state), "seconds": seconds,
                     "day": str(day) if day else None})
    print(f"  {phase:9} {stage:17} {str(day or ''):10} {dr.state} in {wall:.1f} s", file=sys.stderr, flush=True)
    return dr

def warm_up(stage, day=None, **conf):
    # A warm-up run that did not succeed stops the bench: without a champion a model-day's monitoring would wait
    # for one (its sensor) until its timeout.
    dr = run(stage, day, "warm-up", **conf)
    if str(dr.state) != "success":
        failed = [ti.task_id for ti in dr.get_task_instances() if str(ti.state) not in ("success", "skipped")]
        raise SystemExit(f"the warm-up {stage} run ended {dr.state} (tasks not done: {failed}); see its log above")

try:
    warm_up("ingest", start)
    warm_up("training", None, reason="bootstrap")
    warm_up("promotion", None)
    for i in range(1, days + 1):
        day = start + dt.timedelta(days=i)
        run("ingest", day, "day")
        run("drift_monitoring", day, "day")
    for _ in range(promotions):
        run("training", None, "promotion", reason="manual")
        run("promotion", None, "promotion")
finally:  # the spec serves live: its endpoint (proxy and backends) outlives the tasks; it must not outlive the bench
    from mlops_provider.runtime.deployment import Endpoint
    endpoint = Endpoint(os.environ["BENCH_MODEL"], 8600 + int(os.environ["MLOPS_ENDPOINT_PORT_OFFSET"]))
    if endpoint.record_path.exists():
        endpoint.shutdown()
Path(out).write_text(json.dumps(rows))
"""


def bench_spec(root: Path, folder: Path) -> Path:
    """The churn spec alone, its paths absolute (under ``root``), its gate lenient: every challenger is promoted
    (the bench times the shadow check, not the gate's verdict)."""
    text = (root / "include" / "models" / f"{MODEL}.yaml").read_text()
    text = text.replace("../", f"{root / 'include'}/")
    text = text.replace("min_improvement: 0.002", "min_improvement: -1.0")
    text = text.replace("max_segment_regression: 0.05", "max_segment_regression: 1.0")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MODEL}.yaml").write_text(text)
    return folder


def measure(root: Path, days: int, promotions: int, tmp: Path, port_offset: int) -> list[dict]:
    """Every task instance's time of one checkout (``root``), run in fresh homes."""
    airflow_home, mlops_home = tmp / "airflow", tmp / "mlops"
    airflow_home.mkdir(parents=True)
    mlops_home.mkdir(parents=True)
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "MLOPS_HOME": str(mlops_home),
        "MLOPS_PROJECT_ROOT": str(root),
        "MLOPS_MODELS_DIR": str(bench_spec(root, tmp / "models")),
        "MLOPS_START_DATE": START,
        "BENCH_MODEL": MODEL,
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW_CONN_MLOPS_SOURCE": json.dumps({"conn_type": "sqlite", "host": f"{mlops_home}/source.db"}),
        "DVC_NO_ANALYTICS": "1",
        "GIT_PYTHON_REFRESH": "quiet",
        "MLOPS_TRAINING_RUNNER": "local",
        # each checkout its own endpoint port (a checkout's endpoint held 8600 and failed the next one's deploy)
        "MLOPS_ENDPOINT_PORT_OFFSET": str(port_offset),
        "PYTHONPATH": os.pathsep.join(str(root / p) for p in ("src", "plugins", "dags")),
    })  # fmt: skip
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    subprocess.run([airflow, "pools", "import", str(root / "config" / "pools.json")], env=env, check=True,
                   capture_output=True)  # fmt: skip
    out, log = tmp / "rows.json", tmp / "worker.log"
    with open(log, "w") as stderr:  # progress lines as each DAG run ends (tail -f it), then the worker's logs
        proc = subprocess.run([sys.executable, "-c", WORKER, str(root), str(days), str(promotions), str(out)],
                              env=env, stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip
    text = log.read_text()
    print("\n".join(line for line in text.splitlines() if line.startswith("  ")))
    if proc.returncode or not out.exists():
        raise SystemExit(f"the worker failed:\n{text[-4000:]}")
    return json.loads(out.read_text())


def medians(rows: list[dict], phase: str, stages: tuple[str, ...]) -> dict[tuple[str, str], tuple[float, int]]:
    """(stage, task) -> (median seconds, runs) over the task instances of ``phase`` that ran."""
    times: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        if row["phase"] == phase and row["stage"] in stages and row["seconds"] is not None:
            times.setdefault((row["stage"], row["task"]), []).append(row["seconds"])
    return {key: (statistics.median(values), len(values)) for key, values in times.items()}


def table(results: list[tuple[str, list[dict]]]) -> None:
    names = [name for name, _ in results]
    for title, phase, stages in (
        ("steady-state model-day (ingest + drift monitoring)", "day", DAY_DAGS),
        ("promotion", "promotion", ("promotion",)),
    ):
        per = [medians(rows, phase, stages) for _, rows in results]
        keys = sorted({k for m in per for k in m}, key=lambda k: (stages.index(k[0]), k[1]))
        print(f"\n{title}: median task time (s) [runs]")
        print(f"  {'DAG':17} {'task':24} " + " ".join(f"{n:>16}" for n in names))
        for key in keys:
            cells = [f"{m[key][0]:>10.2f} [{m[key][1]:>2}]" if key in m else f"{'-':>16}" for m in per]
            print(f"  {key[0]:17} {key[1]:24} " + " ".join(f"{c:>16}" for c in cells))
        totals = [sum(v for v, _ in m.values()) for m in per]
        print(f"  {'total':42} " + " ".join(f"{t:>16.2f}" for t in totals))
        for name, m in zip(names, per, strict=True):
            record("model-day", f"{title} ({name}), sum of task medians", [sum(v for v, _ in m.values())])
        if phase == "promotion":
            shadow = [m.get(("promotion", "shadow_check")) for m in per]
            print("  shadow check: " + ", ".join(f"{n} {s[0]:.2f} s" for n, s in zip(names, shadow, strict=True) if s))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", metavar="BASE_REF", help="also measure this git ref, first, in the same run")
    parser.add_argument("--days", type=int, default=5, help="steady-state model-days (default 5)")
    parser.add_argument("--promotions", type=int, default=2, help="trainings + promotions after them (default 2)")
    parser.add_argument("--port-offset", type=int, default=int(os.environ.get("MLOPS_ENDPOINT_PORT_OFFSET") or 400),
                        help="endpoint port offset of the first checkout (+10 for the next; default 400)")  # fmt: skip
    parser.add_argument("--baseline-rows", metavar="JSON", help="also show a checkout's rows saved by --save-rows")
    parser.add_argument("--save-rows", metavar="JSON", help="save this run's rows (each checkout's) to JSON")
    args = parser.parse_args()
    results = []
    if args.baseline_rows:
        saved = json.loads(Path(args.baseline_rows).read_text())
        results.extend((name, rows) for name, rows in saved)
    with tempfile.TemporaryDirectory(prefix="bench-model-day-") as tmp:
        roots = [("HEAD", PROJECT_ROOT)]
        if args.compare:
            base = Path(tmp) / "base"
            subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "add", "-q", "--detach", str(base),
                            args.compare], check=True)  # fmt: skip
            roots.insert(0, (args.compare[:12], base))
        try:
            for name, root in roots:
                print(f"{name}: {args.days} model-days, {args.promotions} promotions (+ the warm-up)", flush=True)
                run_dir = Path(tmp) / f"run-{len(results)}"
                offset = args.port_offset + 10 * len(results)
                results.append((name, measure(root, args.days, args.promotions, run_dir, offset)))
        finally:
            if args.compare:
                subprocess.run(["git", "-C", str(PROJECT_ROOT), "worktree", "remove", "--force", str(roots[0][1])])
    if args.save_rows:
        Path(args.save_rows).write_text(json.dumps(results))
    table(results)
    print(f"  load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
