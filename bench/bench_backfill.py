"""A year of one model's days (ingest + drift monitoring) backfilled through the real scheduler (issue 31 item 4).

The churn spec alone (its live endpoint left out: no traffic to serve in a backfill) on a fresh embedded Airflow
(``airflow standalone``: scheduler, triggerer, dag-processor, api-server, LocalExecutor) with its own PostgreSQL
metadata database, its own homes and ports (api 18891; worker/trigger log servers 18892/18893, scheduler health
18894). A warm-up first (``dag.test()`` in a child process, not timed): the day before the first day is ingested and
the bootstrap training promoted, so every backfilled day has a champion (the steady state). Then the README's
backfill path: ``POST /api/v2/backfills`` for ``<model>__ingest`` and ``<model>__drift_monitoring`` over DAYS days
(the demo source seeded for each, ~1,000-2,000 rows a day). Training and promotion stay paused: a retraining a
drifted day triggers is counted (queued), not run.

Prints: wall time (backfill created -> last task ended), task time (sum of task instance durations, and each
task's median), scheduler idle share (the share of the wall time in which no task instance was running: the
scheduler's, executor's and task start-up's time between tasks), peak memory (the PSS of every Airflow process
of the instance, sampled each second), and a linear extrapolation to 365 days when DAYS is less (labelled as
such). Never fails on a timing.

Its ports are its own (not the e2e lock's ports); run one instance at a time: ``.venv/bin/python
bench/bench_backfill.py --days 30``. ``--keep`` keeps the database; ``--report-only DATABASE`` prints the report of a
kept one, or of one whose backfill is still running (the days whose two runs ended).

Two models on one dataset (``--models 2``, issue 31 item 4's second half): the churn spec and a copy of it under
another name (``churn_twin``: its own MLflow experiment, the same dataset ``customer_activity``, as the shared-ingest
tests make it). The factory then builds one dataset-level ``customer_activity__ingest`` (extract -> validate ->
version_partition -> a trigger per model, which starts that day's run of ``<model>__training_set``) and, per model,
``<model>__training_set`` and ``<model>__drift_monitoring``. The warm-up ingests the day before, assembles both sets,
trains and promotes both bootstraps; the backfills are the dataset's ingest and each model's monitoring. Prints the
same numbers for the whole instance and per model (the model's own DAGs; its wall ends at its last task, its idle
share counts the shared ingest's tasks as busy; peak memory is the instance's only), and the shared ingest's task
instances per day: its extract, validate and version_partition must have run once a day (one task instance of each
per day, first try), no ``<model>__ingest`` ran, and each model's training-set DAG assembled every day once. (When
the training sets were scheduled on the partition Asset, Airflow 3.3.2 left 1 and 8 days' events without a run in
two 10-day runs, apache/airflow#56050: the bench used to put their run requests back.) Its default port is 18921
(the next 3 too) and its database ``mlops_bench_backfill2_<pid>``; ``--report-only`` recognises a two-model database.

Usage: python bench/bench_backfill.py [--days N] [--models 1|2] [--port P] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(PROJECT_ROOT / "src"))
from common import record  # noqa: E402

from mlops_provider.exceptions import EmbeddedAirflowError  # noqa: E402

MODEL = "churn_classifier"
TWIN = "churn_twin"  # --models 2: a copy of the churn spec on the same dataset
DATASET = "customer_activity"
DAY_DAGS = ("ingest", "drift_monitoring")
SHARED_TASKS = ("extract", "validate", "version_partition")  # the dataset's ingest: once a day for all its models
PG = "postgresql+psycopg2://root@127.0.0.1:5432"

WARM_UP = r"""
import datetime as dt, os, sys
import pendulum
from sqlalchemy import create_engine
from airflow.dag_processing.dagbag import DagBag
from mlops_provider.demo.churn_source import SourceSpec, seed_range

sys.path.insert(0, os.environ["MLOPS_PROJECT_ROOT"])

first, days = dt.date.fromisoformat(sys.argv[1]), int(sys.argv[2])
warm = first - dt.timedelta(days=1)
seed_range(create_engine(f"sqlite:///{os.environ['MLOPS_HOME']}/source.db"),
           [warm + dt.timedelta(days=i) for i in range(days + 1)], SourceSpec(seed=7))
