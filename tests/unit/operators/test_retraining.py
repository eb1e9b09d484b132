"""The retraining trigger's rails that need no service: a re-check never triggers, and the real-time budget counts
what was triggered in the last 7 days of real time beside the data-day rails."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from airflow.sdk.exceptions import AirflowSkipException, DagRunTriggerException

from mlops_provider.operators.retraining import TriggerRetrainingOperator, trigger_records_dir
from tests.helpers import task_context

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 11, 20)


def decision(**extra) -> dict:
    return {"reason": "drift", "partition": DAY.isoformat(), "drift_share": 0.5, "threshold": 0.3, **extra}


def operator(**kwargs) -> TriggerRetrainingOperator:
    kwargs.setdefault("trigger_dag_id", "sales_model__training")
    return TriggerRetrainingOperator(task_id="trigger_training", dataset="sales", decision=decision(), **kwargs)


def test_two_trainings_triggered_this_real_week_exhaust_the_budget_whatever_the_data_days(mlops_home):
    folder = trigger_records_dir("sales_model__training")
    folder.mkdir(parents=True)
    now = dt.datetime.now(dt.UTC)
    # Another model (its own training DAG) on the same dataset: its triggers never spend this model's budget.
    other = trigger_records_dir("other_model__training")
    other.mkdir(parents=True)
    for i in range(3):
        (other / f"drift__sales__x{i}.json").write_text(json.dumps({"triggered_at": now.isoformat()}))
    with pytest.raises(DagRunTriggerException):
        operator(max_per_week=1).execute(task_context(DAY, dag_id="drift_monitoring"))
    (folder / "drift__sales__2026-11-20.json").unlink()  # recorded under this model's training DAG; start clean
    for run_id, age in (("drift__sales__2026-01-03", 1), ("drift__sales__2025-06-01", 2), ("drift__sales__old", 9)):
        triggered = (now - dt.timedelta(days=age)).isoformat()
        (folder / f"{run_id}.json").write_text(json.dumps({"run_id": run_id, "triggered_at": triggered}))
    # No training run of the data days around DAY exists (the data-day rails pass): the real-time budget decides.
    with pytest.raises(AirflowSkipException, match=r"2 trainings triggered in the last 7 days of real time"):
        operator().execute(task_context(DAY, dag_id="drift_monitoring"))
    with pytest.raises(AirflowSkipException, match="max_per_real_week 2"):
        operator(max_per_week=5, max_per_real_week=2).execute(task_context(DAY, dag_id="drift_monitoring"))
    # max_per_real_week defaults to max_per_week: a larger weekly budget lets the third one through.
    with pytest.raises(DagRunTriggerException):
        operator(max_per_week=5).execute(task_context(DAY, dag_id="drift_monitoring"))
    assert (folder / "drift__sales__2026-11-20.json").is_file()  # and it is recorded for the next count


def test_a_late_recheck_is_not_acted_on_unless_asked_a_retry_within_the_grace_is(mlops_home):
    from airflow.sdk.exceptions import DagRunTriggerException

    def recheck(hours_ago: float | None, **kwargs) -> TriggerRetrainingOperator:
        first = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago)).isoformat() if hours_ago is not None else None
        return TriggerRetrainingOperator(
            task_id="trigger_training", dataset="sales", decision=decision(recheck=True, first_recorded_at=first),
            trigger_dag_id="sales_model__training", **kwargs,
        )  # fmt: skip

    for late in (recheck(30), recheck(None)):
        with pytest.raises(AirflowSkipException, match=r"late re-check never triggers training.*by hand"):
            late.execute(task_context(DAY, dag_id="drift_monitoring"))
    with pytest.raises(DagRunTriggerException):  # asked explicitly
        recheck(30, retrain_on_recheck=True).execute(task_context(DAY, dag_id="drift_monitoring"))
    with pytest.raises(DagRunTriggerException):  # a clear the same night, after a downstream failure
        recheck(1).execute(task_context(DAY + dt.timedelta(days=5), dag_id="drift_monitoring"))
    with pytest.raises(ValueError, match="max_per_real_week >= 1"):
        operator(max_per_real_week=0)


NOW = dt.datetime(2026, 11, 28, 12, tzinfo=dt.timezone.utc)


def record(run_id: str, days_ago: float, reason: str = "drift") -> dict:
    return {"run_id": run_id, "reason": reason, "triggered_at": (NOW - dt.timedelta(days=days_ago)).isoformat()}


def test_schedule_rails_use_the_cooldown_and_the_weekly_budget_of_every_trigger():
    from mlops_provider.operators.retraining import schedule_rails_decision

    assert schedule_rails_decision([], NOW, 2, 2) is None
    held = schedule_rails_decision([record("drift__sales__2026-11-27", 1.0)], NOW, 2, 2)
    assert held and held.startswith("cooldown") and "drift__sales__2026-11-27 (drift)" in held
    assert schedule_rails_decision([record("a", 2.5)], NOW, 2, 2) is None  # the cooldown has passed
    week = [record("a", 3), record("b", 6, "schedule")]
    assert schedule_rails_decision(week, NOW, 2, 2).startswith("budget: 2 trainings")
    assert schedule_rails_decision([*week, {"run_id": "broken"}], NOW, 2, 3) is None  # an unreadable record is skipped
    newest = schedule_rails_decision([record("new", 0.5), record("old", 1.5)], NOW, 2, 5)
    assert "new" in newest  # names the newest trigger


def test_a_scheduled_training_run_is_held_back_by_the_rails_and_recorded_when_let_through(mlops_home):
    from types import SimpleNamespace

    from mlops_provider.operators.retraining import ScheduledRetrainingRailsOperator

    rails = ScheduledRetrainingRailsOperator(task_id="retraining_rails", trigger_dag_id="sales_model__training")

    def context(run_type: str, run_id: str) -> dict:
        ctx = task_context(DAY, dag_id="sales_model__training", run_id=run_id)
        return {**ctx, "run_id": run_id, "dag_run": SimpleNamespace(run_type=run_type)}

    assert rails.execute(context("manual", "manual__1"))["checked"] is False  # not a scheduled run: untouched
    assert rails.execute(context("scheduled", "scheduled__w1")) == {
        "run_type": "scheduled", "checked": True, "reason": "schedule"
    }  # fmt: skip
    written = json.loads((trigger_records_dir("sales_model__training") / "scheduled__w1.json").read_text())
    assert written["reason"] == "schedule"
    assert rails.execute(context("scheduled", "scheduled__w1"))["checked"] is True  # a re-run finds its record
    with pytest.raises(AirflowSkipException, match="cooldown: scheduled__w1 .schedule."):
        rails.execute(context("scheduled", "scheduled__w2"))


def test_a_backfills_false_alarms_never_hold_back_a_later_real_time_alarm(mlops_home):
    """Issue 28, item 5: a backfill's false alarms spent the real-time weekly budget, so every alarm of the real
    season change was held back. Two backfill runs of old days each trigger a training (records on disk, as the
    operator writes them); the next night's real alarm must still trigger."""
    from types import SimpleNamespace

    def backfill_context(day: dt.date) -> dict:
        return {**task_context(day, dag_id="drift_monitoring", run_id=f"backfill__{day}"),
                "dag_run": SimpleNamespace(run_type="backfill")}  # fmt: skip

    old = dt.date(2025, 3, 1)
    for day in (old, old + dt.timedelta(days=10)):  # outside each other's cooldown and data week
        backfill = TriggerRetrainingOperator(
            task_id="trigger_training", dataset="sales", decision=decision(partition=day.isoformat()),
            trigger_dag_id="sales_model__training",
        )  # fmt: skip
        with pytest.raises(DagRunTriggerException):
            backfill.execute(backfill_context(day))
    assert len(list(trigger_records_dir("sales_model__training").glob("*.json"))) == 2
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    nightly = TriggerRetrainingOperator(
        task_id="trigger_training", dataset="sales", decision=decision(partition=yesterday.isoformat()),
        trigger_dag_id="sales_model__training",
    )  # fmt: skip
    context = {**task_context(yesterday, dag_id="drift_monitoring", run_id=f"scheduled__{yesterday}"),
               "dag_run": SimpleNamespace(run_type="scheduled")}  # fmt: skip
    with pytest.raises(DagRunTriggerException):
        nightly.execute(context)
