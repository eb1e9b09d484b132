"""The retraining rails as pure rules (mlops_provider.ml.rails) on exact cases: which clock a run counts on, the
data-day cooldown and budget, the real-time pools of real-time and backfill alarms, and the held-back line."""

from __future__ import annotations

import datetime as dt

import pytest

from mlops_provider.ml.rails import (
    BACKFILL,
    REALTIME,
    cooldown_hold,
    counted_in_real_week,
    data_week_hold,
    message,
    real_week_hold,
    record_mode,
    run_mode,
)

pytestmark = pytest.mark.unit

NOW = dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.timezone.utc)
DAY = dt.date(2026, 12, 5)


def at(days_ago: float) -> str:
    return (NOW - dt.timedelta(days=days_ago)).isoformat()


def test_a_run_is_a_backfill_by_its_type_or_by_how_far_its_data_interval_lies_behind_now():
    end = dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc)  # the nightly run of 12-05, 3 hours later
    assert run_mode("scheduled", end, NOW, 3) == REALTIME
    assert run_mode("backfill", end, NOW, 3) == BACKFILL  # Airflow's own backfill, whatever the dates
    assert run_mode("scheduled", end - dt.timedelta(days=3), NOW, 3) == BACKFILL  # 3 days 3 hours behind: catchup
    assert run_mode("manual", end - dt.timedelta(days=2), NOW, 3) == REALTIME  # a day late after an outage
    assert run_mode("manual", end - dt.timedelta(days=2), NOW, 1) == BACKFILL
    assert run_mode("manual", None, NOW, 3) == REALTIME  # no data interval: a run of now


def test_records_count_in_their_own_pool_and_old_records_count_as_real_time():
    assert record_mode({"mode": BACKFILL}) == BACKFILL
    assert record_mode({"mode": REALTIME}) == REALTIME
    assert record_mode({"reason": "schedule"}) == REALTIME  # written before modes existed, or by a schedule
    records = [
        {"run_id": "b1", "triggered_at": at(1), "mode": BACKFILL},
        {"run_id": "r1", "triggered_at": at(6.9)},
        {"run_id": "r0", "triggered_at": at(7.1)},  # outside the real week
        {"run_id": "r2", "triggered_at": at(0.5), "mode": REALTIME},
        {"run_id": "broken", "triggered_at": "yesterday"},
    ]
    assert [r["run_id"] for r in counted_in_real_week(records, NOW, REALTIME)] == ["r1", "r2"]  # oldest first
    assert [r["run_id"] for r in counted_in_real_week(records, NOW, BACKFILL)] == ["b1"]


def test_a_backfills_trainings_never_spend_the_real_time_budget_and_have_their_own():
    backfill = [{"run_id": f"drift__d__2025-0{i}-01", "triggered_at": at(i / 2), "mode": BACKFILL} for i in range(1, 6)]
    assert real_week_hold(backfill, NOW, REALTIME, 2) is None  # five false alarms of a backfill: the real one goes
    held = real_week_hold(backfill, NOW, BACKFILL, 3)
    assert held is not None and held.rail == "backfill_week_budget"
    assert held.used == 5 and held.limit == 3 and held.key == "retraining.max_backfill_per_real_week"
    assert "5 backfill trainings triggered in the last 7 days of real time (max_backfill_per_real_week 3)" in (
        held.reason
    )
    # Five counted against three: the third oldest (triggered 1.5 days ago) must leave the week first.
    assert held.frees == (NOW - dt.timedelta(days=1.5) + dt.timedelta(days=7)).isoformat(timespec="seconds")
    assert held.counted[0].startswith("drift__d__2025-05-01 (triggered ")  # with its date


def test_the_real_time_budget_frees_when_enough_of_its_trainings_leave_the_week():
    records = [{"run_id": "a", "triggered_at": at(6), "reason": "drift"},
               {"run_id": "b", "triggered_at": at(2), "reason": "schedule"}]  # fmt: skip
    held = real_week_hold(records, NOW, REALTIME, 2)
    assert held is not None and held.reason == (
        "budget: 2 trainings triggered in the last 7 days of real time (max_per_real_week 2)"
    )
    assert held.frees == (NOW + dt.timedelta(days=1)).isoformat(timespec="seconds")  # when "a" is 7 days old
    assert held.counted == [f"a (triggered {at(6)}, drift)", f"b (triggered {at(2)}, schedule)"]
    assert real_week_hold(records, NOW, REALTIME, 3) is None


