"""The retraining trigger's rails that need no service: a re-check never triggers, and the real-time budget counts
what was triggered in the last 7 days of real time beside the data-day rails."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from airflow.sdk.exceptions import AirflowSkipException, DagRunTriggerException

from mlops_provider.operators.retraining import TriggerRetrainingOperator
from mlops_provider.utils.records import trigger_records_dir
from tests.helpers import task_context

pytestmark = pytest.mark.unit

DAY = dt.date(2026, 11, 20)


def decision(**extra) -> dict:
    return {"reason": "drift", "partition": DAY.isoformat(), "drift_share": 0.5, "threshold": 0.3, **extra}


def operator(day: dt.date = DAY, **kwargs) -> TriggerRetrainingOperator:
    kwargs.setdefault("trigger_dag_id", "sales_model__training")
    return TriggerRetrainingOperator(
        task_id="trigger_training", dataset="sales", decision=decision(partition=day.isoformat()), **kwargs
    )


def test_two_trainings_triggered_this_real_week_exhaust_the_budget_whatever_the_data_days(mlops_home):
    folder = trigger_records_dir("sales_model__training")
    folder.mkdir(parents=True)
    now = dt.datetime.now(dt.UTC)
    # A nightly run: its data interval ended within backfill_lag_days (a backfill spends its own pool, see below).
    day = now.date() - dt.timedelta(days=1)
    # Another model (its own training DAG) on the same dataset: its triggers never spend this model's budget.
    other = trigger_records_dir("other_model__training")
    other.mkdir(parents=True)
    for i in range(3):
        (other / f"drift__sales__x{i}.json").write_text(json.dumps({"triggered_at": now.isoformat()}))
    with pytest.raises(DagRunTriggerException):
        operator(day, max_per_week=1).execute(task_context(day, dag_id="drift_monitoring"))
    (folder / f"drift__sales__{day}.json").unlink()  # recorded under this model's training DAG; start clean
    for run_id, age in (("drift__sales__2026-01-03", 1), ("drift__sales__2025-06-01", 2), ("drift__sales__old", 9)):
        triggered = (now - dt.timedelta(days=age)).isoformat()
        (folder / f"{run_id}.json").write_text(json.dumps({"run_id": run_id, "triggered_at": triggered}))
    # No training run of the data days around the day exists (the data-day rails pass): the real-time budget decides.
    with pytest.raises(AirflowSkipException, match=r"2 trainings triggered in the last 7 days of real time"):
        operator(day).execute(task_context(day, dag_id="drift_monitoring"))
    with pytest.raises(AirflowSkipException, match="max_per_real_week 2"):
        operator(day, max_per_week=5, max_per_real_week=2).execute(task_context(day, dag_id="drift_monitoring"))
    # max_per_real_week defaults to max_per_week: a larger weekly budget lets the third one through.
    with pytest.raises(DagRunTriggerException):
        operator(day, max_per_week=5).execute(task_context(day, dag_id="drift_monitoring"))
    assert (folder / f"drift__sales__{day}.json").is_file()  # and it is recorded for the next count


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
    from mlops_provider.web.health import held_back

    listed = held_back("sales_model")  # the health page lists the held-back scheduled training too
    assert [(h["rail"], h["monitoring_run"]) for h in listed] == [("cooldown", "sales_model__training/scheduled__w2")]
    assert "by hand with reason manual" in listed[0]["message"]


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


def test_a_held_back_alarm_is_logged_at_warning_with_its_reason_mailed_and_listed_on_the_health_page(
    mlops_home, caplog
):
    """Issue 28, item 5: a held-back alarm said only "Skipping task." in the log; the reason was only in XCom."""
    import logging

    from mlops_provider.notifications.mail import HELD_BACK_XCOM_KEY, build_notice
    from mlops_provider.web.health import held_back, render

    folder = trigger_records_dir("sales_model__training")
    folder.mkdir(parents=True)
    now = dt.datetime.now(dt.UTC)
    day = now.date() - dt.timedelta(days=1)
    for run_id, age in (("drift__sales__a", 2), ("schedule__b", 5)):
        record = {"run_id": run_id, "triggered_at": (now - dt.timedelta(days=age)).isoformat(), "reason": "drift"}
        (folder / f"{run_id}.json").write_text(json.dumps(record))
    context = task_context(day, dag_id="sales_model__drift_monitoring", run_id=f"scheduled__{day}")
    trigger = operator(day, dataset_rev=f"training-set/sales_model/{day}")
    with caplog.at_level(logging.WARNING), pytest.raises(AirflowSkipException) as skipped:
        trigger.execute(context)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "NOT triggered" in r.message]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
    line = warnings[0]
    assert f"window {day} NOT triggered: held back (realtime alarm) by realtime_week_budget" in line
    assert "2 trainings triggered in the last 7 days of real time (max_per_real_week 2)" in line
    assert "counted: schedule__b (triggered " in line and ", drift__sales__a (triggered " in line  # oldest first, dated
    assert "frees up: " in line
    rev = f"training-set/sales_model/{day}"
    assert f"trigger sales_model__training by hand with reason manual and dataset_rev {rev}" in line
    assert "raise retraining.max_per_real_week" in line
    reason = context["ti"].pushed[HELD_BACK_XCOM_KEY]
    assert str(skipped.value) == reason and reason in line  # the skip, the XCom and the log say the same

    # The 'retraining' mail (state skipped) carries that reason.
    notice = build_notice("retraining", "sales_model", None, state="skipped", task="t", base_url="http://x",
                          held_back=reason)  # fmt: skip
    assert notice is not None and notice.why == reason

    # The model health page lists it, with its rail.
    listed = held_back("sales_model")
    assert [(h["window_end"], h["rail"], h["mode"]) for h in listed] == [(day.isoformat(), "realtime_week_budget",
                                                                          "realtime")]  # fmt: skip
    assert listed[0]["message"] == reason
    base = {"model_name": "sales_model", "champion": None, "lineage": {}, "history": [], "drift": [], "performance": []}
    page = render({**base, "held_back": listed})
    assert 'class="held-back"' in page and "realtime_week_budget" in page and "reason manual" in page
    assert "No retraining alarm held back" in render(base)
    # The held-back record is not a trigger: it counts in no budget.
    assert sorted(p.name for p in folder.glob("*.json")) == ["drift__sales__a.json", "schedule__b.json"]


def test_a_real_alarm_queues_behind_a_training_run_a_backfill_triggered_but_not_behind_a_real_one(mlops_home):
    from types import SimpleNamespace

    folder = trigger_records_dir("sales_model__training")
    folder.mkdir(parents=True)
    now = dt.datetime.now(dt.UTC)
    day = now.date() - dt.timedelta(days=1)
    backfilled = {"run_id": "drift__sales__2025-03-01", "triggered_at": now.isoformat(), "mode": "backfill"}
    (folder / "drift__sales__2025-03-01.json").write_text(json.dumps(backfilled))

    def context(running: str, run_type: str = "scheduled", on: dt.date = day) -> dict:
        ctx = task_context(on, dag_id="drift_monitoring", run_id=f"{run_type}__{on}", dag_runs=[
            {"dag_id": "sales_model__training", "run_id": running, "state": "running"}])  # fmt: skip
        return {**ctx, "dag_run": SimpleNamespace(run_type=run_type)}

    with pytest.raises(DagRunTriggerException):  # only the backfill's training is running
        operator(day).execute(context("drift__sales__2025-03-01"))
    (folder / f"drift__sales__{day}.json").unlink()
    with pytest.raises(AirflowSkipException, match=r"by busy: 1 sales_model__training run\(s\) queued or running"):
        operator(day).execute(context("manual__x"))  # a real-time training is running
    old = dt.date(2025, 4, 1)
    with pytest.raises(AirflowSkipException, match=r"held back \(backfill alarm\) by busy"):  # a backfill waits
        operator(old).execute(context("drift__sales__2025-03-01", "backfill", old))


def test_scheduled_training_is_not_held_back_by_trainings_a_backfill_triggered():
    from mlops_provider.operators.retraining import schedule_rails_decision

    backfill = [{**record(f"drift__sales__2025-0{i}-01", i / 2), "mode": "backfill"} for i in range(1, 5)]
    assert schedule_rails_decision(backfill, NOW, 2, 2) is None
    held = schedule_rails_decision([*backfill, record("a", 3), record("b", 6)], NOW, 2, 2)
    assert held == (
        "budget: 2 trainings triggered in the last 7 days (max_per_real_week 2): "
        f"b (drift, {record('b', 6)['triggered_at']}), a (drift, {record('a', 3)['triggered_at']})"
    )
