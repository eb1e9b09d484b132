"""OpenLineage events of real task runs (the OpenLineage provider's listener, its file transport): an ingest run
names the source table and the versioned partition, a training run the training set (with md5) and the model
version, with this provider's facets (DVC rev/tag/md5, GX verdict, MLflow run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.integration


def complete_events(path: Path) -> dict[str, dict]:
    """The COMPLETE event of each task (job name ``<dag>.<task>``), from the file transport's JSON lines."""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE" and "." in e["job"]["name"]}


def test_ingest_and_training_runs_report_their_datasets(airflow_db, mlops_home, tmp_path):
    events_file = tmp_path / "openlineage.jsonl"
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "mlops-test",
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("lineage_run.py"))],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "states: ingest=success training=success" in proc.stdout
    events = complete_events(events_file)
    registry = f"dvc+file://{mlops_home / 'data-registry'}"

    extract = events["churn_classifier__ingest.extract"]
    (table,) = extract["inputs"]
    assert (table["namespace"], table["name"]) == (f"sqlite://{mlops_home / 'source.db'}", "customer_activity")
    (staged,) = extract["outputs"]
    assert staged["namespace"] == "file" and staged["name"].endswith("staging/customer_activity/2026-11-10.parquet")
    assert staged["outputFacets"]["outputStatistics"]["rowCount"] > 1000

    validate = events["churn_classifier__ingest.validate"]
    verdict = validate["run"]["facets"]["mlops_gx_validation"]
    assert verdict["success"] is True and verdict["evaluated"] == verdict["successful"] > 5
    assertions = validate["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert len(assertions) >= verdict["evaluated"] - 1 and all(a["success"] for a in assertions)

    version = events["churn_classifier__ingest.version_partition"]
    (partition,) = version["outputs"]
    assert (partition["namespace"], partition["name"]) == (
        registry,
        "data/customer_activity/partitions/2026-11-10.parquet",
    )
    dvc = partition["facets"]["mlops_dvc"]
    assert dvc["tag"] == "partition/customer_activity/2026-11-10" and len(dvc["rev"]) == 40
    assert (
        partition["facets"]["version"]["datasetVersion"] == dvc["md5"] == staged["facets"]["version"]["datasetVersion"]
    )

    assemble = events["churn_classifier__ingest.assemble_training_set"]
    (training_set,) = assemble["outputs"]
    assert training_set["name"] == "data/churn_classifier/training_set.parquet"
    assert [i["name"] for i in assemble["inputs"]] == [partition["name"]]

    train = events["churn_classifier__training.train"]
    (data,) = train["inputs"]
    assert (data["namespace"], data["name"]) == (registry, training_set["name"])
    assert data["facets"]["version"]["datasetVersion"] == training_set["facets"]["version"]["datasetVersion"]
    assert data["facets"]["mlops_dvc"]["rev"] == training_set["facets"]["mlops_dvc"]["rev"]
    (model,) = train["outputs"]
    assert model["name"] == "models/churn_classifier" and model["namespace"].startswith("mlflow+")
    assert model["facets"]["version"]["datasetVersion"] == model["facets"]["mlops_mlflow_model"]["version"] == "1"
    assert model["facets"]["mlops_mlflow_model"]["runId"] == train["run"]["facets"]["mlops_mlflow_run"]["runId"]