bag = DagBag(dag_folder=os.path.join(os.environ["MLOPS_PROJECT_ROOT"], "dags", "mlops_models.py"))
assert not bag.import_errors, bag.import_errors
models = os.environ["BENCH_MODELS"].split(",")
ingest_id = os.environ["BENCH_INGEST_DAG"]


# dag.test() takes the run's date as the end of its data interval: the warm day's interval ends the next day
when = pendulum.datetime(warm.year, warm.month, warm.day, tz="UTC").add(days=1)
ingest = bag.get_dag(ingest_id).test(logical_date=when)
print(f"  warm-up {ingest_id}: {ingest.state}", file=sys.stderr, flush=True)
assert str(ingest.state) == "success", (ingest_id, ingest.state)
if len(models) > 1:  # a shared dataset: the ingest started each model's run of the day; dag.test() runs it here
    for model in models:
        run = bag.get_dag(f"{model}__training_set").test(logical_date=when.subtract(days=1))
        print(f"  warm-up {model}__training_set: {run.state}", file=sys.stderr, flush=True)
        assert str(run.state) == "success", (model, run.state)
for model in models:
    for stage, conf in (("training", {"reason": "bootstrap"}), ("promotion", None)):
        run = bag.get_dag(f"{model}__{stage}").test(run_conf=conf)
        print(f"  warm-up {model}__{stage}: {run.state}", file=sys.stderr, flush=True)
        assert str(run.state) == "success", (model, stage, run.state)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states.get("promote") == "success", f"{model}'s bootstrap was not promoted (no champion): {states}"
"""


def bench_spec(folder: Path, first: dt.date, last: dt.date, models: int = 1) -> Path:
    """The churn spec alone: paths absolute, no live endpoint, a lenient gate (the bootstrap is always promoted),
    its schedule ending on the last day with catchup off (the scheduler makes no run of its own: the backfill makes
    them all). ``models`` 2: and a copy of it under the name ``churn_twin`` (the same dataset; its own MLflow
    experiment; the same split: another seed's holdout failed a behaviour test of the bootstrap, so it had no
    champion)."""
    text = (PROJECT_ROOT / "include" / "models" / f"{MODEL}.yaml").read_text()
    text = text.replace("../", f"{PROJECT_ROOT / 'include'}/")
    text = text.replace("min_improvement: 0.002", "min_improvement: -1.0")
    text = re.sub(r"\n  endpoint:\n(    .*\n|\s*#.*\n)*", "\n", text)  # the serving.endpoint block
    text = text.replace(
        f"  start_date: {dt.date(2026, 11, 1)}",
        f"  start_date: {first - dt.timedelta(days=1)}\n  end_date: {last}\n  catchup: false",
    )
    assert "endpoint:" not in text and f"end_date: {last}" in text, "the churn spec changed: adapt bench_spec"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{MODEL}.yaml").write_text(text)
    if models > 1:
        twin = text.replace(f"name: {MODEL}\n", f"name: {TWIN}\n", 1)
        twin = twin.replace("  experiment: churn\n", f"  experiment: {TWIN}\n")
        assert twin.count(TWIN) == 2, "the churn spec changed: adapt bench_spec"
        (folder / f"{TWIN}.yaml").write_text(twin)
    return folder


def model_names(models: int) -> list[str]:
    return [MODEL, TWIN][:models]


def ingest_dag(models: int) -> str:
    """The DAG that ingests the days: the model's own, or the dataset's when two models share it."""
    return f"{MODEL}__ingest" if models == 1 else f"{DATASET}__ingest"


def environment(tmp: Path, port: int, database: str, first: dt.date, last: dt.date, models: int = 1) -> dict[str, str]:
    airflow_home, mlops_home = tmp / "airflow", tmp / "mlops"
    airflow_home.mkdir(parents=True)
    mlops_home.mkdir(parents=True)
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "MLOPS_HOME": str(mlops_home),
        "MLOPS_PROJECT_ROOT": str(PROJECT_ROOT),
        "MLOPS_MODELS_DIR": str(bench_spec(tmp / "models", first, last, models)),
        "MLOPS_START_DATE": (first - dt.timedelta(days=1)).isoformat(),
        "BENCH_MODELS": ",".join(model_names(models)),
        "BENCH_INGEST_DAG": ingest_dag(models),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": env.get("AIRFLOW__CORE__PARALLELISM", "4"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{PG}/{database}",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(port + 3),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW_CONN_MLOPS_SOURCE": json.dumps({"conn_type": "sqlite", "host": f"{mlops_home}/source.db"}),
        "DVC_NO_ANALYTICS": "1",
        "GIT_PYTHON_REFRESH": "quiet",
        "MLOPS_TRAINING_RUNNER": "local",
        "MLOPS_ENDPOINT_PORT_OFFSET": "400",
        "PYTHONPATH": os.pathsep.join(str(PROJECT_ROOT / p) for p in ("src", "plugins", "dags")),
    })  # fmt: skip
    return env


def psql(sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=5432, user="root", dbname=database)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


class MemorySampler(threading.Thread):
    """Peak summed PSS (MB) of a process and its descendants, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak, self.samples = pid, interval, 0.0, 0
        self.load: list[float] = []  # the 1-minute load average, every 30 samples
        self.stop = threading.Event()

    def run(self) -> None:
        import psutil

        while not self.stop.wait(self.interval):
            try:
                root = psutil.Process(self.pid)
                processes = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for process in processes:
                try:
                    # PSS: the workers are forked from the scheduler after its preload; their RSS counts the
                    # shared pages once per process (measured: RSS sum 6.0 GB where PSS is 1.7 GB)
                    total += process.memory_full_info().pss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            self.peak = max(self.peak, total / 2**20)
            if self.samples % 30 == 0:
                self.load.append(os.getloadavg()[0])
            self.samples += 1


