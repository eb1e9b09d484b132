"""Trigger the training DAG on drift, with safety rails against retraining storms."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.providers.standard.operators.trigger_dagrun import XCOM_RUN_ID, TriggerDagRunOperator
from airflow.sdk import BaseOperator

from mlops_provider.hooks.mixins import MlflowHookMixin
from mlops_provider.layout import CHAMPION_ALIAS, deciding_signal
from mlops_provider.utils.compat import AirflowSkipException

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg

    from mlops_provider.ml.rails import Hold

#: The held-back WARNING goes through the standard logger: Airflow routes it into the task log (and tests read it).
log = logging.getLogger(__name__)
#: Held-back alarms listed on the health page, newest first.
HELD_BACK_SHOWN = 50


def retraining_run_id(dataset: str, window_end: str) -> str:
    """The deterministic run id of the training run a drift window triggers."""
    return f"drift__{dataset}__{window_end}"


def held_back_alarms(trigger_dag_id: str, limit: int = HELD_BACK_SHOWN) -> list[dict[str, Any]]:
    """The newest ``limit`` held-back records of ``trigger_dag_id``, newest first."""
    from mlops_provider.utils.evidence import attempts
    from mlops_provider.utils.records import held_back_dir

    return list(reversed(attempts(held_back_dir(trigger_dag_id))))[:limit]


def write_held_back(trigger_dag_id: str, record: dict[str, Any], ti: Any) -> None:
    """Keep a held-back alarm beside the trigger records, one file per task try (a re-run adds its own)."""
    from mlops_provider.utils.evidence import write_record
    from mlops_provider.utils.records import held_back_dir

    attempt = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{record.get('window_end') or ''}__{ti.dag_id}__{ti.run_id}")
    write_record(held_back_dir(trigger_dag_id), f"{attempt}__try{getattr(ti, 'try_number', 0)}", record)


def triggered_since(trigger_dag_id: str, since: dt.datetime) -> list[dict[str, Any]]:
    """The trigger records of ``trigger_dag_id`` written at or after ``since`` (real time), oldest first."""
    from mlops_provider.ml.rails import records_since
    from mlops_provider.utils.evidence import attempts
    from mlops_provider.utils.records import trigger_records_dir

    return records_since(attempts(trigger_records_dir(trigger_dag_id)), since)


class TriggerRetrainingOperator(TriggerDagRunOperator):
    """Trigger ``training`` for a drifted window, at most once per window and within a cooldown and a budget.

    Rails, checked in this order, each ending the task as skipped with the reason:

    1. the run id is ``drift__<dataset>__<window end>``: re-running the monitoring run never triggers twice;
    2. a **re-check** of a day that was already checked (a cleared drift or performance task) does not trigger
       once the day's first check is older than ``recheck_grace`` (real time), unless ``retrain_on_recheck``:
       history is not rewritten by hindsight; to retrain on that day's data, trigger ``training`` by hand with its
       ``dataset_rev``. Within the grace (a retry, or a clear the same night after a downstream failure) it goes on,
       behind the other rails;
    3. a training run is already queued or running: it will pick up the newest data anyway;
    4. cooldown: no drift-triggered training for a window within ``cooldown_days`` before this one (data days,
       so a backfill decides like the nightly runs did);
    5. budget: at most ``max_per_week`` drift-triggered trainings for windows in the 7 days up to this one;
    6. real-time budget: at most ``max_per_real_week`` trainings triggered in the last 7 days of real time by
       real-time alarms (and schedules). A **backfill** run (run type ``backfill``, or a data interval that ended
       more than ``backfill_lag_days`` ago) spends its own pool instead, ``max_backfill_per_real_week``: a
       backfill's false alarms never starve a real alarm, and a long backfill cannot start a storm. For a
       real-time alarm, rail 3 does not count training runs a backfill triggered (the real one queues behind).

    Held back, the task logs a WARNING with the rail, its numbers, the trainings it counted with their dates, when
    it frees up and what to do (trigger training by hand with reason ``manual``); the same line goes to XCom
    (``held_back``, for the ``retraining`` mail) and to a record under ``.../<trigger_dag_id>/held/`` that the
    model health page lists. The rules are the pure functions of :mod:`mlops_provider.ml.rails`.

    Each trigger leaves a record ``<reports root>/retraining/<trigger_dag_id>/<run id>.json``
    (``triggered_at``, ``mode`` ``realtime`` or ``backfill``, the reason, the report) that the real-time budgets
    count.

    The conf carries ``reason`` (``drift`` or ``performance``), ``dataset_rev`` (the training set of the window,
    so a backfilled window trains on the data of its time) and in ``detail`` the drift summary, the performance
    summary and the report location; the training run records them as its trigger reason.

    :param dataset: dataset name (templated).
    :param trigger_dag_id: the model's training DAG (no default: with several models each has its own).
    :param decision: the drift sensor's result (templated; dict or JSON).
    :param dataset_rev: data registry rev the training run should use (templated; empty: its default).
    :param cooldown_days: days without a second drift-triggered training.
    :param max_per_week: drift-triggered trainings allowed per 7 days of windows.
    :param max_per_real_week: trainings real-time alarms may trigger per 7 days of real time (None: ``max_per_week``).
    :param max_backfill_per_real_week: trainings backfill alarms may trigger per 7 days of real time, their own pool
        (None: ``max_per_week``; 0: a backfill never triggers training).
    :param backfill_lag_days: a run whose data interval ended more than this many days ago is a backfill (default 3).
    :param retrain_on_recheck: act on a re-check's results whatever its age (default False).
    :param recheck_grace: how long after a day's first check a re-check may still trigger (default 6 hours).
    """

    template_fields: Sequence[str] = (*TriggerDagRunOperator.template_fields, "dataset", "decision", "dataset_rev")

    def __init__(
        self,
        *,
        dataset: str,
        decision: dict[str, Any] | str | XComArg,
        dataset_rev: str = "",
        trigger_dag_id: str,
        cooldown_days: int = 2,
        max_per_week: int = 2,
        max_per_real_week: int | None = None,
        max_backfill_per_real_week: int | None = None,
        backfill_lag_days: float = 3.0,
        retrain_on_recheck: bool = False,
        recheck_grace: dt.timedelta = dt.timedelta(hours=6),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("skip_when_already_exists", True)
        kwargs.setdefault("wait_for_completion", False)
        super().__init__(trigger_dag_id=trigger_dag_id, **kwargs)
        max_per_real_week = max_per_week if max_per_real_week is None else max_per_real_week
        if max_backfill_per_real_week is None:
            max_backfill_per_real_week = max_per_week
        if cooldown_days < 0 or max_per_week < 1 or max_per_real_week < 1 or max_backfill_per_real_week < 0:
            raise ValueError(
                "need cooldown_days >= 0, max_per_week >= 1, max_per_real_week >= 1 and max_backfill_per_real_week "
                f">= 0, got {cooldown_days}, {max_per_week}, {max_per_real_week}, {max_backfill_per_real_week}"
            )
        if backfill_lag_days < 0:
            raise ValueError(f"need backfill_lag_days >= 0, got {backfill_lag_days}")
        self.dataset = dataset
        self.decision = decision
        self.dataset_rev = dataset_rev
        self.cooldown_days = cooldown_days
        self.max_per_week = max_per_week
        self.max_per_real_week = max_per_real_week
        self.max_backfill_per_real_week = max_backfill_per_real_week
        self.backfill_lag_days = backfill_lag_days
        self.retrain_on_recheck = retrain_on_recheck
        self.recheck_grace = recheck_grace

    def _runs(self, context: Context, days: list[dt.date], states: list[str] | None = None) -> int:
        run_ids = [retraining_run_id(self.dataset, d.isoformat()) for d in days]
        return int(context["ti"].get_dr_count(dag_id=self.trigger_dag_id, run_ids=run_ids, states=states))

    def _hold(self, ti: Any, hold: Hold, mode: str, window_end: str, run_type: str) -> NoReturn:
        """End as skipped: the reason is logged at WARNING, left in XCom for a notifier and recorded for the model
        health page (a rail held the trigger back)."""
        from mlops_provider.ml.rails import message
        from mlops_provider.notifications.mail import HELD_BACK_XCOM_KEY
        from mlops_provider.utils.records import held_back_dir

        text = message(hold, mode, self.trigger_dag_id, self.dataset_rev or None)
        log.warning("Retraining alarm for window %s NOT triggered: %s", window_end, text)
        ti.xcom_push(key=HELD_BACK_XCOM_KEY, value=text)
        record = {"window_end": window_end, "mode": mode, "run_type": run_type, "monitoring_run":
                  f"{ti.dag_id}/{ti.run_id}", "trigger_dag_id": self.trigger_dag_id, "message": text,
                  **hold.as_dict()}  # fmt: skip
        try:
            write_held_back(self.trigger_dag_id, record, ti)
        except OSError as error:  # the decision stands without its page entry; the log and XCom have it
            log.error("Could not record the held-back alarm under %s: %s", held_back_dir(self.trigger_dag_id), error)
        raise AirflowSkipException(text)

    def _triggered_days(self, context: Context, day: dt.date) -> list[dt.date]:
        """The data days before ``day`` (as far back as the cooldown and the data week reach) whose window has a
        drift-triggered training run (one query, then one per day only when some exist)."""
        from mlops_provider.ml.rails import DATA_WEEK_DAYS

        days = [day - dt.timedelta(days=i) for i in range(1, max(self.cooldown_days, DATA_WEEK_DAYS) + 1)]
        if not self._runs(context, days):
            return []
        return [d for d in days if self._runs(context, [d])]

    def execute(self, context: Context) -> Any:
        from mlops_provider.ml.rails import (
            BACKFILL,
            REALTIME,
            Hold,
            cooldown_hold,
            data_week_hold,
            real_week_hold,
            record_mode,
            run_mode,
        )
        from mlops_provider.notifications.mail import TRIGGERED_XCOM_KEY
        from mlops_provider.utils.evidence import attempts
        from mlops_provider.utils.records import trigger_records_dir
        from mlops_provider.utils.storage import write_text
        from mlops_provider.utils.templated_fields import json_object

        decision = json_object(self.decision, "decision")
        window_end = str(decision["partition"])
        day = dt.date.fromisoformat(window_end)
        run_id = retraining_run_id(self.dataset, window_end)
        ti = context["ti"]
        if self._runs(context, [day]):
            ti.xcom_push(key=XCOM_RUN_ID, value=run_id)  # a re-run keeps the "Triggered DAG" link to that run
            raise AirflowSkipException(f"training run {run_id} already exists: this window was handled")
        now = dt.datetime.now(dt.timezone.utc)
        run_type = str(getattr(context.get("dag_run"), "run_type", "") or "")
        mode = run_mode(run_type, context.get("data_interval_end"), now, self.backfill_lag_days)

        def hold(found: Hold) -> NoReturn:
            self._hold(ti, found, mode, window_end, run_type)

        if decision.get("recheck") and not self.retrain_on_recheck:
            first = decision.get("first_recorded_at")
            age = now - dt.datetime.fromisoformat(first) if first else None
            if age is None or age > self.recheck_grace:
                hold(Hold(
                    rail="recheck",
                    reason=f"these results re-check {window_end}, first checked {first or 'earlier'} (more than "
                    f"{self.recheck_grace} ago): a late re-check never triggers training (history is not rewritten "
                    "by hindsight)",
                ))  # fmt: skip
            self.log.info("Re-check of %s within %s of its first check (%s): acting on it", window_end, age, first)
        records = attempts(trigger_records_dir(self.trigger_dag_id))
        busy = int(ti.get_dr_count(dag_id=self.trigger_dag_id, states=["queued", "running"]))
        if busy and mode == REALTIME:  # a backfill's training never holds a real alarm back: it queues behind it
            backfill_runs = [str(r["run_id"]) for r in records if record_mode(r) == BACKFILL and r.get("run_id")]
            if backfill_runs:
                busy -= int(ti.get_dr_count(dag_id=self.trigger_dag_id, run_ids=backfill_runs,
                                            states=["queued", "running"]))  # fmt: skip
        if busy:
            hold(Hold(
                rail="busy",
                reason=f"{busy} {self.trigger_dag_id} run(s) queued or running: not adding another",
                used=busy, limit=1, frees="when that run finishes",
            ))  # fmt: skip
        triggered = self._triggered_days(context, day)
        limit = self.max_backfill_per_real_week if mode == BACKFILL else self.max_per_real_week
        found = (
            cooldown_hold(day, triggered, self.cooldown_days)
            or data_week_hold(day, triggered, self.max_per_week)
            or real_week_hold(records, now, mode, limit)
        )
        if found:
            hold(found)
        self.trigger_run_id = run_id
        self.conf = {
            "reason": decision.get("reason", "drift"),
            "dataset_rev": self.dataset_rev or None,
            "detail": {
                "window_end": window_end,
                "drift_share": decision.get("drift_share"),
                "threshold": decision.get("threshold"),
                "decided_by": deciding_signal(decision, float(decision.get("threshold") or 0.3)),
                "drifted_columns": decision.get("drifted_columns"),
                "report_url": decision.get("report_url"),
                "report_path": decision.get("report_path"),
                "performance": decision.get("performance"),
                "monitoring_run": f"{ti.dag_id}/{ti.run_id}",
            },
        }
        self.log.warning("Triggering %s run %s: %s", self.trigger_dag_id, run_id, self.conf["detail"])
        ti.xcom_push(
            key=TRIGGERED_XCOM_KEY, value={"dag_id": self.trigger_dag_id, "run_id": run_id, **self.conf}
        )  # for notifications
        # Recorded before the trigger: on Airflow 3 the trigger is raised to the task runner and nothing after it
        # runs. A record names its run id, so a retry of this task does not count twice.
        record = {"run_id": run_id, "triggered_at": now.isoformat(timespec="seconds"), "mode": mode, **self.conf}
        path = trigger_records_dir(self.trigger_dag_id) / f"{run_id}.json"
        if not path.exists():
            write_text(path, json.dumps(record, indent=2, default=str))
        return super().execute(context)


def schedule_rails_decision(
    records: list[dict[str, Any]], now: dt.datetime, cooldown_days: int, max_per_week: int
) -> str | None:
    """Why a scheduled training must not run now (``None``: it may), given the trigger records of the training
    DAG (any reason: drift, performance, schedule): the same cooldown and weekly budget as drift-triggered
    trainings, counted in real time (a schedule has no data window). Trainings a backfill triggered are not
    counted: they spend their own pool (:mod:`mlops_provider.ml.rails`)."""
    from mlops_provider.ml.rails import REALTIME, record_mode, records_since

    records = [r for r in records if record_mode(r) == REALTIME]
    if cooldown_days:
        recent = records_since(records, now - dt.timedelta(days=cooldown_days))
        if recent:
            return (
                f"cooldown: {recent[-1].get('run_id')} ({recent[-1].get('reason')}) was triggered within "
                f"{cooldown_days} day(s)"
            )
    week = records_since(records, now - dt.timedelta(days=7))
    if len(week) >= max_per_week:
        return (
            f"budget: {len(week)} trainings triggered in the last 7 days (max_per_real_week {max_per_week}): "
            + ", ".join(f"{r.get('run_id')} ({r.get('reason')}, {r.get('triggered_at')})" for r in week)
        )
    return None


class ScheduledRetrainingRailsOperator(BaseOperator):
    """Let a **scheduled** training run go ahead only within the retraining rails; other runs pass untouched.

    A model may retrain on a time schedule (e.g. weekly) beside the drift and performance triggers. A scheduled
    run goes through the same rails as a triggered one: no training within ``cooldown_days`` of the last one
    triggered for this DAG (any reason), at most ``max_per_real_week`` in 7 days (trainings a backfill triggered
    are not counted). Held back, the task logs a WARNING with the reason, records it for the model health page and
    ends as skipped; the training task after it is skipped too. Let through, it writes the trigger record
    (reason ``schedule``) that the drift-triggered rails count as well. Manual and triggered runs pass at once
    (their rails were checked by whoever triggered them). A re-run of the same run finds its own record and
    passes again.

    :param trigger_dag_id: the training DAG whose trigger records are counted (usually this DAG).
    :param cooldown_days: days without a second training.
    :param max_per_week: trainings allowed per 7 days of real time when ``max_per_real_week`` is not given.
    :param max_per_real_week: trainings allowed per 7 days of real time (None: ``max_per_week``).

    XCom (return value): ``{"run_type", "checked", "reason"}``.
    """

    template_fields: Sequence[str] = ("trigger_dag_id",)

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        cooldown_days: int = 2,
        max_per_week: int = 2,
        max_per_real_week: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        max_per_real_week = max_per_week if max_per_real_week is None else max_per_real_week
        if cooldown_days < 0 or max_per_real_week < 1:
            raise ValueError(
                f"need cooldown_days >= 0 and max_per_real_week >= 1, got {cooldown_days}, {max_per_real_week}"
            )
        self.trigger_dag_id = trigger_dag_id
        self.cooldown_days = cooldown_days
        self.max_per_week = max_per_week
        self.max_per_real_week = max_per_real_week

    def execute(self, context: Context) -> dict[str, Any]:
        from mlops_provider.ml.rails import REALTIME
        from mlops_provider.utils.evidence import attempts
        from mlops_provider.utils.records import held_back_dir, trigger_records_dir
        from mlops_provider.utils.storage import write_text

        dag_run = context.get("dag_run")
        run_type = str(getattr(dag_run, "run_type", "") or "")
        run_id = str(context["run_id"])
        if run_type != "scheduled":
            return {"run_type": run_type, "checked": False, "reason": None}
        folder = trigger_records_dir(self.trigger_dag_id)
        own = folder / f"{run_id}.json"
        if own.exists():
            self.log.info("Scheduled run %s was let through before (%s): going on", run_id, own)
            return {"run_type": run_type, "checked": True, "reason": "schedule"}
        now = dt.datetime.now(dt.timezone.utc)
        held = schedule_rails_decision(attempts(folder), now, self.cooldown_days, self.max_per_real_week)
        if held:
            text = (
                f"scheduled training held back by the retraining rails: {held}; to train now, trigger "
                f"{self.trigger_dag_id} by hand with reason manual"
            )
            log.warning("%s", text)
            record = {"window_end": None, "mode": REALTIME, "run_type": run_type, "rail": held.split(":")[0],
                      "monitoring_run": f"{context['ti'].dag_id}/{run_id}", "trigger_dag_id": self.trigger_dag_id,
                      "message": text}  # fmt: skip
            try:
                write_held_back(self.trigger_dag_id, record, context["ti"])
            except OSError as error:
                log.error("Could not record the held-back training under %s: %s", held_back_dir(self.trigger_dag_id),
                          error)  # fmt: skip
            raise AirflowSkipException(text)
        record = {"run_id": run_id, "triggered_at": now.isoformat(timespec="seconds"), "reason": "schedule",
                  "mode": REALTIME}  # fmt: skip
        write_text(own, json.dumps(record, indent=2))
        return {"run_type": run_type, "checked": True, "reason": "schedule"}


class BootstrapTrainingOperator(MlflowHookMixin, TriggerDagRunOperator):
    """Trigger the first training of a model that has no champion yet (cold start of the loop).

    Skips when ``model_name`` has a ``champion``. The run id is ``bootstrap__<dataset>``, one for all time: a
    re-run, or the next day while that training or its promotion is still going, never triggers a second one.
    If the bootstrap challenger is rejected by the gate, the message says to trigger ``training`` by hand.
    Run a ChampionSensor beside it to hold a sequential monitoring DAG until
    the first champion exists.

    :param dataset: dataset name (templated).
    :param trigger_dag_id: the model's training DAG (no default: with several models each has its own).
    :param model_name: the registered model (templated).
    :param dataset_rev: data registry rev to train on (templated).

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``mlflow_conn_id``.
    """

    template_fields: Sequence[str] = (
        *TriggerDagRunOperator.template_fields, "dataset", "model_name", "dataset_rev",
    )  # fmt: skip

    def __init__(
        self,
        *,
        dataset: str,
        model_name: str,
        dataset_rev: str,
        trigger_dag_id: str,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("skip_when_already_exists", True)
        kwargs.setdefault("wait_for_completion", False)
        super().__init__(trigger_dag_id=trigger_dag_id, **kwargs)
        self.dataset = dataset
        self.model_name = model_name
        self.dataset_rev = dataset_rev

    def execute(self, context: Context) -> Any:
        champion = self.mlflow_hook.alias_version(self.model_name, CHAMPION_ALIAS)
        if champion is not None:
            raise AirflowSkipException(f"{self.model_name} has a champion (v{champion}): no bootstrap needed")
        run_id = f"bootstrap__{self.dataset}"
        if context["ti"].get_dr_count(dag_id=self.trigger_dag_id, run_ids=[run_id]):
            context["ti"].xcom_push(key=XCOM_RUN_ID, value=run_id)  # the "Triggered DAG" link shows that run
            raise AirflowSkipException(
                f"{self.trigger_dag_id} run {run_id} exists and no champion yet: it is still going, or its challenger "
                f"was rejected (see the promotion run); trigger {self.trigger_dag_id} by hand to try again"
            )
        self.trigger_run_id = run_id
        self.conf = {"reason": "bootstrap", "dataset_rev": self.dataset_rev, "detail": {"model_name": self.model_name}}
        self.log.warning("No champion for %s: triggering %s run %s", self.model_name, self.trigger_dag_id, run_id)
        return super().execute(context)


class ChampionBranchOperator(MlflowHookMixin, BaseBranchOperator):
    """The monitoring run's fork on the champion: with one (every day after the cold start) it follows
    ``with_champion`` and the cold-start tasks are skipped by the scheduler without running (no bootstrap task,
    no champion sensor); without one it follows ``without_champion`` (the bootstrap training and the wait for its
    champion, with the checks after them).

    One registry lookup (the alias), the same question :class:`BootstrapTrainingOperator` asks, asked once before
    either runs. Clearing it asks again.

    :param model_name: the registered model (templated).
    :param with_champion: task ids to follow when the model has a champion (the others downstream are skipped).
    :param without_champion: task ids to follow when it has none.
    :param champion_alias: alias of the champion.

    Connections (parameters of the bases in :mod:`mlops_provider.hooks.mixins`, templated): ``mlflow_conn_id``.

    XCom (return value): the followed task ids, a list.
    """

    template_fields: Sequence[str] = ("model_name",)
    ui_color = "#e8f0ff"

    def __init__(
        self,
        *,
        model_name: str,
        with_champion: Sequence[str],
        without_champion: Sequence[str],
        champion_alias: str = CHAMPION_ALIAS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.with_champion = list(with_champion)
        self.without_champion = list(without_champion)
        self.champion_alias = champion_alias

    def choose_branch(self, context: Context) -> list[str]:
        champion = self.mlflow_hook.alias_version(self.model_name, self.champion_alias)
        if champion is None:
            self.log.warning("%s has no %r: following the cold start %s", self.model_name, self.champion_alias,
                             self.without_champion)  # fmt: skip
            return self.without_champion
        self.log.info("%s has a %s (v%s): following %s", self.model_name, self.champion_alias, champion,
                      self.with_champion)  # fmt: skip
        return self.with_champion
