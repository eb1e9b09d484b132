"""The retraining rails as pure rules (no Airflow, no I/O): which rail holds an alarm back, with what it counted
and when it frees up. :class:`~mlops_provider.operators.retraining.TriggerRetrainingOperator` and
:class:`~mlops_provider.operators.retraining.ScheduledRetrainingRailsOperator` gather the facts (training runs of
the data days, trigger records on disk) and apply these; a bench script can call them directly.

Two clocks:

* **data days** (cooldown, ``max_per_week``): counted on the windows' days, so a backfill decides like the nightly
  runs did;
* **real time** (``max_per_real_week``): bounds the trainings started in the last 7 days of the wall clock.

A run is a **backfill** (:func:`run_mode`) when Airflow made it as one (run type ``backfill``) or its data
interval ended more than ``backfill_lag_days`` before now (catchup, or a manual run of an old day). A backfill's
alarms spend their **own** real-time pool (``max_backfill_per_real_week``), never the real-time one: false alarms
of a replayed season cannot starve tomorrow's real alarm, and a long backfill still cannot start a storm of
trainings. Each trigger record carries its ``mode``; a record without one (written before modes existed, or by a
scheduled training) counts as real time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

REALTIME, BACKFILL = "realtime", "backfill"
#: The real-time budget's window.
REAL_WEEK = dt.timedelta(days=7)
#: Days of windows the data-day budget looks back over (the window's own day is the 7th).
DATA_WEEK_DAYS = 6


@dataclass(frozen=True)
class Hold:
    """Why an alarm does not trigger training: the ``rail``, a one-line ``reason`` with the numbers, what was
    counted (``counted``: one entry per training, with its date), how many against which limit, when the rail
    frees up (``frees``) and which spec key sets the limit (``key``)."""

    rail: str
    reason: str
    counted: list[str] = field(default_factory=list)
    used: int | None = None
    limit: int | None = None
    frees: str | None = None
    key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"rail": self.rail, "reason": self.reason, "counted": list(self.counted), "used": self.used,
                "limit": self.limit, "frees": self.frees, "key": self.key}  # fmt: skip


def run_mode(
    run_type: str | None, data_interval_end: dt.datetime | None, now: dt.datetime, backfill_lag_days: float
) -> str:
    """``backfill`` when the run is one (run type ``backfill``) or its data interval ended more than
    ``backfill_lag_days`` before ``now``; else ``realtime``. A run without a data interval is real time."""
    if str(run_type or "") == BACKFILL:  # DagRunType.BACKFILL_JOB
        return BACKFILL
    if data_interval_end is not None and now - data_interval_end > dt.timedelta(days=backfill_lag_days):
        return BACKFILL
    return REALTIME


def record_mode(record: dict[str, Any]) -> str:
    """The pool a trigger record spends: its ``mode``; real time when it has none."""
    return BACKFILL if record.get("mode") == BACKFILL else REALTIME


def _at(record: dict[str, Any]) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(record["triggered_at"]))
    except (KeyError, ValueError, TypeError):
        return None


def cooldown_hold(day: dt.date, triggered_days: Iterable[dt.date], cooldown_days: int) -> Hold | None:
    """No second drift-triggered training for a window within ``cooldown_days`` data days after one."""
    within = sorted(d for d in set(triggered_days) if dt.timedelta(0) < day - d <= dt.timedelta(days=cooldown_days))
    if not within:
        return None
    last = within[-1]
    return Hold(
        rail="cooldown",
        reason=f"cooldown: a drift-triggered training ran for window {last}, within {cooldown_days} day(s) before "
        f"{day} (cooldown_days {cooldown_days})",
        counted=[f"window {d}" for d in within],
        used=len(within),
        limit=cooldown_days,
        frees=f"windows from {last + dt.timedelta(days=cooldown_days + 1)} on",
        key="retraining.cooldown_days",
    )


def data_week_hold(day: dt.date, triggered_days: Iterable[dt.date], max_per_week: int) -> Hold | None:
    """At most ``max_per_week`` drift-triggered trainings for the windows of the 6 days before ``day``."""
    week = sorted(d for d in set(triggered_days) if dt.timedelta(0) < day - d <= dt.timedelta(days=DATA_WEEK_DAYS))
    if len(week) < max_per_week:
        return None
    # The window that may trigger again: the first day whose 6-day look-back holds fewer than max_per_week.
    oldest_to_leave = week[len(week) - max_per_week]
    return Hold(
        rail="data_week_budget",
        reason=f"budget: {len(week)} drift-triggered trainings in the last 7 days of windows "
        f"(max_per_week {max_per_week})",
        counted=[f"window {d}" for d in week],
        used=len(week),
        limit=max_per_week,
        frees=f"windows from {oldest_to_leave + dt.timedelta(days=DATA_WEEK_DAYS + 1)} on",
        key="retraining.max_per_week",
    )


def records_since(records: Sequence[dict[str, Any]], since: dt.datetime) -> list[dict[str, Any]]:
    """The trigger records whose ``triggered_at`` is at or after ``since``, oldest first (an unreadable record is
    left out)."""
    dated = [(at, r) for r in records if (at := _at(r)) is not None and at >= since]
    return [r for _, r in sorted(dated, key=lambda item: item[0])]


def counted_in_real_week(records: Sequence[dict[str, Any]], now: dt.datetime, mode: str) -> list[dict[str, Any]]:
    """The trigger records of pool ``mode`` triggered in the 7 days of real time up to ``now``, oldest first (an
    unreadable record is left out)."""
    return records_since([r for r in records if record_mode(r) == mode], now - REAL_WEEK)


def real_week_hold(records: Sequence[dict[str, Any]], now: dt.datetime, mode: str, limit: int) -> Hold | None:
    """At most ``limit`` trainings of pool ``mode`` (``realtime`` or ``backfill``) triggered in the last 7 days of
    real time (``limit`` 0: none at all). A backfill's records never count against a real-time alarm, nor the other
    way round."""
    counted = counted_in_real_week(records, now, mode)
    if len(counted) < limit:
        return None
    frees: str | None
    if limit <= 0:  # max_backfill_per_real_week 0: a backfill never retrains
        frees = "never while the limit is 0"
    else:
        leaves = _at(counted[len(counted) - limit])  # counted records all have a time
        frees = (leaves + REAL_WEEK).isoformat(timespec="seconds") if leaves else None
    if mode == BACKFILL:
        what, key = "backfill trainings", "max_backfill_per_real_week"
    else:
        what, key = "trainings", "max_per_real_week"
    return Hold(
        rail=f"{mode}_week_budget",
        reason=f"budget: {len(counted)} {what} triggered in the last 7 days of real time ({key} {limit})",
        counted=[f"{r.get('run_id')} (triggered {r.get('triggered_at')}, {r.get('reason') or '?'})" for r in counted],
        used=len(counted),
        limit=limit,
        frees=frees,
        key=f"retraining.{key}",
    )


def message(hold: Hold, mode: str, trigger_dag_id: str, dataset_rev: str | None) -> str:
    """The held-back line on-call reads (log, XCom, mail, health page): the rail with its numbers, what it counted,
    when it frees up, what to do."""
    parts = [f"held back ({mode} alarm) by {hold.rail}: {hold.reason}"]
    if hold.counted:
        parts.append("counted: " + ", ".join(hold.counted))
    if hold.frees:
        parts.append(f"frees up: {hold.frees}")
    todo = f"to retrain now, trigger {trigger_dag_id} by hand with reason manual"
    if dataset_rev:
        todo += f" and dataset_rev {dataset_rev}"
    if hold.key:
        todo += f"; to allow more, raise {hold.key} in the spec"
    parts.append(todo)
    return "; ".join(parts)


#: Task-instance states after which a task of the previous run has decided (it will not run again by itself).
DECIDED_STATES = frozenset({"success", "skipped", "failed", "upstream_failed", "removed"})
#: Dag-run states after which nothing in that run runs any more.
ENDED_RUN_STATES = frozenset({"success", "failed"})


def previous_run_pending(
    run_id: str | None, run_state: str | None, task_states: dict[str, str | None], task_ids: Sequence[str]
) -> str | None:
    """Whether a day's decision must wait for the previous run of its DAG (the days decide in date order, as the
    nightly runs do, while their checks may overlap in a backfill): the reason to wait, or ``None`` to go ahead.

    Go ahead when there is no previous run (``run_id`` None), when that run ended, or when each of ``task_ids`` is
    in a decided state there (success, skipped, failed, upstream_failed, removed). By induction each day then
    decides after every earlier day of an unbroken run of days has."""
    if run_id is None or str(run_state or "") in ENDED_RUN_STATES:
        return None
    waiting = [f"{task} ({task_states.get(task) or 'no state yet'})" for task in task_ids
               if str(task_states.get(task) or "") not in DECIDED_STATES]  # fmt: skip
    if not waiting:
        return None
    return f"the previous run {run_id} ({run_state}) has not decided yet: " + ", ".join(waiting)
