"""Drift monitoring: each day vs the champion's training data, and the champion on late labels; retrain on either."""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from _assets import DATASET, MODEL_NAME
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from mlops_provider.layout import training_set_tag
from mlops_provider.operators.evidently import DriftReportOperator
from mlops_provider.operators.performance import ModelPerformanceOperator
from mlops_provider.operators.retraining import BootstrapTrainingOperator, TriggerRetrainingOperator
from mlops_provider.sensors.drift import DriftSensor
from mlops_provider.sensors.dvc import DvcTagSensor
from mlops_provider.sensors.mlflow import ChampionSensor
from mlops_provider.templates import INTERVAL_DATE

NUMERICAL = [
    "tenure_days", "monthly_charges", "total_charges", "sessions_7d", "avg_session_minutes",
    "support_tickets_30d", "payment_failures_90d", "discount_pct", "last_login_days_ago",
]  # fmt: skip
CATEGORICAL = ["plan", "region", "device", "payment_method"]
DRIFT_SHARE = 0.3
AUC_FLOOR = 0.65  # the gate's floor (include/promotion/gate.json)
LABEL_DELAY_DAYS = 7

DOC_MD = f"""
# drift_monitoring

One run per day (its data interval), in order (`max_active_runs=1`, catchup on: a backfill checks every past
day exactly once, against the champion of that moment). This DAG is the loop's controller: it is what
triggers `training`.

| task | what it does | when it skips or fails |
|---|---|---|
| `wait_for_training_set` | deferrable: waits in the triggerer for tag `training-set/{DATASET}/<day>` (ingest of the day finished) | **skipped** when the day was quarantined (validation failed): nothing to check |
| `bootstrap_training` | cold start: no champion yet -> triggers `training` once (run id `bootstrap__{DATASET}`, reason `bootstrap`) | skipped when there is a champion, or the bootstrap run exists |
| `wait_for_champion` | reschedule-mode sensor: goes on once `{MODEL_NAME}` has a champion (at once, normally; after the bootstrap training and promotion, at the start), so every later day is checked against a model | skipped when the bootstrap challenger was rejected by the gate: trigger `training` by hand |
| `drift_report` | Evidently `DataDriftPreset`: the day vs the **champion's training set** (alias `champion` -> version tags `data.path`/`data.rev` -> the data registry); declared column types; each side sampled to at most 100k rows (seed 0). Link *Drift report*; summary and HTML in `$MLOPS_HOME/reports/drift/{DATASET}/<day>/<attempt>.json/.html`; metric `drift_share` in MLflow experiment `monitoring`, one point per day | skipped when there is no champion yet |
| `performance_check` | the champion on the labels of day - {LABEL_DELAY_DAYS} (churn labels arrive late): ROC AUC vs the floor {AUC_FLOOR}; metric `labelled_roc_auc` in `monitoring` | skipped when there is no champion; `no_labels` (no decision) when that day is not versioned |
| `drift_sensor` | deferrable: waits for both results; goes on with reason `drift` when the drift share is >= {DRIFT_SHARE}, or `performance` when the AUC is below the floor | **skipped** otherwise (the normal case) |
| `trigger_training` | triggers `training` with run id `drift__{DATASET}__<day>`, conf `reason`, `dataset_rev` = the day's training set, `detail` = the summaries and the report | skipped (with the reason) when that day already triggered, a training run is queued or running, within the 2-day cooldown, or over the budget of 2 per week |

**Reading the report**: per column, the method (normed Wasserstein for numbers, Jensen-Shannon for categories
on large samples), the score and the threshold (0.1); a column drifts when its distance is at or above it.
**Silencing a false alarm**: mark `trigger_training` of that run as skipped before it runs, or raise
`DRIFT_SHARE` in `dags/drift_monitoring.py`. **Forcing a retrain**: trigger `training` with reason `manual`.

**What a re-run (clear) of each task does** (history is append-only):

| task | re-run |
|---|---|
| `wait_for_training_set`, `wait_for_champion` | wait again; return at once when the tag / champion is there |
| `bootstrap_training` | never a second bootstrap (run id `bootstrap__{DATASET}`) |
| `drift_report` | a **re-check**: compares the day with the champion **its first check recorded** (not today's; fails if that version was deleted), writes a new record beside the first (`<day>/<new attempt>.json/.html`), never over it; the model health page keeps showing the first record |
| `performance_check` | the same: scores the version the first check scored, beside the first record |
| `drift_sensor` | decides again on the re-check's results and marks them `recheck` |
| `trigger_training` | never triggers twice for a day (run id `drift__{DATASET}__<day>`; its *Triggered DAG* link keeps naming that run), nor for a re-check made more than 6 h after the day's first check; a retry or a clear the same night (say after the sensor failed) still goes through, behind the other rails |

**Re-checking a past day** is therefore safe: clear `drift_report` with downstream; you get a second report next to
the first and no training (unless that day was first checked less than 6 h ago). **To retrain on a past day's data**, trigger `training` by hand with reason `manual` and
`dataset_rev` = `training-set/{DATASET}/<day>`. The weekly budget also counts real time (at most 2 triggered
trainings in any 7 days of wall-clock time, records in `$MLOPS_HOME/reports/retraining/{DATASET}/`), so neither a
long backfill nor a storm of re-runs can start more.
"""

