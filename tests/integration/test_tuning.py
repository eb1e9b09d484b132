"""Tuning (spec ``training.tuning``) with real Optuna, MLflow, DVC and XGBoost: each trial a nested MLflow run of the
training run, the budget kept, the gate's holdout never handed to a trial, a killed task's study resumed by its
retry (no restart, no trial counted twice), pruning that stops a trial which falls behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mlops_provider.hooks.mlflow import MlflowHook
from mlops_provider.ml.split import split_from_mapping
from mlops_provider.runtime.tuner import journal_folder
from tests.helpers import PROJECT_ROOT
from tests.integration.models import SPEC, TRAINING, context, train_op

pytestmark = pytest.mark.integration

TUNING = {
    "n_trials": 3,
    "seed": 1,
    "metric": "roc_auc",
    "direction": "maximize",
    "search_space": {
        "max_depth": {"low": 2, "high": 6},
        "learning_rate": {"low": 0.02, "high": 0.3, "log": True},
        "n_estimators": {"low": 10, "high": 40},
    },
}

#: An entrypoint that records the keys of the rows it was handed, then runs the template (include/training/train.py).
RECORDING = """
import json, os, runpy, sys
import pandas as pd
args = sys.argv
def keys(flag):
    return sorted(set(pd.read_parquet(args[args.index(flag) + 1])[os.environ["KEY"]].astype(str)))
with open(os.environ["RECORD"], "a") as out:
    out.write(json.dumps({"run_id": args[args.index("--run-id") + 1], "train": keys("--train"),
                          "holdout": keys("--holdout")}) + "\\n")
