"""Run by the Python of the environment ``docs/adopt.md`` built (never the repository's code), after the page's
steps: the loop of the scaffolded model in-process (``dag.test()``: the real task runner, no scheduler), the ingest
of every day of the source, a training run and the promotion of its version. Prints one JSON object.

    python adopt_run.py MODEL FIRST_DAY LAST_DAY OUT.json
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    import pendulum

    model, first, last, out = sys.argv[1], *map(dt.date.fromisoformat, sys.argv[2:4]), Path(sys.argv[4])
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow < 3.2
        from airflow.models.dagbag import DagBag
    from airflow.configuration import conf

    from mlops_provider.hooks.mlflow import MlflowHook

    started = time.monotonic()
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "reserialize"], check=True,
                   capture_output=True)  # fmt: skip
    bag = DagBag(dag_folder=os.path.join(conf.get("core", "dags_folder"), "mlops_models.py"))
    result: dict = {"import_errors": {k: v[-800:] for k, v in bag.import_errors.items()}, "ingest": {}}
    ingest = bag.get_dag(f"{model}__ingest")
    day = first
    while day <= last:
        run = ingest.test(logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC").add(days=1))
        result["ingest"][day.isoformat()] = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
        day += dt.timedelta(days=1)
    result["ingest_seconds"] = round(time.monotonic() - started, 1)
    training = bag.get_dag(f"{model}__training").test(run_conf={"reason": "manual"})
    result["training"] = {ti.task_id: str(ti.state) for ti in training.get_task_instances()}
    hook = MlflowHook()
    versions = hook.get_client().search_model_versions(f"name='{model}'")
    version = str(max(int(v.version) for v in versions)) if versions else None
    result["version"] = version
    if version:
        promotion = bag.get_dag(f"{model}__promotion").test(run_conf={"version": version})
        result["promotion"] = {ti.task_id: str(ti.state) for ti in promotion.get_task_instances()}
        result["champion"] = hook.alias_version(model, "champion")
    result["seconds"] = round(time.monotonic() - started, 1)
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
