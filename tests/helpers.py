"""Small helpers shared by tests: a task context for calling ``execute()`` directly, and data fixtures."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pendulum

#: The repository root.
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RecordingTaskInstance:
    """The part of a TaskInstance an operator uses (ids, try number, XCom push), recording what was pushed."""

    dag_id: str = "test_dag"
    task_id: str = "test_task"
    run_id: str = "test_run"
    try_number: int = 1
    map_index: int = -1
    pushed: dict[str, Any] = field(default_factory=dict)
    #: Other DAG runs the task can ask about: ``{"dag_id", "run_id", "logical_date", "state"}`` each.
    dag_runs: list[dict[str, Any]] = field(default_factory=list)
    first_reschedule: dt.datetime | None = None

    state: str | None = None

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value") -> Any:
        """What this task pushed under ``key`` (the tests' tasks only read their own XCom)."""
        return self.pushed.get(key)

    def get_dr_count(
        self,
        dag_id: str,
        logical_dates: list[dt.datetime] | None = None,
        run_ids: list[str] | None = None,
        states: list[str] | None = None,
    ) -> int:
        return sum(
            1
            for run in self.dag_runs
            if run["dag_id"] == dag_id
            and (logical_dates is None or run.get("logical_date") in logical_dates)
            and (run_ids is None or run.get("run_id") in run_ids)
            and (states is None or run.get("state") in states)
        )

    def get_first_reschedule_date(self, context: Any) -> dt.datetime | None:
        return self.first_reschedule


@dataclass
class OutletAccessor:
    """What ``context["outlet_events"][asset_or_alias]`` offers: ``extra``, and ``add()`` for an alias."""

    extra: dict[str, Any] = field(default_factory=dict)
    added: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)

    def add(self, asset: Any, extra: dict[str, Any] | None = None) -> None:
        self.added.append((asset, dict(extra or {})))


class OutletEvents(dict):
    """``context["outlet_events"]``: an accessor per asset or alias, recording what the task emitted."""

    def __missing__(self, key: Any) -> Any:
        accessor = OutletAccessor()
        self[key] = accessor
        return accessor


def task_context(day: dt.date | None = None, **ti_fields: Any) -> dict[str, Any]:
    """A context for one daily interval starting at ``day`` (as a scheduled run has it)."""
    ti = RecordingTaskInstance(**ti_fields)
    context: dict[str, Any] = {"ti": ti, "run_id": ti.run_id, "outlet_events": OutletEvents()}
    if day is not None:
        start = pendulum.datetime(day.year, day.month, day.day, tz="UTC")
        context.update(
            data_interval_start=start,
            data_interval_end=start.add(days=1),
            logical_date=start,
        )
    return context


def run_queued(dag, run_id: str) -> dict[str, str]:
    """Run the queued run ``run_id`` of ``dag`` (one a task made, e.g. a ``TriggerDagRunOperator``'s) as the scheduler
    would start it, its tasks in-process as ``dag.test()`` runs them; task id -> state. Unlike ``dag.test()``, which
    replaces a run of the same logical date with its own, this runs the run as it was made (its data interval)."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.sdk.definitions.dag import _run_task
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.state import DagRunState, TaskInstanceState

    session = settings.Session()
    run = session.query(DagRun).filter_by(dag_id=dag.dag_id, run_id=run_id).one()
    run.dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    run.state = DagRunState.RUNNING
    session.commit()
    for _ in range(20):
        session.expire_all()
        schedulable, _ = run.update_state(session=session)
        if run.state != DagRunState.RUNNING:
            break
        for ti in schedulable:
            ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        for ti in run.get_task_instances(session=session):
            if ti.state == TaskInstanceState.SCHEDULED:
                _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
    session.close()
    return states
