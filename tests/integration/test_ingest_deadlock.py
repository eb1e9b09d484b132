"""Issue 30, item 6: no ingest deadlock when an earlier day is cleared or re-run while a later day waits. The real
ingest DAG of the factory with ``max_active_ingest_runs: 1``, run by ``dag.test()`` against the metadata DB: the
scheduled run of 11-11 failed (its source had no rows yet) and was cleared, so it is queued; the run of 11-12 takes
the only run slot. Its assembly used to wait (rescheduled) for 11-11, whose run could not start while 11-12 held the
slot, until ``wait_timeout`` (2 h) failed it. Now 11-12's set is built without 11-11 (``queued``), the run ends, and
once 11-11 runs and is versioned its assembly rebuilds 11-12's set with it."""

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

FIRST, CLEARED, LATER = dt.date(2026, 11, 10), dt.date(2026, 11, 11), dt.date(2026, 11, 12)
MODEL = "churn_slots"


def ingest_dag(models: Path, home: Path):
    """The factory's ingest DAG of a churn model of its own: one run slot, a 3-day window; its source has rows on
    LATER only (11-10 has none and no run: missing)."""
    from airflow.dag_processing.dagbag import DagBag

    models.mkdir(parents=True)
    for folder in ("gx", "training", "promotion", "serving"):  # the spec's relative paths, as in include/
        (models.parent / folder).symlink_to(PROJECT_ROOT / "include" / folder)
    spec = yaml.safe_load((PROJECT_ROOT / "include" / "models" / "churn_classifier.yaml").read_text())
    spec["name"] = MODEL
    spec["schedule"].update(start_date=FIRST.isoformat(), max_active_ingest_runs=1)
    spec["training"].update(window_days=3, min_days=1)
    (models / f"{MODEL}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    seed_range(create_engine(f"sqlite:///{home / 'source.db'}"), [LATER], SourceSpec(rows_per_day=600))
    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "mlops_models.py"))
    assert bag.import_errors == {}
    dag = bag.get_dag(f"{MODEL}__ingest")
    assert dag.max_active_runs == 1
    return dag


def midnight(day: dt.date) -> pendulum.DateTime:
    return pendulum.datetime(day.year, day.month, day.day, tz="UTC")


def run_for(dag, day: dt.date) -> dict[str, str]:
    """A manual run whose data interval is ``day``: task id -> state."""
    run = dag.test(logical_date=midnight(day).add(days=1))
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def pushed(dag_id: str) -> list[dict]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=dag_id, task_id="assemble_training_set", key="return_value")
        return [XComModel.deserialize_value(x) for x in rows.order_by(XComModel.timestamp)]


def test_a_cleared_earlier_day_queued_behind_the_only_run_slot_does_not_deadlock(
    airflow_db, mlops_home, tmp_path, monkeypatch
):
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    from mlops_provider.hooks.dvc import DvcHook
    from mlops_provider.layout import training_set_tag

    monkeypatch.setenv("MLOPS_MODELS_DIR", str(tmp_path / "project" / "models"))
    monkeypatch.delenv("MLOPS_START_DATE", raising=False)
    dag = ingest_dag(tmp_path / "project" / "models", mlops_home)
    # A day after the window, without rows: its run fails at extract (and serializes the DAG, as a scheduler would).
    assert run_for(dag, LATER + dt.timedelta(days=7))["extract"] == "failed"

    # 11-11 failed and was cleared: its scheduled run (logical date 00:00 of the day) is queued for a run slot.
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    with create_session() as session:
        scheduler_dag.create_dagrun(
            run_id=f"scheduled__{CLEARED.isoformat()}T00:00:00+00:00", logical_date=midnight(CLEARED),
            data_interval=(midnight(CLEARED), midnight(LATER)), run_after=midnight(LATER),
            run_type=DagRunType.SCHEDULED, triggered_by=DagRunTriggeredByType.TEST, state=DagRunState.QUEUED,
            session=session,
        )  # fmt: skip

    # 11-12 runs in the only slot: it does not wait for 11-11 (that would be forever); its set leaves 11-11 out.
    states = run_for(dag, LATER)
    assert states["assemble_training_set"] == "success", states
    later = pushed(dag.dag_id)[-1]
    assert later["partitions"] == [str(LATER)]
    assert later["missing"] == {str(FIRST): "missing", str(CLEARED): "queued"}

    # The slot is free: 11-11's data arrives, it runs, is versioned, and its assembly adds it to 11-12's set.
    seed_range(create_engine(f"sqlite:///{mlops_home / 'source.db'}"), [CLEARED], SourceSpec(rows_per_day=600))
    states = run_for(dag, CLEARED)
    assert states["assemble_training_set"] == "success", states
    fixed = pushed(dag.dag_id)[-1]
    assert fixed["rebuilt"] == [training_set_tag(MODEL, str(LATER)) + ".r2"]
    trailers = DvcHook().describe_commit(training_set_tag(MODEL, str(LATER)) + ".r2")["trailers"]
    assert trailers["Training-Set-Partitions"] == f"{CLEARED},{LATER}"