def busy_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of ``intervals``."""
    busy, end = 0.0, None
    for start, stop in sorted(intervals):
        if end is None or start > end:
            busy += stop - start
            end = stop
        elif stop > end:
            busy += stop - end
            end = stop
    return busy


def call(airflow: Any, method: str, path: str, body: dict[str, Any] | None = None, tries: int = 6) -> Any:
    """``airflow.api`` retried when the api-server does not answer in time (it does not under load 15+ on 2
    cores); only for idempotent calls."""
    for attempt in range(tries):
        try:
            return airflow.api(method, path, body)
        except (TimeoutError, OSError, EmbeddedAirflowError) as exc:  # urllib's URLError is an OSError
            if attempt == tries - 1:
                raise
            print(f"  {method} {path}: {exc!r}; retrying", flush=True)
            time.sleep(5)


def create_backfill(airflow: Any, body: dict[str, Any]) -> int:
    """``POST /api/v2/backfills``; when the answer times out, the backfill the request may have made is looked up
    before asking again (one backfill per DAG at a time)."""
    for _attempt in range(6):
        try:
            return int(airflow.api("POST", "/api/v2/backfills", body)["id"])
        except (TimeoutError, OSError, EmbeddedAirflowError) as exc:
            print(f"  POST /api/v2/backfills: {exc!r}; looking it up", flush=True)
            time.sleep(5)
            made = call(airflow, "GET", f"/api/v2/backfills?dag_id={body['dag_id']}")["backfills"]
            if made:
                return int(made[0]["id"])
    raise SystemExit(f"the backfill of {body['dag_id']} could not be created")


def wait_for_backfills(
    airflow: Any, ids: list[int], timeout: float, on_poll: Callable[[], object] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [call(airflow, "GET", f"/api/v2/backfills/{i}").get("completed_at") for i in ids]
        if all(done):
            return
        if on_poll is not None:
            on_poll()
        time.sleep(5)
    raise SystemExit(f"the backfills were not complete after {timeout:.0f} s")


def main() -> None:
    from mlops_provider.demo.embedded import EmbeddedAirflow

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365, help="days to backfill (default 365; 30 is a quick run)")
    parser.add_argument(
        "--models",
        type=int,
        choices=(1, 2),
        default=1,
        help="1: churn alone (default); 2: churn and a copy of it on the same dataset (shared ingest)",
    )
    parser.add_argument("--port", type=int, help="api-server port, the next 3 are used too (default 18891; 18921 "
                        "with --models 2)")  # fmt: skip
    parser.add_argument("--first", default="2025-01-01", help="first data day (default 2025-01-01)")
    parser.add_argument("--keep", action="store_true", help="keep the homes and the database (their paths printed)")
    parser.add_argument("--ingest-active", type=int, default=2, help="the ingest backfill's max_active_runs")
    parser.add_argument("--drift-active", type=int, default=1, help="the drift monitoring backfill's max_active_runs")
    parser.add_argument("--report-only", metavar="DATABASE", help="print the report of a kept database and exit")
    args = parser.parse_args()
    if args.report_only:
        report_only(args.report_only)
        return
    first = dt.date.fromisoformat(args.first)
    last = first + dt.timedelta(days=args.days - 1)
    models = model_names(args.models)
    port = args.port or (18891 if args.models == 1 else 18921)
    database = f"mlops_bench_backfill{'' if args.models == 1 else args.models}_{os.getpid()}"
    airflow_bin = str(Path(sys.executable).parent / "airflow")
    tmp = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    env = environment(tmp, port, database, first, last, args.models)
    load = [os.getloadavg()[0]]
    psql(f"CREATE DATABASE {database}")
    airflow = None
    try:
        subprocess.run([airflow_bin, "db", "migrate"], env=env, check=True, capture_output=True)
        subprocess.run([airflow_bin, "pools", "import", str(PROJECT_ROOT / "config" / "pools.json")], env=env,
                       check=True, capture_output=True)  # fmt: skip
        print(f"{args.days} days {first} .. {last}, {' and '.join(models)}; warm-up (ingest of "
              f"{first - dt.timedelta(days=1)}, bootstrap training and its promotion, by dag.test(), not timed)",
              flush=True)  # fmt: skip
        warm = subprocess.run([sys.executable, "-c", WARM_UP, first.isoformat(), str(args.days)], env=env,
                              capture_output=True, text=True)  # fmt: skip
        if warm.returncode:
            raise SystemExit(f"the warm-up failed:\n{warm.stderr[-4000:]}")
        print("\n".join(line for line in warm.stderr.splitlines() if line.startswith("  warm-up")), flush=True)
        # dag.test() gave the warm day's ingest run the logical date of the first day (the end of its interval): the
        # backfill would skip that date ("a run exists"), and the first day's monitoring would give up on its
        # missing ingest. The warm day's data and tag stay; only the run's row goes.
        psql(f"DELETE FROM dag_run WHERE dag_id = '{ingest_dag(args.models)}' AND run_type = 'manual'", database)
        airflow = EmbeddedAirflow(airflow_bin, Path(env["AIRFLOW_HOME"]), port=port, env=env)
        airflow.start(timeout=300)
        # backfilled: the days' ingest and each model's monitoring; a shared dataset's training-set DAGs get their
        # runs from the ingest's triggers: unpaused, not backfilled
        dag_ids = [ingest_dag(args.models), *(f"{model}__drift_monitoring" for model in models)]
        followers = [f"{model}__training_set" for model in models] if args.models > 1 else []
        deadline = time.monotonic() + 300
        while not {*dag_ids, *followers} <= {
            d["dag_id"] for d in call(airflow, "GET", "/api/v2/dags?limit=100")["dags"]
        }:
            if time.monotonic() > deadline:
                raise SystemExit("the DAGs were not parsed within 300 s")
            time.sleep(2)
        for dag_id in [*followers, *dag_ids]:
            call(airflow, "PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        assert airflow.process is not None
        sampler = MemorySampler(airflow.process.pid)
        sampler.start()
        started = time.time()
        backfills = []
        actives = (args.ingest_active, *(args.drift_active for _ in models))
        for dag_id, active in zip(dag_ids, actives, strict=True):
            body = {"dag_id": dag_id, "from_date": f"{first}T00:00:00Z", "to_date": f"{last}T00:00:00Z",
                    "max_active_runs": active, "reprocess_behavior": "none", "run_backwards": False}  # fmt: skip
            backfills.append(create_backfill(airflow, body))
        print(f"backfills {backfills} created; waiting (tail {env['AIRFLOW_HOME']}/standalone.log)", flush=True)
        wait_for_backfills(airflow, backfills, timeout=max(3600.0, 60.0 * args.days))
        wait_for_runs(database, followers, timeout=600.0)  # monitoring waited for the last sets
        sampler.stop.set()
        load += sampler.load
        load.append(os.getloadavg()[0])
        rows = psql(TASK_INSTANCES, database)
        runs = psql(RUNS, database)
    finally:
        if airflow is not None:
            airflow.stop()
        if not args.keep:
            psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    report(args.days, rows, runs, started, sampler.peak, load, models)
    if args.models > 1:
        shared_ingest(rows, started, models)
    print(f"homes: {tmp}" + (f", database {database}" if args.keep else ""))


def wait_for_runs(
    database: str, dag_ids: list[str], timeout: float, on_poll: Callable[[], object] | None = None
) -> None:
    """Until no run of ``dag_ids`` is queued or running (asset-triggered runs, not part of a backfill)."""
    if not dag_ids:
        return
    deadline = time.monotonic() + timeout
    names = ",".join(f"'{d}'" for d in dag_ids)
    while psql(f"SELECT count(*) FROM dag_run WHERE dag_id IN ({names}) AND state IN ('queued', 'running')",
               database)[0][0]:  # fmt: skip
        if time.monotonic() > deadline:
            raise SystemExit(f"runs of {dag_ids} still open after {timeout:.0f} s")
        if on_poll is not None:
            on_poll()
        time.sleep(5)


TASK_INSTANCES = (
    "SELECT ti.dag_id, ti.task_id, ti.state, extract(epoch from ti.start_date), extract(epoch from ti.end_date), "
    "ti.run_id, extract(epoch from ti.scheduled_dttm), extract(epoch from ti.queued_dttm), "
    "extract(epoch from dr.start_date), ti.try_number, dr.logical_date "
    "FROM task_instance ti JOIN dag_run dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id "
    "WHERE ti.start_date IS NOT NULL AND ti.end_date IS NOT NULL"
)
RUNS = "SELECT dag_id, state, count(*) FROM dag_run GROUP BY dag_id, state ORDER BY 1, 2"


def report_only(database: str) -> None:
    """The report of a kept database (``--keep``): wall from the first backfill's creation."""
    started = float(psql("SELECT extract(epoch from min(created_at)) FROM backfill", database)[0][0])
    backfilled = [r[0] for r in psql("SELECT DISTINCT dag_id FROM backfill", database)]
    models = sorted(d.removesuffix("__drift_monitoring") for d in backfilled if d.endswith("__drift_monitoring"))
    # while the backfill runs: only the days whose backfilled runs all ended
    done = {r[0] for r in psql("SELECT logical_date FROM dag_run WHERE run_type = 'backfill' AND state IN ('success', "
                               "'failed') GROUP BY logical_date HAVING count(*) = "
                               f"{len(backfilled)}", database)}  # fmt: skip
    runs = {(r[0], r[1]) for r in psql(f"SELECT dag_id, run_id FROM dag_run WHERE logical_date IN "
                                       f"({','.join(repr(str(d)) for d in done) or 'NULL'})", database)}  # fmt: skip
    # a shared dataset's training-set runs (asset-triggered, no logical date): all that ran
    rows = [r for r in psql(TASK_INSTANCES, database) if (r[0], r[5]) in runs or r[0].endswith("__training_set")]
    report(len(done), rows, psql(RUNS, database), started, float("nan"), [os.getloadavg()[0]], models)
    if len(models) > 1:
        shared_ingest(rows, started, models)


