"""Issue 31, item 3: one ingest per dataset shared by the models that read it. Two specs on the churn dataset (the
churn spec and a copy under another model name) through the real DagBag of the DAG file: ``customer_activity__ingest``
extracts, validates and versions each day once (``dag.test()``), and each model's ``<model>__training_set`` DAG
assembles its own set from the partition Asset events, as the scheduler hands them over: an asset-triggered run that
consumed the events (one event per run for one model; both days' events coalesced into one run for the other)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pendulum
import pytest
import yaml
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, seed_range
from tests.helpers import PROJECT_ROOT, run_on_events

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

DAY, NEXT = dt.date(2026, 11, 10), dt.date(2026, 11, 11)
DATASET = "customer_activity"
MODELS = ("churn_classifier", "churn_twin")


def git(workspace: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=workspace, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def dagbag(airflow_db, mlops_home, tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    models = tmp_path / "project" / "models"
    models.mkdir(parents=True)
    for folder in ("gx", "training", "promotion", "serving"):  # the spec's relative paths, as in include/
        (models.parent / folder).symlink_to(PROJECT_ROOT / "include" / folder)
    spec = yaml.safe_load((PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml").read_text())
    for name in MODELS:
        (models / f"{name}.yaml").write_text(yaml.safe_dump({**spec, "name": name}, sort_keys=False))
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models))
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "mlops_models.py"))
    assert bag.import_errors == {}
    return bag


def ingest_day(dag, day: dt.date):
    """The dataset's ingest run of ``day`` (data interval [day, day+1))."""
    return dag.test(logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC").add(days=1))


def partition_events(run_ids: list[str]) -> list[int]:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        events = session.query(AssetEvent).filter(AssetEvent.source_run_id.in_(run_ids))
        return [event.id for event in events.order_by(AssetEvent.timestamp)]


def assembled(dag_id: str) -> list[dict]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=dag_id, task_id="assemble_training_set", key="return_value")
        return [XComModel.deserialize_value(x) for x in rows.order_by(XComModel.timestamp)]


def task_runs(task_id: str) -> int:
    """How many times ``task_id`` ran in the dataset's ingest DAG (the models have no ingest DAG of their own)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        query = session.query(TaskInstance).filter_by(dag_id=f"{DATASET}__ingest", task_id=task_id)
        return query.filter(TaskInstance.state == "success").count()


def test_one_ingest_per_day_feeds_both_models_training_sets(dagbag, mlops_home):
    seed_range(create_engine(f"sqlite:///{mlops_home / 'source.db'}"), [DAY, NEXT], SourceSpec(seed=3))
    workspace = mlops_home / "data-registry"
    assert not {f"{model}__ingest" for model in MODELS} & set(dagbag.dag_ids)
    ingest = dagbag.get_dag(f"{DATASET}__ingest")

    first = ingest_day(ingest, DAY)
    assert first.state == "success"
    (event,) = partition_events([first.run_id])  # version_partition announced the day, once
    for model in MODELS:  # no set yet: the models' assembly follows the event, not the ingest run
        assert git(workspace, "tag", "--list", f"training-set/{model}/*") == ""

    # churn_classifier: one run per event, as the scheduler makes them when it keeps up.
    states = run_on_events(dagbag.get_dag("churn_classifier__training_set"), [event])
    assert states == {"assemble_training_set": "success"}
    (result,) = assembled("churn_classifier__training_set")
    assert result["partitions"] == [str(DAY)] and result["tag"] == f"training-set/churn_classifier/{DAY}"
    assert result["assembled"] == [f"training-set/churn_classifier/{DAY}"]

    second = ingest_day(ingest, NEXT)
    assert second.state == "success"
    events = partition_events([first.run_id, second.run_id])
    assert len(events) == 2
    # churn_twin: both days' events coalesced into one run (its runs fell behind): each day is assembled, in order.
    states = run_on_events(dagbag.get_dag("churn_twin__training_set"), events[::-1])
    assert states == {"assemble_training_set": "success"}
    (twin,) = assembled("churn_twin__training_set")
    assert twin["assembled"] == [f"training-set/churn_twin/{DAY}", f"training-set/churn_twin/{NEXT}"]
    assert twin["partitions"] == [str(DAY), str(NEXT)]  # the newest day's window holds both partitions
    assert git(workspace, "tag", "--list", "training-set/churn_twin/*").split() == twin["assembled"]

    # One extract, one validation and one version per day for the two models, and the same partition bytes in both
    # models' sets of DAY.
    assert (task_runs("extract"), task_runs("validate"), task_runs("version_partition")) == (2, 2, 2)
    assert git(workspace, "tag", "--list", f"partition/{DATASET}/*").split() == [
        f"partition/{DATASET}/{DAY}", f"partition/{DATASET}/{NEXT}"
    ]  # fmt: skip
    log = git(workspace, "log", "--format=%B", "--all")
    for model in MODELS:
        trailer = f"Airflow-Dag-Id: {model}__training_set"
        assert trailer in log
    sets = [git(workspace, "log", "-1", "--format=%B", f"training-set/{m}/{DAY}") for m in MODELS]
    assert all(f"Training-Set-Partitions: {DAY}" in body for body in sets)


def test_a_models_monitoring_gives_up_on_a_day_the_shared_ingest_failed(dagbag, mlops_home, capfd):
    """``wait_for_training_set`` looks at the dataset's ingest DAG: its failed run of the day (no rows at the source)
    ends the wait (skipped, with the reason) instead of a 12 h wait for a set that will not come."""
    empty = NEXT + dt.timedelta(days=5)
    seed_range(create_engine(f"sqlite:///{mlops_home / 'source.db'}"), [DAY], SourceSpec(seed=3))
    assert ingest_day(dagbag.get_dag(f"{DATASET}__ingest"), empty).state == "failed"
    monitoring = dagbag.get_dag("churn_twin__drift_monitoring")
    sensor_only = monitoring.partial_subset(
        task_ids=["wait_for_training_set"], include_upstream=False, include_downstream=False
    )
    run = ingest_day(sensor_only, empty)  # the same logical date as the dataset's run of the day
    (ti,) = run.get_task_instances()
    assert (ti.task_id, ti.state) == ("wait_for_training_set", "skipped")
    assert f"the ingest run of {empty + dt.timedelta(days=1)}T00:00:00+00:00 ({DATASET}__ingest) failed" in (
        capfd.readouterr().out
    )
