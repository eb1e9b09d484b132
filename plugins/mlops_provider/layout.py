"""The provider's vocabulary, on the ground floor: where data lives in the data registry, the tag and alias names
every stage reads and writes, and the run metadata a version carries. Imports nothing heavy and nothing of the
provider, so every module (hooks, operators, sensors, the web app, DAG files) may import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import Context

# -- the data registry (DVC + git) ---------------------------------------------------------------------------------


def partition_tag(dataset: str, partition: str) -> str:
    """Git tag of a validated, versioned partition."""
    return f"partition/{dataset}/{partition}"


def partition_path(dataset: str, partition: str) -> str:
    """Path of a partition inside the data registry."""
    return f"data/{dataset}/partitions/{partition}.parquet"


def training_set_tag(dataset: str, partition: str) -> str:
    """Git tag of the training set assembled for a partition date (immutable; a rebuilt set is ``<tag>.rN``)."""
    return f"training-set/{dataset}/{partition}"


def training_set_path(dataset: str) -> str:
    """Path of the training set inside the data registry (one path, one version per assembly)."""
    return f"data/{dataset}/training_set.parquet"


def run_metadata(context: Context) -> dict[str, str]:
    """Git trailers that tie a data version to the Airflow task try that made it."""
    ti = context["ti"]
    logical_date = context.get("logical_date")
    interval_start = context.get("data_interval_start")
    return {
        "Airflow-Dag-Id": ti.dag_id,
        "Airflow-Run-Id": ti.run_id,
        "Airflow-Task-Id": ti.task_id,
        "Airflow-Logical-Date": logical_date.isoformat() if logical_date else "none",
        "Airflow-Data-Interval-Start": interval_start.isoformat() if interval_start else "none",
        "Airflow-Try-Number": str(ti.try_number),
    }


# -- the model registry (MLflow) -----------------------------------------------------------------------------------

#: MLflow run tag holding ``dag_id/run_id/task_id``: a task's re-run finds and reuses its run by it.
RUN_KEY_TAG = "airflow.run_key"
#: Model version (and run) tags naming the training set a version was trained on.
DATA_PATH_TAG = "data.path"
DATA_REV_TAG = "data.rev"
DATA_MD5_TAG = "data.md5"
#: Model version tags of the promotion gate's latest verdict.
GATE_DECISION_TAG = "gate.decision"
#: Aliases of a registered model.
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
PREVIOUS_ALIAS = "previous"