runpy.run_path(os.environ["TEMPLATE"], run_name="__main__")
"""


@pytest.fixture
def recording(tmp_path, monkeypatch) -> tuple[Path, Path]:
    script, record = tmp_path / "recording_train.py", tmp_path / "record.jsonl"
    script.write_text(RECORDING)
    monkeypatch.setenv("RECORD", str(record))
    monkeypatch.setenv("KEY", SPEC.split_key)
    monkeypatch.setenv("TEMPLATE", str(TRAINING / "train.py"))
    return script, record


def nested_runs(parent_run_id: str) -> list:
    hook = MlflowHook()
    client = hook.get_client()
    experiment = client.get_experiment_by_name("churn")
    with hook.scoped_environment():
        return client.search_runs(
            [experiment.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_run_id}'"
        )


def test_each_trial_is_a_nested_run_scored_on_rows_carved_from_the_training_rows(training_set, recording):
    script, record = recording
    result = train_op(entrypoint=str(script), tuning=TUNING).execute(context())

    assert result["tuning"]["trials"] == 3 and result["version"] == "1"
    trials = nested_runs(result["run_id"])
    assert len(trials) == 3
    assert {r.info.status for r in trials} == {"FINISHED"}
    assert sorted(r.data.tags["tuning.trial"] for r in trials) == ["0", "1", "2"]
    assert all("roc_auc" in r.data.metrics and "max_depth" in r.data.params for r in trials)
    assert all("airflow.run_key" not in r.data.tags for r in trials)  # a retry finds the training run, not a trial

    # The holdout is untouched by the search: no trial trained or was scored on a holdout key.
    frame = pd.read_parquet(Path(os.environ["MLOPS_HOME"]) / "training" / result["run_id"] / "dataset.parquet")
    train_part, holdout = split_from_mapping(SPEC.holdout).split(frame)
    gate_keys = set(holdout[SPEC.split_key].astype(str))
    train_keys = set(train_part[SPEC.split_key].astype(str))
    calls = [json.loads(line) for line in record.read_text().splitlines()]
    by_run = {call["run_id"]: call for call in calls}
    assert len(calls) == 4 and set(by_run) == {r.info.run_id for r in trials} | {result["run_id"]}
    for run in trials:
        call = by_run[run.info.run_id]
        assert not set(call["train"]) & gate_keys and not set(call["holdout"]) & gate_keys
        assert not set(call["train"]) & set(call["holdout"])
        assert set(call["train"]) | set(call["holdout"]) == train_keys
    final = by_run[result["run_id"]]  # the best trial's parameters train on every training row, scored on the holdout
    assert set(final["train"]) == train_keys and set(final["holdout"]) == gate_keys

    hook = MlflowHook()
    parent = hook.get_run(result["run_id"]).data
    study = hook.load_run_dict(result["run_id"], "tuning/study.json")
    best = max((t for t in study["trials"]), key=lambda t: t["value"])
    assert parent.tags["tuning.best_trial"] == str(best["number"]) == str(result["tuning"]["best_trial"])
    chosen = json.loads(parent.tags["training.params"])
    assert {k: chosen[k] for k in TUNING["search_space"]} == best["params"]
    assert int(parent.params["max_depth"]) == best["params"]["max_depth"]
    assert study["best_so_far"][-1] == best["value"] and len(study["trials"]) == 3
    artifacts = {a.path for a in hook.get_client().list_artifacts(result["run_id"], "plots")}
    assert "plots/tuning_trials.svg" in artifacts
    assert hook.alias_version("churn_classifier", "challenger") == "1"

    again = train_op(entrypoint=str(script), tuning=TUNING).execute(context(try_number=2))
    assert again["resumed"] is True and again["tuning"]["best_trial"] == result["tuning"]["best_trial"]
    assert len(nested_runs(result["run_id"])) == 3


def test_the_time_budget_stops_the_study_and_other_reasons_do_not_tune(training_set):
    timed = {**TUNING, "n_trials": None, "timeout_minutes": 0.005}  # 0.3 s: the first trial takes longer
    result = train_op(tuning=timed).execute(context())
    assert result["tuning"]["trials"] == 1
    study = MlflowHook().load_run_dict(result["run_id"], "tuning/study.json")
    assert study["stopped"].startswith("timeout_minutes=0.005")

    from tests.helpers import task_context

    other = train_op(tuning=TUNING, trigger_reason="performance").execute(
        task_context(None, dag_id="training", run_id="manual__2", task_id="train")
    )
    assert other["tuning"] is None and nested_runs(other["run_id"]) == []


RUN_TASK = """
import json, sys
sys.path.insert(0, sys.argv[2])
from tests.integration.models import context, train_op
train_op(tuning=json.loads(sys.argv[1])).execute(context())
"""


def test_a_retry_after_a_killed_task_resumes_the_study(training_set):
    tuning = {**TUNING, "n_trials": 4}
    task = subprocess.Popen(
        [sys.executable, "-c", RUN_TASK, json.dumps(tuning), str(PROJECT_ROOT)],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    hook = MlflowHook()

    def states() -> dict[str, str]:
        experiment = hook.get_client().get_experiment_by_name("churn")
        if experiment is None:
            return {}
        with hook.scoped_environment():
            runs = hook.get_client().search_runs([experiment.experiment_id], "tags.`tuning.trial` != ''")
        return {r.data.tags["tuning.trial"]: r.info.status for r in runs}

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (
        list(states().values()).count("FINISHED") >= 2 and states().get("2") == "RUNNING"
    ):
        assert task.poll() is None, "the task ended before it was killed"
        time.sleep(0.3)
    before = states()
    assert before.get("2") == "RUNNING", before
    time.sleep(1.0)  # trial 2's entrypoint is busy
    os.kill(task.pid, signal.SIGKILL)  # the task process only: its entrypoint dies with it
    task.wait()

    result = train_op(tuning=tuning).execute(context(try_number=2))
    study = hook.load_run_dict(result["run_id"], "tuning/study.json")
    by_state: dict[str, list[int]] = {}
    for trial in study["trials"]:
        by_state.setdefault(trial["state"], []).append(trial["number"])
    assert by_state == {"COMPLETE": [0, 1, 3, 4], "FAIL": [2]}, by_state  # 4 counted; the killed one is not
    assert study["stale"] == [2] and result["tuning"]["trials"] == 4
    runs = nested_runs(result["run_id"])
    statuses = sorted(r.info.status for r in runs)
    assert statuses == ["FINISHED"] * 4 + ["KILLED"]
    first_two = {r.data.tags["tuning.trial"]: r.info.run_id for r in runs if r.data.tags["tuning.trial"] in "01"}
    assert {str(t["number"]): t["mlflow_run_id"] for t in study["trials"][:2]} == first_two  # not started over
    assert journal_folder(result["run_id"]).exists()


#: An entrypoint whose trials 0-2 report 0.9 while training and trial 3 on reports 0.1, then works on for a minute;
#: the training itself (no report file) runs the template.
PRUNABLE = """
import json, os, runpy, sys, time
args = sys.argv
tags = json.loads(args[args.index("--tags") + 1])
report = os.environ.get("MLOPS_TUNING_REPORT")
if not report:
    runpy.run_path(os.environ["TEMPLATE"], run_name="__main__")
    raise SystemExit(0)
trial = int(tags["tuning.trial"])
value = 0.9 if trial < 3 else 0.1
with open(report, "a") as out:
    for step in (10, 20):
        out.write(json.dumps({"step": step, "value": value}) + "\\n")
        out.flush()
if trial >= 3:
    time.sleep(60)
