"""Schedules with an end (issue 30, item 5): ``schedule.end_date`` ends the daily DAGs, ``dataset.on_empty: skip``
skips an empty day, and the drift monitoring of a day whose ingest versioned nothing, or has no run, gives up
(skipped) instead of waiting, deferred, for a tag that never comes. Real DAGs of the factory, run by ``dag.test()``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pendulum
import pytest
import yaml
from sqlalchemy import create_engine

from mlops_provider.demo.churn_source import SourceSpec, seed_range
from tests.helpers import PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

DAY = dt.date(2026, 11, 10)
EMPTY = DAY + dt.timedelta(days=1)
END = DAY + dt.timedelta(days=5)
MODEL = "churn_gaps"


def model_dags(models: Path, changes: dict, days: list[dt.date], home: Path):
    """The factory's DAGs of a churn model of its own (the session's other tests keep the demo's DAGs), its spec
    the demo's with ``changes`` (section -> keys), its source seeded for ``days``."""
    from airflow.dag_processing.dagbag import DagBag

    models.mkdir(parents=True)
    for folder in ("gx", "training", "promotion", "serving"):  # the spec's relative paths, as in include/
        (models.parent / folder).symlink_to(PROJECT_ROOT / "include" / folder)
    spec = yaml.safe_load((PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml").read_text())
    spec["name"] = MODEL
    for section, keys in changes.items():
        spec[section].update(keys)
    (models / f"{MODEL}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    seed_range(create_engine(f"sqlite:///{home / 'source.db'}"), days, SourceSpec(rows_per_day=600))
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "mlops_models.py"))
    assert bag.import_errors == {}
    return bag


@pytest.fixture
def dags(airflow_db, mlops_home, tmp_path, monkeypatch):
    """A churn model with ``on_empty: skip`` and an end date; its source has rows on DAY only."""
    models = tmp_path / "project" / "models"
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models))
    monkeypatch.delenv("MLOPS_START_DATE", raising=False)
    changes = {
        "dataset": {"on_empty": "skip"},
        "schedule": {"start_date": DAY.isoformat(), "end_date": END.isoformat()},
    }
    return model_dags(models, changes, [DAY], mlops_home)


def run_for(dag, day: dt.date) -> dict[str, str]:
    """A manual run whose data interval is ``day``: task id -> state."""
    logical = pendulum.datetime(day.year, day.month, day.day, tz="UTC").add(days=1)
    run = dag.test(logical_date=logical)
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_an_empty_day_is_skipped_and_its_monitoring_gives_up_as_does_a_day_without_an_ingest_run(dags):
    ingest, monitoring = dags.get_dag(f"{MODEL}__ingest"), dags.get_dag(f"{MODEL}__drift_monitoring")
    end = pendulum.datetime(END.year, END.month, END.day, tz="UTC")
    assert ingest.end_date == end and monitoring.end_date == end

    states = run_for(ingest, EMPTY)  # no rows that day: skipped, not failed
    assert states["extract"] == "skipped" and "failed" not in states.values(), states

    states = run_for(monitoring, EMPTY)  # its ingest run succeeded without versioning: give up, do not wait
    assert states["wait_for_training_set"] == "skipped", states
    assert "failed" not in states.values() and "deferred" not in states.values(), states

    states = run_for(monitoring, DAY)  # no ingest run of DAY while a later day has one: it will not come
    assert states["wait_for_training_set"] == "skipped", states


def test_the_first_training_set_waits_for_min_days_versioned_days(airflow_db, mlops_home, tmp_path, monkeypatch):
    """Item 7: with ``training.min_days`` 2, the first day's assembly skips (warming up: no failed ingest run), its
    monitoring gives up without a bootstrap training, and the second day's training set holds both days."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    models = tmp_path / "project" / "models"
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models))
    monkeypatch.delenv("MLOPS_START_DATE", raising=False)
    first, second = DAY, DAY + dt.timedelta(days=1)
    changes = {"training": {"window_days": 3, "min_days": 2}, "schedule": {"start_date": first.isoformat()}}
    bag = model_dags(models, changes, [first, second], mlops_home)
    ingest, monitoring = bag.get_dag(f"{MODEL}__ingest"), bag.get_dag(f"{MODEL}__drift_monitoring")

    states = run_for(ingest, first)
    assert states["version_partition"] == "success" and states["assemble_training_set"] == "skipped", states
    states = run_for(monitoring, first)
    assert states["wait_for_training_set"] == "skipped" and states["bootstrap_training"] == "skipped", states
    with create_session() as session:
        assert session.query(DagRun).filter(DagRun.dag_id == f"{MODEL}__training").count() == 0

    states = run_for(ingest, second)
    assert states["assemble_training_set"] == "success", states
    with create_session() as session:
        from airflow.models.xcom import XComModel

        pushed = session.query(XComModel).filter_by(
            dag_id=f"{MODEL}__ingest", task_id="assemble_training_set", key="return_value"
        )
        assert [XComModel.deserialize_value(x)["partitions"] for x in pushed] == [[str(first), str(second)]]
