"""Training: train the churn classifier on a versioned training set, track it in MLflow, register a challenger."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from _assets import CHALLENGER, DATASET, MODEL_NAME
from airflow.sdk import DAG, Param

from mlops_provider.layout import training_set_path, training_set_tag
from mlops_provider.operators.training import TrainModelOperator

TRAINING_CODE = Path(__file__).resolve().parents[1] / "include" / "training"

DOC_MD = f"""
# training: churn classifier

Not scheduled by time: `drift_monitoring` triggers it (reason `bootstrap` when there is no champion yet,
`drift` or `performance` when the champion's world changed), or you do with **Trigger DAG w/ config** (fields:
`reason`, `dataset_rev`, `hyperparameters`, `detail`). An empty `dataset_rev` trains on the newest training set
(tag `training-set/{DATASET}/<day>`, assembled by `ingest`).

`train` fetches the training set at its DVC rev (md5-checked), runs `include/training/train.py` through the
configured runner (`MLOPS_TRAINING_RUNNER`: `local` subprocess or `docker` container of image
`mlops-training:latest`), logs params, metrics, the model and its lineage tags (data rev/md5/path, code
version, image, Airflow run, trigger reason) to MLflow, registers model `{MODEL_NAME}` once per run and points
alias `challenger` at it. It then emits Asset `{CHALLENGER.name}`, on which promotion is scheduled.
Clearing `train` is safe: the same MLflow run and version are reused; a version the gate already judged keeps
its aliases and is not announced again (no new promotion run).

| failure | meaning | what to do |
|---|---|---|
| `hyperparameters.<name>: ...` | the conf names an unknown hyperparameter, a wrong type or a value out of range (`include/training/hyperparameters.json`) | trigger again with a corrected conf |
| `dataset_rev: revision ... does not exist` | the conf's `dataset_rev` is not a tag/commit of the data registry | list tags: `git -C $MLOPS_HOME/data-registry tag -l 'training-set/*'` |
| `dataset_rev: ... is not a version of data/...training_set.parquet` | the rev names another commit (a partition tag, a branch): training on it would record the wrong data | name a `training-set/{DATASET}/<day>` tag (or `.rN` revision) or its commit |
| `conf: unknown key(s) [...]` | a misspelt conf key (e.g. `datset_rev`), which would otherwise be ignored | trigger again with the allowed names the message lists |
| `MLflow tracking server ... is not reachable` | the server is down; retried 3 times with backoff, then the task retries | check the `mlflow_default` connection / the server |
| `training image ... does not exist` / `needs a Docker engine` | docker runner without its image or engine | `make training-image`, or set `MLOPS_TRAINING_RUNNER=local` |
| `training entrypoint exited with ...` | the training code failed; the error shows the last lines of its output | fix the code; clear the task (it reuses the same MLflow run) |

Clearing `train` after it succeeded changes nothing: the finished MLflow run and its model version are reused.
A try that was killed (worker lost, `kill -9`) takes its training process with it (parent-death signal), and the
retry stops any training process an earlier try left running before it starts, so one MLflow run never has two
writers.
Reproduce a run: `mlops reproduce <mlflow run id>`.
"""

with DAG(
    dag_id="training",
    description="Train, track and register the churn classifier (alias challenger)",
    schedule=None,
    start_date=pendulum.parse(os.environ.get("MLOPS_START_DATE", "2026-11-01"), tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC_MD,
    tags=["mlops", "training", "mlflow", "xgboost"],
    params={
        "reason": Param(
            "manual", enum=["manual", "bootstrap", "drift", "performance", "schedule"], description="why train now"
        ),
        "dataset_rev": Param(
            None, type=["null", "string"], description="data registry tag or commit; empty: the newest training set"
        ),
        "hyperparameters": Param({}, type="object", description='overrides, e.g. {"max_depth": 6}'),
        "detail": Param({}, type="object", description="context of the reason (drift summary, report location)"),
    },
    default_args={
        "owner": "mlops",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
    },
) as dag:
    train = TrainModelOperator(
        task_id="train",
        dataset_path=training_set_path(DATASET),
        dataset_rev="{{ params.dataset_rev or '' }}",
        dataset_tag_pattern=training_set_tag(DATASET, "*"),
        entrypoint=str(TRAINING_CODE / "train.py"),
        hyperparameter_spec=str(TRAINING_CODE / "hyperparameters.json"),
        hyperparameters="{{ params.hyperparameters | tojson }}",
        experiment_name="churn",
        model_name=MODEL_NAME,
        trigger_reason="{{ params.reason }}",
        trigger_detail="{{ params.detail | tojson }}",
        model_asset=CHALLENGER,
        execution_timeout=timedelta(minutes=30),
    )
