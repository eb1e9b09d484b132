"""Promotion: evaluate the challenger against the champion, gate, and move the champion alias."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from _assets import CHALLENGER, DATASET, MODEL_NAME
from airflow.sdk import DAG, Param

from mlops_provider.operators.promotion import EvaluateModelOperator, ModelGateOperator, PromoteModelOperator
from mlops_provider.operators.serving import PackageModelOperator, ShadowCheckOperator

INCLUDE = Path(__file__).resolve().parents[1] / "include"

DOC_MD = f"""
# promotion: champion / challenger gate

Runs when training registers a challenger (Asset `{CHALLENGER.name}`), or by hand (field `version`).

| task | what it does | when it fails or skips |
|---|---|---|
| `evaluate` | judges **the version this run was triggered for** (the Asset event's `version`, or the `version` field; only a manual run without one takes alias `challenger`): scores it and the champion on the **holdout customers** of its training set (`include/training/split.json`: no model ever trains on them), overall and per `plan`; runs `include/promotion/behaviour_tests.json`; applies `include/promotion/gate.json`; writes a **verdict ledger** per evaluation (link *Verdict ledger*; `$MLOPS_HOME/reports/ledgers/<model>/v<N>/<attempt>.json`, MLflow artifact `gate/ledgers/<attempt>.json` of the version's run, tags `gate.*` on its version) | fails on unreadable rules/tests or a version without lineage tags |
| `gate` | lets promotion go ahead only on `promote` | **skipped** when the challenger is rejected: read the skip message or the ledger (which check failed: floor, improvement margin, a segment regression, a behaviour test) |
| `package` | downloads the version's artifacts; with `MLOPS_TRAINING_RUNNER=docker` builds the serving image `churn-classifier-serving:v<N>` (MLflow's scoring server, labelled with model version and data rev) | engine or build errors: the message has the build log's tail |
| `shadow_check` | starts the candidate's server (container, or a local `mlflow models serve`), replays the newest validated partition, compares with the registry model's predictions; needs 0 errors, max difference <= 1e-6, p95 <= 500 ms; numbers go into the ledger (`shadow`) | fails with the numbers; the champion does not move |
| `promote` | `champion` -> challenger, old champion -> `previous` (compare-and-set, pool `model_promotion`) | "champion is vX now but was vY when ... was evaluated": another promotion or a rollback happened; trigger this DAG again for the same version |

**What a re-run (clear) does**: `evaluate` judges the same version again and writes a new ledger beside the
earlier ones (never over them, never another version's); `package` reuses the built image; `shadow_check` appends
its numbers to the ledger of this run's evaluation; `promote` changes nothing when the version is the champion or
**was promoted by this run**, even if the champion moved on since (a re-run never moves the champion back).

**Roll back**: trigger DAG `model_rollback` with a reason; it restores `previous` as `champion` and records the
reason on both versions.
"""

with DAG(
    dag_id="promotion",
    description="Evaluate the challenger, gate it, promote it to champion",
    schedule=[CHALLENGER],
    start_date=pendulum.parse(os.environ.get("MLOPS_START_DATE", "2026-11-01"), tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC_MD,
    tags=["mlops", "promotion", "mlflow"],
    params={
        "version": Param(None, type=["null", "string"], description="version to evaluate; empty: alias challenger")
    },
    default_args={"owner": "mlops", "retries": 1, "retry_delay": timedelta(seconds=30)},
) as dag:
    evaluate = EvaluateModelOperator(
        task_id="evaluate",
        model_name=MODEL_NAME,
        challenger_version="{{ params.version or '' }}",
        model_asset=CHALLENGER,
        gate_rules=str(INCLUDE / "promotion" / "gate.json"),
        behaviour_tests=str(INCLUDE / "promotion" / "behaviour_tests.json"),
        holdout_spec=str(INCLUDE / "training" / "split.json"),
    )
    gate = ModelGateOperator(task_id="gate", evaluation=evaluate.output)
    promote = PromoteModelOperator(
        task_id="promote",
        model_name=MODEL_NAME,
        version="{{ ti.xcom_pull(task_ids='evaluate')['challenger_version'] }}",
        expected_champion="{{ ti.xcom_pull(task_ids='evaluate')['champion_version'] }}",
        pool="model_promotion",
    )
    package = PackageModelOperator(
        task_id="package",
        model_name=MODEL_NAME,
        version="{{ ti.xcom_pull(task_ids='evaluate')['challenger_version'] }}",
        serving_dir=str(INCLUDE / "serving"),
        requirements=str(INCLUDE / "training" / "requirements.txt"),
    )
    shadow_check = ShadowCheckOperator(
        task_id="shadow_check",
        package=package.output,
        dataset=DATASET,
        p95_ms=500.0,
        ledger_path="{{ ti.xcom_pull(task_ids='evaluate')['ledger_path'] }}",
    )
    evaluate >> gate >> package >> shadow_check >> promote