out = args[args.index("--output") + 1]
open(out, "w").write(json.dumps({"model_id": "m-%d" % trial, "metrics": {"roc_auc": value}}))
"""


def test_median_pruning_stops_a_trial_that_falls_behind(training_set, tmp_path, monkeypatch):
    script = tmp_path / "prunable.py"
    script.write_text(PRUNABLE)
    monkeypatch.setenv("TEMPLATE", str(TRAINING / "train.py"))
    tuning = {**TUNING, "n_trials": 5, "pruning": "median"}
    result = train_op(entrypoint=str(script), tuning=tuning).execute(context())
    study = MlflowHook().load_run_dict(result["run_id"], "tuning/study.json")
    assert [t["state"] for t in study["trials"]] == ["COMPLETE"] * 3 + ["PRUNED"] * 2
    assert [t["pruned_at_step"] for t in study["trials"][3:]] == [10, 10]
    trial_dirs = Path(os.environ["MLOPS_HOME"]) / "training" / result["run_id"] / "tuning"
    assert [(trial_dirs / f"trial-{n}" / "result.json").exists() for n in range(5)] == [True] * 3 + [False] * 2
    pruned = [r for r in nested_runs(result["run_id"]) if r.data.tags["tuning.state"] == "PRUNED"]
    assert sorted(r.info.status for r in pruned) == ["KILLED", "KILLED"]
    assert result["tuning"]["trials"] == 5


def test_the_journal_on_object_storage_is_read_back_by_another_worker(s3_server, tmp_path, monkeypatch):
    import optuna

    from mlops_provider.runtime.tuner import storage_root_journal

    prefix = f"tuning-{tmp_path.name}"
    monkeypatch.setenv("MLOPS_STORAGE_URL", f"s3://{s3_server.bucket}/{prefix}")
    monkeypatch.setenv("MLOPS_STORAGE_CONN_ID", "mlops_storage")
    monkeypatch.setenv("AIRFLOW_CONN_MLOPS_STORAGE", s3_server.aws_connection())
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def study() -> optuna.Study:
        storage = optuna.storages.JournalStorage(storage_root_journal(journal_folder("run-s3")))
        return optuna.create_study(study_name="run-s3", storage=storage, load_if_exists=True)

    study().optimize(lambda t: t.suggest_int("depth", 1, 9) * 0.1, n_trials=3)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "other-worker"))  # nothing of the first worker's disk
    resumed = study()
    assert [t.state.name for t in resumed.trials] == ["COMPLETE"] * 3
    keys = s3_server.keys(f"{prefix}/studies/run-s3/")
    assert keys and all(key.endswith(".jsonl") for key in keys)


def test_the_in_process_variant_tunes_inside_the_entrypoint_on_rows_carved_from_the_training_rows(training_set):
    """include/training/train_tuned.py (docs: "Tuning inside the entrypoint"): the provider runs it as any training
    (``training.tuning`` off); its trials are nested runs scored on rows carved from ``--train``, and the model is
    trained with the best trial's hyperparameters, which the run records."""
    sys.path.insert(0, str(TRAINING))
    try:
        import train_tuned
    finally:
        sys.path.remove(str(TRAINING))

    result = train_op(entrypoint=str(TRAINING / "train_tuned.py")).execute(context())

    assert result["tuning"] is None and result["version"] == "1"  # the provider did not tune: the script did
    trials = nested_runs(result["run_id"])
    assert len(trials) == train_tuned.N_TRIALS and {r.info.status for r in trials} == {"FINISHED"}
    frame = pd.read_parquet(Path(os.environ["MLOPS_HOME"]) / "training" / result["run_id"] / "dataset.parquet")
    train_part, holdout = split_from_mapping(SPEC.holdout).split(frame)
    carved = int(train_tuned.validation_mask(train_part, SPEC.split_key, train_tuned.VALIDATION_FRACTION).sum())
    assert 0 < carved < len(train_part) and carved != len(holdout)
    assert {r.data.metrics["validation.rows"] for r in trials} == {float(carved)}  # never the gate's holdout

    parent = MlflowHook().get_run(result["run_id"]).data
    best = max(trials, key=lambda r: r.data.metrics[f"validation.{train_tuned.METRIC}"])
    assert parent.tags["tuning.best_trial"] == best.data.tags["tuning.trial"]
    tuned = json.loads(parent.tags["tuning.best_params"])
    for name in train_tuned.SEARCH_SPACE:  # the registered model was trained with the best trial's values
        assert float(parent.params[name]) == pytest.approx(float(best.data.params[name]))
        assert float(tuned[name]) == pytest.approx(float(best.data.params[name]))
    assert parent.metrics["rows"] == len(holdout) and parent.metrics["train_rows"] == len(train_part)
