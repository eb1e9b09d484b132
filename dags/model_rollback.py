"""Manual rollback: restore the previous champion."""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from _assets import MODEL_NAME
from airflow.sdk import DAG, Param

from mlops_provider.operators.promotion import RollbackModelOperator

DOC_MD = f"""
# model_rollback

Trigger with **Trigger DAG w/ config** and a `reason`. It points alias `champion` of `{MODEL_NAME}` back at the
version held by alias `previous`, removes `previous` (so a second rollback cannot flip back by accident), and
records the reason in tags `rollback.*` of both versions.

Fails when there is no `previous` version (nothing was promoted over an earlier champion): then pick a version
in the MLflow UI and trigger `promotion` with field `version`. **Re-run (clear)** of a rollback that happened:
nothing changes (the restored version records which run restored it); a new rollback needs a new run.
"""

with DAG(
    dag_id="model_rollback",
    description="Restore the previous champion (manual, with a reason)",
    schedule=None,
    start_date=pendulum.parse(os.environ.get("MLOPS_START_DATE", "2026-11-01"), tz="UTC"),
    catchup=False,
    doc_md=DOC_MD,
    tags=["mlops", "promotion", "rollback"],
    params={
        "reason": Param("", type="string", minLength=3, description="why roll back (recorded on the versions)"),
        "model_name": Param(MODEL_NAME, type="string"),
    },
    default_args={"owner": "mlops", "retries": 1, "retry_delay": timedelta(seconds=30)},
) as dag:
    RollbackModelOperator(
        task_id="rollback", model_name="{{ params.model_name }}", reason="{{ params.reason }}", pool="model_promotion"
    )