def _epoch(value: Any) -> float | None:
    return None if value is None else float(value)


def gaps(rows: list[tuple[Any, ...]]) -> dict[str, list[float]]:
    """For each task instance that ran: the time from the moment it could start (the last end of a task of its run
    that ended before it started, else the run's start) to its start, split into: ``scheduler`` (ready ->
    scheduled), ``queue`` (scheduled -> queued: pools, max_active_tasks, parallelism), ``start-up`` (queued ->
    started: the executor's worker, the task process, the DAG's load, the execution API's call)."""
    by_run: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in rows:
        by_run.setdefault((row[0], row[5]), []).append(row)
    out: dict[str, list[float]] = {"scheduler": [], "queue": [], "start-up": [], "total": []}
    for tis in by_run.values():
        ends = sorted(float(r[4]) for r in tis)
        for r in tis:
            start, scheduled, queued, run_start = float(r[3]), _epoch(r[6]), _epoch(r[7]), _epoch(r[8])
            if r[2] == "skipped" or scheduled is None or queued is None:
                continue  # skipped by a branch: never scheduled
            before = [e for e in ends if e <= start]
            ready = before[-1] if before else (run_start or scheduled)
            ready = min(ready, scheduled)
            out["scheduler"].append(scheduled - ready)
            out["queue"].append(max(0.0, queued - scheduled))
            out["start-up"].append(max(0.0, start - queued))
            out["total"].append(start - ready)
    return out


