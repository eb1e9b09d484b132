"""Scheduler-level latency of the loop under the real scheduler, read from the metadata DB of the last
``make demo`` (run it first; ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` names the DB, as config/embedded.env sets):

1. task end -> next task start within an ingest run (extract -> validate -> version_partition -> assemble);
2. drift sensor success -> the triggered training run started;
3. the demo's wall time (written by the demo to ``$AIRFLOW_HOME/demo_wall_seconds``).

Prints medians and spreads; never fails on a timing.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record, spread  # noqa: E402

INGEST_CHAIN = ("extract", "validate", "version_partition", "assemble_training_set")


def ts(value: object) -> dt.datetime:
    """A timestamp column: a datetime (PostgreSQL) or its text (SQLite through a raw query)."""
    return value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))


def main() -> int:
    from sqlalchemy import create_engine, text

    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    wall_file = Path(os.environ.get("AIRFLOW_HOME", ".airflow")) / "demo_wall_seconds"
    if not url or not wall_file.exists():
        print("no finished `make demo` in this AIRFLOW_HOME: run it first, then this bench")
        return 0
    engine = create_engine(url)
    with engine.connect() as conn:
        tis = conn.execute(text(
            "SELECT dag_id, run_id, task_id, start_date, end_date FROM task_instance WHERE state = 'success'"
        )).all()  # fmt: skip
        runs = conn.execute(text("SELECT dag_id, run_id, start_date, data_interval_start FROM dag_run")).all()
    by_key = {(t.dag_id, t.run_id, t.task_id): t for t in tis}
    gaps = []
    for dag_id, run_id, task_id in list(by_key):
        if not dag_id.endswith("__ingest") or task_id not in INGEST_CHAIN[1:]:
            continue
        before = by_key.get((dag_id, run_id, INGEST_CHAIN[INGEST_CHAIN.index(task_id) - 1]))
        if before is not None:
            gaps.append((ts(by_key[(dag_id, run_id, task_id)].start_date) - ts(before.end_date)).total_seconds())
    trigger_gaps = []
    for run in runs:
        if not run.dag_id.endswith("__training") or not str(run.run_id).startswith("drift__"):
            continue
        day = str(run.run_id).rsplit("__", 1)[-1]  # the window (data interval start) that triggered it
        window_runs = {r.run_id for r in runs if r.dag_id.endswith("__drift_monitoring")
                       and str(r.data_interval_start or "").startswith(day)}  # fmt: skip
        sensor = next((t for (d, r, k), t in by_key.items() if d.endswith("__drift_monitoring") and k == "drift_sensor"
                       and r in window_runs), None)  # fmt: skip
        if sensor is not None and run.start_date is not None:
            trigger_gaps.append((ts(run.start_date) - ts(sensor.end_date)).total_seconds())
    wall = float(wall_file.read_text().strip())
    print("Scheduler latency in the last demo (LocalExecutor, SQLite, 2 cores):")
    if gaps:
        print(f"  ingest: task end -> next task start   {spread(gaps)}")
        record("scheduler", "ingest: task end -> next task start", gaps, note="from the last demo")
    if trigger_gaps:
        print(f"  drift sensor success -> training run started   {spread(trigger_gaps)}")
        record("scheduler", "drift sensor success -> training run started", trigger_gaps, note="from the last demo")
    print(f"  demo loop wall time   {wall:.0f} s")
    record("scheduler", "demo loop wall time (21 days)", [wall], note="one run")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
