"""The ingest DAG run for real (``dag.test()``: the real task runner, in-process) on the SQLite demo source."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import dvc.api
import pendulum
import pytest
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, seed_range
from mlops_provider.utils.files import md5_of_file
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.integration

DAY = dt.date(2026, 11, 10)
BAD_DAY = DAY + dt.timedelta(days=1)


@pytest.fixture
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "mlops_models.py"))
    assert bag.import_errors == {}
    return bag


@pytest.fixture
def ingest_dag(dagbag):
    return dagbag.get_dag("churn_classifier__ingest")


def run_for(dag, day: dt.date):
    """A manual run whose data interval is ``day`` (Airflow infers [day, day+1) from a logical date of day+1)."""
    logical = pendulum.datetime(day.year, day.month, day.day, tz="UTC").add(days=1)
    return dag.test(logical_date=logical)


def git(workspace: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=workspace, capture_output=True, text=True, check=True).stdout.strip()


def test_ingest_versions_the_validated_partition_and_skips_a_bad_day(ingest_dag, mlops_home):
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    spec = SourceSpec(seed=3, bad_dates={BAD_DAY: "duplicate_keys"})
    seed_range(create_engine(f"sqlite:///{mlops_home / 'source.db'}"), [DAY, BAD_DAY], spec)
    workspace = mlops_home / "data-registry"

    run = run_for(ingest_dag, DAY)
    assert run.state == "success"
    staged = mlops_home / "staging" / "customer_activity" / f"{DAY}.parquet"
    tag = f"partition/customer_activity/{DAY}"
    versioned = dvc.api.read(
        f"data/customer_activity/partitions/{DAY}.parquet", repo=str(workspace), rev=tag, mode="rb"
    )
    assert versioned == staged.read_bytes()  # byte-identical to what was validated
    assert f"Data-Md5: {md5_of_file(staged)}" in git(workspace, "log", "-1", "--format=%B", tag)
    assert f"Airflow-Data-Interval-Start: {DAY}T00:00:00+00:00" in git(workspace, "log", "-1", "--format=%B", tag)
    assert git(workspace, "tag", "--list", "training-set/*") == f"training-set/churn_classifier/{DAY}"
    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_run_id == run.run_id).all()
    assert len(events) == 1
    assert events[0].extra["partitions"] == [str(DAY)] and events[0].extra["rows"] > 1000
    assert events[0].extra["rev"] == git(workspace, "rev-parse", f"training-set/churn_classifier/{DAY}^{{commit}}")

    commits = git(workspace, "rev-list", "--count", "HEAD")
    assert run_for(ingest_dag, DAY).state == "success"  # a re-run of the day changes nothing
    assert git(workspace, "rev-list", "--count", "HEAD") == commits

    bad = run_for(ingest_dag, BAD_DAY)
    assert bad.state == "failed"
    states = {ti.task_id: ti.state for ti in bad.get_task_instances()}
    assert states == {
        "extract": "success",
        "validate": "failed",
        "version_partition": "upstream_failed",
        "assemble_training_set": "upstream_failed",
    }
    # one quarantine folder per validation attempt, the partition and its result inside
    assert len(list((mlops_home / "quarantine" / "customer_activity" / str(BAD_DAY)).glob(f"*/{BAD_DAY}.parquet"))) == 1
    assert git(workspace, "tag", "--list", f"*{BAD_DAY}") == ""
    assert git(workspace, "rev-list", "--count", "HEAD") == commits


def test_the_second_example_model_ingests_its_own_source_with_its_own_suite(dagbag, mlops_home):
    """card_fraud (another schema, key, label and suite, from the same factory): a good day is versioned and its
    training set assembled under the model's name; a day with out-of-range amounts is quarantined."""
    from mlops_provider.demo.transactions_source import TRANSACTIONS

    spec = SourceSpec(seed=4, rows_per_day=1500, bad_dates={BAD_DAY: "out_of_range"})
    seed_range(create_engine(f"sqlite:///{mlops_home / 'source.db'}"), [DAY, BAD_DAY], spec, TRANSACTIONS)
    dag = dagbag.get_dag("card_fraud__ingest")
    assert run_for(dag, DAY).state == "success"
    workspace = mlops_home / "data-registry"
    assert git(workspace, "tag", "--list", "partition/card_transactions/*") == f"partition/card_transactions/{DAY}"
    assert git(workspace, "tag", "--list", "training-set/card_fraud/*") == f"training-set/card_fraud/{DAY}"
    bad = run_for(dag, BAD_DAY)
    states = {ti.task_id: ti.state for ti in bad.get_task_instances()}
    assert states["validate"] == "failed" and states["version_partition"] == "upstream_failed"
    assert list((mlops_home / "quarantine" / "card_transactions" / str(BAD_DAY)).glob("*/validation_result.json"))