def label_of(dag_id: str, models: list[str]) -> str:
    """A DAG's name in the tables: its stage for one model (as before), its whole id for two."""
    return dag_id.split("__")[-1] if len(models) == 1 else dag_id


def report(days: int, rows: list[tuple[Any, ...]], runs: list[tuple[Any, ...]], started: float, peak: float,
           load: list[float], models: list[str] | None = None) -> None:  # fmt: skip
    models = models or [MODEL]
    ours = [r for r in rows if float(r[3]) >= started]
    spans = [(float(r[3]), float(r[4])) for r in ours]
    end = max(b for _, b in spans)
    wall = end - started
    task_time = sum(b - a for a, b in spans)
    idle = 1 - busy_seconds(spans) / wall
    print("\nruns: " + ", ".join(f"{label_of(d, models)} {s} {n}" for d, s, n in runs))
    per: dict[tuple[str, str], list[float]] = {}
    skipped: dict[tuple[str, str], int] = {}
    for r in ours:
        key = (label_of(r[0], models), r[1])
        if r[2] == "skipped":
            skipped[key] = skipped.get(key, 0) + 1
        else:
            per.setdefault(key, []).append(float(r[4]) - float(r[3]))
    width = max(17, *(len(dag) for dag, _ in per))
    print(f"\nmedian task time (s) [task instances that ran; skipped] over {days} days")
    for (dag, task), values in sorted(per.items()):
        counts = f"[{len(values)}; {skipped.get((dag, task), 0)}]"
        print(f"  {dag:{width}} {task:24} {statistics.median(values):8.2f} {counts}")
    dags = sorted({dag for dag, _ in per})
    per_day = {dag: sum(statistics.median(v) for (d, _t), v in per.items() if d == dag) for dag in dags}
    print(
        f"  sum of medians a {'day' if len(models) == 1 else 'run'}: "
        + ", ".join(f"{d} {v:.1f} s" for d, v in per_day.items())
    )
    spans_of: dict[str, list[float]] = {}
    by_run: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in ours:
        by_run.setdefault((label_of(r[0], models), r[5]), []).append((float(r[3]), float(r[4])))
    for (dag, _run), values in by_run.items():
        spans_of.setdefault(dag, []).append(max(b for _, b in values) - min(a for a, _ in values))
    print("  median run (first task's start -> last task's end): " + ", ".join(
        f"{d} {statistics.median(v):.1f} s [{len(v)} runs]" for d, v in sorted(spans_of.items())))  # fmt: skip
    waits = gaps(ours)
    if waits["total"]:
        print("\nbetween a task's upstream end and its start (median / p90 s, over task instances that ran):")
        for name, values in waits.items():
            q = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
            print(f"  {name:10} {statistics.median(values):6.2f} / {q:6.2f}")
    whole = "" if len(models) == 1 else "whole instance: "
    print(f"\n  {whole}wall {wall:.0f} s ({wall / days:.1f} s a day), task time {task_time:.0f} s "
          f"({task_time / days:.1f} s a day), scheduler idle share {idle:.1%}, peak memory (PSS) {peak:.0f} "
          "MB")  # fmt: skip
    if len(models) > 1:
        shared = [r for r in ours if not r[0].startswith(tuple(f"{m}__" for m in models))]
        for model in models:
            own = [r for r in ours if r[0].startswith(f"{model}__")]
            if not own:
                continue
            own_spans = [(float(r[3]), float(r[4])) for r in own]
            model_wall = max(b for _, b in own_spans) - started
            model_task = sum(b - a for a, b in own_spans)
            # idle: neither its own tasks nor the shared ingest's (which it waits for) running
            busy = busy_seconds(own_spans + [(float(r[3]), float(r[4])) for r in shared])
            print(f"  {model} (training_set + drift_monitoring; the shared ingest not counted): wall "
                  f"{model_wall:.0f} s ({model_wall / days:.1f} s a day), task time {model_task:.0f} s "
                  f"({model_task / days:.1f} s a day), idle share {1 - busy / model_wall:.1%} (none of its tasks nor "
                  "the shared ingest's running)")  # fmt: skip
            record("backfill", f"{days} days two models, {model}: wall s", [model_wall])
            record("backfill", f"{days} days two models, {model}: task time s", [model_task])
        shared_time = sum(float(r[4]) - float(r[3]) for r in shared)
        print(f"  the shared ingest: task time {shared_time:.0f} s ({shared_time / days:.1f} s a day); peak memory: "
              "the instance's only (one Airflow for both models)")  # fmt: skip
    if days < 365:
        print(f"  EXTRAPOLATED (linear, x{365 / days:.1f}) to 365 days: wall ~{wall * 365 / days / 60:.0f} min, "
              f"task time ~{task_time * 365 / days / 60:.0f} min")  # fmt: skip
    print(f"  load average {load[0]:.1f} at the start, {load[-1]:.1f} at the end (mean of samples "
          f"{statistics.mean(load):.1f}), on {os.cpu_count()} cores")  # fmt: skip
    what = "ingest + drift monitoring" if len(models) == 1 else "two models on one dataset (shared ingest)"
    name = f"{days} days" if len(models) == 1 else f"{days} days two models"
    record("backfill", f"{days} days {what}, wall s", [wall])
    record("backfill", f"{days} days {what}, task time s", [task_time])
    record("backfill", f"{name}, scheduler idle share", [idle])
    record("backfill", f"{name}, peak memory MB", [peak])


