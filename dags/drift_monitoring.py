"""Drift monitoring: compare each new day with the champion's training data; retrain when drift crosses the line."""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from _assets import DATASET, MODEL_NAME, TRAINING_SET
from airflow.sdk import DAG

from mlops_provider.operators.evidently import DriftReportOperator
from mlops_provider.operators.retraining import TriggerRetrainingOperator
from mlops_provider.sensors.drift import DriftSensor

NUMERICAL = [
    "tenure_days", "monthly_charges", "total_charges", "sessions_7d", "avg_session_minutes",
    "support_tickets_30d", "payment_failures_90d", "discount_pct", "last_login_days_ago",
]  # fmt: skip
CATEGORICAL = ["plan", "region", "device", "payment_method"]
DRIFT_SHARE = 0.3

DOC_MD = f"""
# drift_monitoring

Runs after each day's ingest (Asset `{TRAINING_SET.name}`, whose event names the partitions), for the newest
validated day.

| task | what it does | when it skips or fails |
|---|---|---|
| `drift_report` | Evidently `DataDriftPreset`: the day vs the **champion's training set** (resolved through the registry: alias `champion` -> version tags `data.path`/`data.rev` -> the data registry); declared column types; each side sampled to at most 100k rows (seed 0). Report: link *Drift report*; summary and HTML in `$MLOPS_HOME/reports/drift/{DATASET}/`; metric `drift_share` in MLflow experiment `monitoring`, one point per day | skipped when there is no champion yet, or the day was quarantined |
| `drift_sensor` | deferrable: waits in the triggerer for the day's summary; goes on when the drift share is >= {DRIFT_SHARE} | **skipped** when drift is below the line (the normal case) |
| `trigger_training` | triggers `training` with run id `drift__{DATASET}__<day>` and conf `reason=drift`, `detail` = the drift summary and report | skipped (with the reason) when that window already triggered, a training run is queued or running, within the 2-day cooldown, or over the budget of 2 per week |

**Reading the report**: per column, the method (normed Wasserstein for numbers, Jensen-Shannon for categories
on large samples), the score and the threshold (0.1); a column drifts when its distance is at or above it.
**Silencing a false alarm**: mark `trigger_training` of that run as skipped before it runs, or raise
`DRIFT_SHARE` in `dags/drift_monitoring.py`. **Forcing a retrain**: trigger `training` with reason `manual`.
"""

with DAG(
    dag_id="drift_monitoring",
    description="Daily drift check against the champion's training data; triggers retraining on drift",
    schedule=[TRAINING_SET],
    start_date=pendulum.parse(os.environ.get("MLOPS_START_DATE", "2026-11-01"), tz="UTC"),
    catchup=False,
    max_active_runs=1,
    doc_md=DOC_MD,
    tags=["mlops", "monitoring", "evidently", "drift"],
    default_args={"owner": "mlops", "retries": 1, "retry_delay": timedelta(seconds=30)},
) as dag:
    drift_report = DriftReportOperator(
        task_id="drift_report",
        dataset=DATASET,
        model_name=MODEL_NAME,
        numerical_columns=NUMERICAL,
        categorical_columns=CATEGORICAL,
        # Asset-triggered runs have no data interval: the triggering events name the partition; a manual run
        # checks the day of its logical date.
        partition="{{ (dag_run.logical_date or dag_run.run_after) | ds }}",
        partition_asset=TRAINING_SET,
        drift_share_threshold=DRIFT_SHARE,
    )
    drift_sensor = DriftSensor(
        task_id="drift_sensor",
        summary_path="{{ ti.xcom_pull(task_ids='drift_report')['summary_path'] }}",
        drift_share_threshold=DRIFT_SHARE,
        poll_interval=5,
    )
    trigger_training = TriggerRetrainingOperator(
        task_id="trigger_training",
        dataset=DATASET,
        decision="{{ ti.xcom_pull(task_ids='drift_sensor') | tojson }}",
    )
    drift_report >> drift_sensor >> trigger_training
