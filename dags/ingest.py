"""Nightly ingest: extract one day of customer activity, validate it, version it, assemble the training set."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pendulum
from _assets import DATASET, TRAINING_SET
from airflow.sdk import DAG, CronDataIntervalTimetable

from mlops_provider.layout import partition_path, partition_tag
from mlops_provider.operators.dvc import DvcVersionOperator
from mlops_provider.operators.great_expectations import GreatExpectationsValidateOperator
from mlops_provider.operators.sql import SqlToParquetOperator
from mlops_provider.operators.training_set import TrainingSetAssemblyOperator
from mlops_provider.templates import INTERVAL_DATE

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SUITE = PROJECT_ROOT / "include" / "gx" / "expectations" / f"{DATASET}.json"

DOC_MD = f"""
# ingest: nightly customer activity

Every night this DAG takes **exactly its own data interval** (one day, `data_interval_start` to
`data_interval_end`) from the source database (connection `mlops_source`), so a backfill of past days is
correct. Runs of different days may run in parallel; writes to the data registry are serialized by the
`dvc_workspace` pool (and a lock in the registry hook).

| task | what it does | when it fails | what a re-run (clear) does |
|---|---|---|---|
| `extract` | rows of the interval -> `$MLOPS_HOME/staging/{DATASET}/<ds>.parquet` (atomic) | No rows: the source was not loaded for that day; load it, clear the task. Connection errors: check `mlops_source`. | Reads the interval again and replaces the staged file (nothing versioned is touched). |
| `validate` | Great Expectations suite `include/gx/expectations/{DATASET}.json`, plus every `event_ts` inside the run's interval | Data is bad: the partition goes to `$MLOPS_HOME/quarantine/{DATASET}/<ds>/<attempt>/` with `validation_result.json`; the log and the *GX Data Docs* link name the failed checks (full column lists for schema errors). Fix the source, then **clear `extract` with downstream**. It does not retry by itself. | Validates again as a new attempt: its result, Data Docs and (on failure) quarantine folder sit beside the earlier attempts, none is overwritten. |
| `version_partition` | DVC add + push + git commit (run metadata as trailers), tag `partition/{DATASET}/<ds>` | Lock/remote errors: see the message (workspace path, remote URL). A task killed mid-commit (OOM, node crash) leaves nothing to clean by hand: the next write clears git's stale locks and half-staged files first. | Identical data: no new commit. Changed data (the day was fixed): one new commit, the tag moves to it, the old version stays in the history. |
| `assemble_training_set` | the validated partitions of the **7 days** up to `<ds>` -> `data/{DATASET}/training_set.parquet`, tag `training-set/{DATASET}/<ds>`, Asset event `{TRAINING_SET.name}`; quarantined or missing days are left out and named in the event and the commit | Fails when that day's partition is not versioned (it was quarantined). **Waits** (up for reschedule, its pool slot freed) while another day of its window is still being ingested, and fails after 2 h naming that day. | Same window, same data: nothing changes. A different result (a day of the window was fixed since): a new version tagged `training-set/{DATASET}/<ds>.r2` (`.r3`...); the tag a model was trained on never moves. |

A day that failed validation is never used for training: only tagged (validated) partitions are.
"""

with DAG(
    dag_id="ingest",
    description="Extract, validate and version one day of customer activity; assemble the training set",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.parse(os.environ.get("MLOPS_START_DATE", "2026-11-01"), tz="UTC"),
    catchup=True,
    max_active_runs=4,
    doc_md=DOC_MD,
    tags=["mlops", "ingest", "dvc", "great-expectations"],
    default_args={
        "owner": "mlops",
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=10),
    },
) as dag:
    extract = SqlToParquetOperator(
        task_id="extract",
        conn_id="mlops_source",
        table=DATASET,
        timestamp_column="event_ts",
        parse_dates=["event_ts", "signup_date"],
        dataset=DATASET,
    )
    validate = GreatExpectationsValidateOperator(
        task_id="validate",
        data_path="{{ ti.xcom_pull(task_ids='extract')['path'] }}",
        suite_path=str(SUITE),
        dataset=DATASET,
        timestamp_column="event_ts",
    )
    version_partition = DvcVersionOperator(
        task_id="version_partition",
        source_path="{{ ti.xcom_pull(task_ids='extract')['path'] }}",
        target_path=partition_path(DATASET, INTERVAL_DATE),
        tag=partition_tag(DATASET, INTERVAL_DATE),
        pool="dvc_workspace",
    )
    assemble_training_set = TrainingSetAssemblyOperator(
        task_id="assemble_training_set",
        dataset=DATASET,
        window_days=7,
        asset=TRAINING_SET,
        pool="dvc_workspace",
    )
    extract >> validate >> version_partition >> assemble_training_set