def shared_ingest(rows: list[tuple[Any, ...]], started: float, models: list[str]) -> bool:
    """Print (and say whether) the dataset's ingest ran each of extract, validate and version_partition once a day:
    one task instance per day and task, on its first try, and no ``<model>__ingest`` task ran."""
    ours = [r for r in rows if float(r[3]) >= started]
    ingest = [r for r in ours if r[0] == f"{DATASET}__ingest"]
    days = sorted({str(r[10]) for r in ingest})  # logical dates: a second run of a day counts on the same day
    print(f"\nthe shared ingest {DATASET}__ingest: {len(days)} days that ran a task")
    once = True
    for task in SHARED_TASKS:
        tis = [r for r in ingest if r[1] == task]
        per_day: dict[str, int] = {}
        for r in tis:
            per_day[str(r[10])] = per_day.get(str(r[10]), 0) + 1
        tries = max((int(r[9]) for r in tis), default=0)
        states = sorted({str(r[2]) for r in tis})
        ok = len(per_day) == len(days) and set(per_day.values()) == {1} and tries == 1 and states == ["success"]
        once &= ok
        most = max(per_day.values(), default=0)
        verdict = "once a day" if ok else "NOT once a day"
        print(f"  {task:18} {len(tis)} task instances over {len(per_day)} days, at most {most} a day, highest try "
              f"{tries}, states {states}: {verdict}")  # fmt: skip
    own = [r for r in ours if r[0] in {f"{m}__ingest" for m in models}]
    once &= not own
    print(f"  task instances of a model's own ingest DAG: {len(own)}")
    for model in models:
        sets = [r for r in ours if r[0] == f"{model}__training_set" and r[2] == "success"]
        per_day = {str(r[10]) for r in sets}
        ok = sorted(per_day) == days and len(sets) == len(days)
        once &= ok
        print(f"  {model}__training_set: {len(sets)} successful assemble_training_set over {len(per_day)} of the "
              f"{len(days)} days: {'one a day' if ok else 'NOT one a day'}")  # fmt: skip
    print(f"  => extract/validate/version_partition ran once a day and each model assembled each day once: "
          f"{'yes' if once else 'NO'}")  # fmt: skip
    return once


if __name__ == "__main__":
    main()