def test_the_data_day_cooldown_and_budget_count_windows_before_the_day():
    assert cooldown_hold(DAY, [], 2) is None
    assert cooldown_hold(DAY, [DAY - dt.timedelta(days=3)], 2) is None  # outside the cooldown
    assert cooldown_hold(DAY, [DAY], 2) is None  # the window itself is rail 1's business
    held = cooldown_hold(DAY, [DAY - dt.timedelta(days=2), DAY - dt.timedelta(days=1)], 2)
    assert held is not None and held.rail == "cooldown" and "window 2026-12-04" in held.reason
    assert held.frees == "windows from 2026-12-07 on"
    assert cooldown_hold(DAY, [DAY - dt.timedelta(days=1)], 0) is None

    week = [DAY - dt.timedelta(days=d) for d in (6, 3)]
    held = data_week_hold(DAY, [*week, DAY - dt.timedelta(days=7)], 2)  # the 7th day back is outside
    assert held is not None and held.used == 2 and held.counted == ["window 2026-11-29", "window 2026-12-02"]
    assert held.frees == "windows from 2026-12-06 on"  # 11-29 leaves the look-back of 12-06
    assert data_week_hold(DAY, week, 3) is None
    held = data_week_hold(DAY, [*week, DAY - dt.timedelta(days=1)], 2)
    assert held is not None and held.frees == "windows from 2026-12-09 on"  # two must leave: 11-29 and 12-02


def test_the_held_back_line_names_the_rail_its_numbers_what_it_counted_when_it_frees_and_what_to_do():
    held = real_week_hold([{"run_id": "a", "triggered_at": at(1), "reason": "drift"}], NOW, REALTIME, 1)
    assert held is not None
    line = message(held, REALTIME, "m__training", "training-set/m/2026-12-05")
    assert line == (
        "held back (realtime alarm) by realtime_week_budget: budget: 1 trainings triggered in the last 7 days of real "
        f"time (max_per_real_week 1); counted: a (triggered {at(1)}, drift); frees up: "
        f"{(NOW + dt.timedelta(days=6)).isoformat(timespec='seconds')}; to retrain now, trigger m__training by hand "
        "with reason manual and dataset_rev training-set/m/2026-12-05; to allow more, raise "
        "retraining.max_per_real_week in the spec"
    )


def test_a_backfill_pool_of_zero_holds_every_backfill_alarm_and_never_frees():
    held = real_week_hold([], NOW, BACKFILL, 0)
    assert held is not None and held.used == 0 and held.frees == "never while the limit is 0"
    assert real_week_hold([], NOW, REALTIME, 1) is None


def test_a_day_decides_once_the_previous_run_has_decided_or_ended_or_there_is_none():
    from mlops_provider.ml.rails import previous_run_pending

    tasks = ["trigger_training"]
    assert previous_run_pending(None, None, {}, tasks) is None  # the first day: nothing before it
    for final in ("success", "skipped", "failed", "upstream_failed", "removed"):
        assert previous_run_pending("r1", "running", {"trigger_training": final}, tasks) is None, final
    for ended in ("success", "failed"):  # an ended run decides nothing more, whatever its tasks' states
        assert previous_run_pending("r1", ended, {}, tasks) is None, ended
    for pending in (None, "scheduled", "queued", "running", "deferred", "up_for_retry", "up_for_reschedule"):
        why = previous_run_pending("r1", "running", {"trigger_training": pending}, tasks)
        assert why is not None and "r1" in why and "trigger_training" in why, pending
    why = previous_run_pending("r1", "queued", {}, tasks)  # a queued backfill run: its tasks have no state yet
    assert why == "the previous run r1 (queued) has not decided yet: trigger_training (no state yet)"
    both = ["performance_check", "trigger_training"]
    assert "performance_check" in previous_run_pending("r1", "running", {"trigger_training": "skipped"}, both)
