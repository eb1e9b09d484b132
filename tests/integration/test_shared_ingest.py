"""Issue 31, item 3: one ingest per dataset shared by the models that read it. Two specs on the churn dataset (the
churn spec and a copy under another model name) through the real DagBag of the DAG file: ``customer_activity__ingest``
extracts, validates and versions each day once (``dag.test()``) and starts, per model, the run of that day of
``<model>__training_set``, which assembles the model's own set. Two days ingested back to back, before any assembly
ran, each get their run in each model's DAG: the case in which the partition Asset's events were left behind when the
training sets were scheduled on it (Airflow 3.3, apache/airflow#56050)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pendulum
import pytest
import yaml
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, seed_range
from tests.helpers import PROJECT_ROOT, run_queued

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


def training_set_runs(model: str) -> list[tuple[str, str, str]]:
    """The runs of ``<model>__training_set``: (run id, logical day, state), by logical date."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter_by(dag_id=f"{model}__training_set").order_by(DagRun.logical_date)
        return [(run.run_id, run.logical_date.date().isoformat(), str(run.state)) for run in runs]


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


def wait_for_training_set(dagbag, model: str):
    """The model's monitoring DAG with only its ``wait_for_training_set``."""
    monitoring = dagbag.get_dag(f"{model}__drift_monitoring")
    return monitoring.partial_subset(
        task_ids=["wait_for_training_set"], include_upstream=False, include_downstream=False
    )


def test_one_ingest_per_day_feeds_both_models_training_sets(dagbag, mlops_home):
    seed_range(create_engine(f"sqlite:///{mlops_home / 'source.db'}"), [DAY, NEXT], SourceSpec(seed=3))
    workspace = mlops_home / "data-registry"
    assert not {f"{model}__ingest" for model in MODELS} & set(dagbag.dag_ids)
    ingest = dagbag.get_dag(f"{DATASET}__ingest")

    first = ingest_day(ingest, DAY)
    assert first.state == "success"
    (event,) = partition_events([first.run_id])  # version_partition announced the day, once (lineage)
    for model in MODELS:  # no set yet: the model's own run of the day assembles it
        assert git(workspace, "tag", "--list", f"training-set/{model}/*") == ""
    second = ingest_day(ingest, NEXT)
    assert second.state == "success"
    assert len(partition_events([first.run_id, second.run_id])) == 2
    # Both days were versioned before any assembly ran: each model has one run per day, waiting to run.
    for model in MODELS:
        assert training_set_runs(model) == [
            (f"ingest__{day}", str(day), "queued") for day in (DAY, NEXT)
        ], model  # fmt: skip

    # Each model's runs as the triggers made them, in date order (the scheduler's part played in-process).
    for model in MODELS:
        assembly = dagbag.get_dag(f"{model}__training_set")
        for day in (DAY, NEXT):
            assert run_queued(assembly, f"ingest__{day}") == {"assemble_training_set": "success"}, (model, day)
        first_set, second_set = assembled(f"{model}__training_set")
        assert first_set["partitions"] == [str(DAY)] and first_set["tag"] == f"training-set/{model}/{DAY}"
        assert second_set["partitions"] == [str(DAY), str(NEXT)]  # the newest day's window holds both
        assert git(workspace, "tag", "--list", f"training-set/{model}/*").split() == [
            f"training-set/{model}/{DAY}", f"training-set/{model}/{NEXT}"
        ]  # fmt: skip

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
    sensor_only = wait_for_training_set(dagbag, "churn_twin")
    run = ingest_day(sensor_only, empty)  # the same logical date as the dataset's run of the day
    (ti,) = run.get_task_instances()
    assert (ti.task_id, ti.state) == ("wait_for_training_set", "skipped")
    assert f"the ingest run of {empty + dt.timedelta(days=1)}T00:00:00+00:00 ({DATASET}__ingest) failed" in (
        capfd.readouterr().out
    )


def test_a_models_monitoring_gives_up_on_a_day_its_training_set_run_failed(dagbag, mlops_home, capfd):
    """The dataset's run of the day succeeded and versioned the partition, but the model's training-set run of that
    day failed: ``wait_for_training_set`` gives up naming that run (skipped), not after its 12 h timeout."""
    day = NEXT + dt.timedelta(days=10)
    seed_range(create_engine(f"sqlite:///{mlops_home / 'source.db'}"), [day], SourceSpec(seed=3))
    assert ingest_day(dagbag.get_dag(f"{DATASET}__ingest"), day).state == "success"
    sensor_only = wait_for_training_set(dagbag, "churn_twin")
    # The model's run of the monitoring run's logical date (dag.test gives both the same), ended failed.
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    logical = pendulum.datetime(day.year, day.month, day.day, tz="UTC").add(days=1)
    with create_session() as session:
        session.query(DagRun).filter_by(dag_id="churn_twin__training_set", logical_date=logical).delete()
        SerializedDagModel.get_dag("churn_twin__training_set", session=session).create_dagrun(
            run_id=f"failed__{day}", logical_date=logical, data_interval=(logical, logical), run_after=logical,
            conf={}, run_type=DagRunType.MANUAL, triggered_by=DagRunTriggeredByType.TEST, state=DagRunState.FAILED,
            session=session,
        )  # fmt: skip
    run = ingest_day(sensor_only, day)
    (ti,) = run.get_task_instances()
    assert (ti.task_id, ti.state) == ("wait_for_training_set", "skipped")
    assert f"the training-set run of {logical.isoformat()} (churn_twin__training_set) failed" in capfd.readouterr().out