with DAG(
    dag_id="drift_monitoring",
    description="Daily drift and late-label performance check of the champion; triggers (re)training",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.parse(os.environ.get("MLOPS_START_DATE", "2026-11-01"), tz="UTC"),
    catchup=True,
    max_active_runs=1,
    doc_md=DOC_MD,
    tags=["mlops", "monitoring", "evidently", "drift"],
    default_args={"owner": "mlops", "retries": 1, "retry_delay": timedelta(seconds=30)},
) as dag:
    wait_for_training_set = DvcTagSensor(
        task_id="wait_for_training_set",
        tag=training_set_tag(DATASET, INTERVAL_DATE),
        abandon_paths=[f"quarantine/{DATASET}/{INTERVAL_DATE}"],  # relative: under $MLOPS_HOME
        poll_interval=5,
    )
    bootstrap_training = BootstrapTrainingOperator(
        task_id="bootstrap_training",
        dataset=DATASET,
        model_name=MODEL_NAME,
        dataset_rev=training_set_tag(DATASET, INTERVAL_DATE),
    )
    wait_for_champion = ChampionSensor(
        task_id="wait_for_champion",
        model_name=MODEL_NAME,
    )
    drift_report = DriftReportOperator(
        task_id="drift_report",
        dataset=DATASET,
        model_name=MODEL_NAME,
        numerical_columns=NUMERICAL,
        categorical_columns=CATEGORICAL,
        drift_share_threshold=DRIFT_SHARE,
    )
    performance_check = ModelPerformanceOperator(
        task_id="performance_check",
        dataset=DATASET,
        model_name=MODEL_NAME,
        metric="roc_auc",
        floor=AUC_FLOOR,
        label_delay_days=LABEL_DELAY_DAYS,
    )
    drift_sensor = DriftSensor(
        task_id="drift_sensor",
        summary_path="{{ ti.xcom_pull(task_ids='drift_report')['summary_path'] }}",
        performance_path="{{ ti.xcom_pull(task_ids='performance_check')['summary_path'] }}",
        poll_interval=5,
    )
    trigger_training = TriggerRetrainingOperator(
        task_id="trigger_training",
        dataset=DATASET,
        decision=drift_sensor.output,
        dataset_rev=training_set_tag(DATASET, INTERVAL_DATE),
    )
    wait_for_training_set >> [bootstrap_training, wait_for_champion]
    wait_for_champion >> [drift_report, performance_check]
    [drift_report, performance_check] >> drift_sensor >> trigger_training
