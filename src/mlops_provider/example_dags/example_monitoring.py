"""Example: the champion's daily drift and late-label check, the retraining trigger with its rails, and retention
of old reports.

Extras: ``evidently`` (drift report), ``mlflow`` (the champion, scoring), ``dvc`` (the versioned partitions).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from mlops_provider.operators.evidently import DriftReportOperator
from mlops_provider.operators.performance import ModelPerformanceOperator
from mlops_provider.operators.retention import RetentionOperator
from mlops_provider.operators.retraining import TriggerRetrainingOperator
from mlops_provider.sensors.drift import DriftSensor

with DAG(
    dag_id="example_mlops_monitoring",
    schedule=CronDataIntervalTimetable("0 4 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["example", "mlops"],
) as dag:
    # --8<-- [start:howto_operator_drift_report]
    drift = DriftReportOperator(
        task_id="drift_report",
        dataset="orders",
        model_name="orders_model",
        numerical_columns=["amount", "items"],
        categorical_columns=["country", "channel"],
        signal="learned",  # the default: each column against its calm days' bound, weighted by importance
        learned_drift_threshold=0.3,
        drift_share_threshold=0.3,  # the share's line: it decides while nothing is learnable (signal_note says why)
        reference="champion",  # or "rolling" / "seasonal" (reference_days, season_days)
    )
    # --8<-- [end:howto_operator_drift_report]

    # --8<-- [start:howto_operator_model_performance]
    performance = ModelPerformanceOperator(
        task_id="performance_check",
        dataset="orders",
        model_name="orders_model",
        metric="roc_auc",
        floor=0.7,
        label_column="returned",
        label_delay_days=7,  # the labels of a day arrive a week later
        label_window_days=3,  # the default: the labelled day pooled with the 2 before it
        estimate_calibration="auto",  # the default: calibrate only when it lowers the holdout's Brier score
    )
    # --8<-- [end:howto_operator_model_performance]

    # --8<-- [start:howto_sensor_drift]
    decision = DriftSensor(
        task_id="drift_sensor",
        summary_path=drift.output,  # the checks' whole results: the sensor reads their "summary_path"
        performance_path=performance.output,
    )
    # --8<-- [end:howto_sensor_drift]

    # --8<-- [start:howto_operator_trigger_retraining]
    TriggerRetrainingOperator(
        task_id="trigger_training",
        dataset="orders",
        decision=decision.output,
        trigger_dag_id="orders_model__training",
        cooldown_days=3,  # rails: at most one drift-triggered training per 3 days
        max_per_week=2,
    )
    # --8<-- [end:howto_operator_trigger_retraining]

    [drift, performance] >> decision

    # --8<-- [start:howto_operator_retention]
    RetentionOperator(  # on its own: no upstream, no downstream, so it never holds up the checks
        task_id="retention",
        model_name="orders_model",
        dataset="orders",
        days=90,  # data days before the run's day; None: $MLOPS_RETENTION_DAYS (else 90); 0: keep forever
    )
    # --8<-- [end:howto_operator_retention]
