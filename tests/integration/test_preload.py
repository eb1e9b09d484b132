"""Preloading in a real ``airflow`` start-up: the plugins folder's ``airflow_local_settings`` imports the task
libraries in a scheduler (LocalExecutor), not in other components, starts no thread, and a task process forked
afterwards uses the inherited libraries (a GX validation, an Evidently report, an MLflow run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.integration


PROBE = r"""
import json, os, sys, threading
sys.argv = ["airflow"] + sys.argv[1:]
import airflow  # runs airflow_local_settings from the plugins folder
heavy = ["great_expectations", "evidently", "mlflow", "pandas", "xgboost"]
result = {"loaded": [m for m in heavy if m in sys.modules], "threads": threading.active_count()}
if result["loaded"]:
    pid = os.fork()
    if pid == 0:  # the task process: use the inherited libraries
        code = 1
        try:
            import great_expectations as gx, mlflow, pandas as pd
            from evidently import Report
            from evidently.presets import DataDriftPreset
            df = pd.DataFrame({"x": range(200), "y": [i % 7 for i in range(200)]})
            ctx = gx.get_context(mode="ephemeral")
            batch = (ctx.data_sources.add_pandas("p").add_dataframe_asset("a")
                     .add_batch_definition_whole_dataframe("w").get_batch(batch_parameters={"dataframe": df}))
            ok = batch.validate(gx.expectations.ExpectColumnValuesToNotBeNull(column="x")).success
            snapshot = Report([DataDriftPreset()]).run(reference_data=df, current_data=df).dict()
            before = set(sys.modules)
            mlflow.set_tracking_uri("sqlite:///" + sys.argv[-1])
            with mlflow.start_run() as run:
                mlflow.log_metric("m", 1.0)
            mlflow.MlflowClient().search_registered_models()
            imported = sorted(m for m in set(sys.modules) - before if m.startswith("mlflow."))
            with open(sys.argv[-1] + ".child.json", "w") as out:
                json.dump({"mlflow_imported": imported}, out)
            code = 0 if ok and snapshot["metrics"] and run.info.run_id else 1
        finally:
            os._exit(code)
    result["child_exit"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
print(json.dumps(result))
"""


def run_airflow_like(tmp_path: Path, *command: str, executor: str = "LocalExecutor") -> dict:
    env = dict(
        os.environ,
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PROJECT_ROOT / "plugins"),
        AIRFLOW__CORE__EXECUTOR=executor,
    )
    env.pop("MLOPS_PRELOAD_MODULES", None)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *command, str(tmp_path / "mlflow.db")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    child = tmp_path / "mlflow.db.child.json"
    if child.exists():
        result.update(json.loads(child.read_text()))
    return result


def test_scheduler_preloads_and_a_forked_task_uses_the_libraries(tmp_path):
    result = run_airflow_like(tmp_path, "scheduler")
    assert set(result["loaded"]) == {"great_expectations", "evidently", "mlflow", "pandas", "xgboost"}
    assert result["threads"] == 1, "an import started a thread: forking task processes would not be safe"
    assert result["child_exit"] == 0
    # MLflow's SQL stores (the embedded default's tracking and registry) and their table models are imported once,
    # not by every task that reads the registry (~1 s each, issue 31)
    stores = [m for m in result["mlflow_imported"] if m.endswith(".sqlalchemy_store") or ".dbmodels" in m]
    assert stores == []


def test_other_components_do_not_preload(tmp_path):
    assert run_airflow_like(tmp_path, "api-server")["loaded"] == []
    assert run_airflow_like(tmp_path, "scheduler", executor="CeleryExecutor")["loaded"] == []
