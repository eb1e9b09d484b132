"""Schedules with an end (issue 30, item 5): ``schedule.end_date`` ends the daily DAGs, ``dataset.on_empty: skip``
skips an empty day, and the drift monitoring of a day whose ingest versioned nothing, or has no run, gives up
(skipped) instead of waiting, deferred, for a tag that never comes. Real DAGs of the factory, run by ``dag.test()``."""

from __future__ import annotations

import datetime as dt

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


@pytest.fixture
def dags(airflow_db, mlops_home, tmp_path, monkeypatch):
    """The factory's DAGs of a churn model with ``on_empty: skip`` and an end date (a model of its own: the
    session's other tests keep the demo's DAGs)."""
    from airflow.dag_processing.dagbag import DagBag

    models = tmp_path / "project" / "models"
    models.mkdir(parents=True)
    for folder in ("gx", "training", "promotion", "serving"):  # the spec's relative paths, as in include/
        (tmp_path / "project" / folder).symlink_to(PROJECT_ROOT / "include" / folder)
    spec = yaml.safe_load((PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml").read_text())
    spec["name"] = MODEL
    spec["dataset"]["on_empty"] = "skip"
    spec["schedule"].update(start_date=DAY.isoformat(), end_date=END.isoformat())
    (models / f"{MODEL}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    monkeypatch.setenv("MLOPS_MODELS_DIR", str(models))
    monkeypatch.delenv("MLOPS_START_DATE", raising=False)
    seed_range(create_engine(f"sqlite:///{mlops_home / 'source.db'}"), [DAY], SourceSpec(rows_per_day=600))
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "mlops_models.py"))
    assert bag.import_errors == {}
    return bag


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
