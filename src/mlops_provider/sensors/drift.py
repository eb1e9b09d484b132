"""Drift sensor: lets the retraining trigger go ahead only when the window's data drifted past the line or the
champion's performance on late labels fell below its floor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from mlops_provider.hooks.mixins import UpstreamResultMixin
from mlops_provider.layout import DriftSummary, PerformanceSummary, RetrainingDecision

if TYPE_CHECKING:
    from airflow.sdk import Context, XComArg


class DriftSensor(UpstreamResultMixin, BaseSensorOperator):
    """Wait for the monitoring results of a window, then decide.

    Succeeds (the retraining trigger goes ahead) with reason ``drift`` when the drift report's verdict is
    ``dataset_drift`` (the report alone decides, against its own ``threshold``: one rule, one place), or with
    reason ``performance`` when the performance summary says the champion fell below its floor on late labels;
    otherwise the path ends as **skipped** (no drift is not a failure). When the results are already there it
    decides at once; else it defers to DriftResultTrigger (default: the wait happens in the triggerer, no worker
    slot is held) or pokes (``deferrable=False``, with ``mode="poke"`` or ``"reschedule"``).

    :param summary_path: the drift summary JSON of the window, or the drift report's result (its ``summary_path``)
        (templated).
    :param performance_path: the performance summary JSON of the window, or the performance check's result (its
        ``summary_path``) (templated; empty: drift only).
    :param deferrable: wait in the triggerer (default) or, ``False``, poke.
    :param poll_interval: seconds between checks.
    :param start_from_trigger: Airflow's ``start_from_trigger``: the scheduler defers the task as soon as it is ready,
        and its trigger reads the results, decides by the same rule and ends the task (no task process at all). Each
        of the two paths must then be a plain path or an upstream task's result (the trigger reads that XCom itself).
        Airflow then runs a success callback in the dag processor: leave it off for one that needs a worker (the
        factory does, for a spec that mails on drift).

    XCom (return value): ``{"reason", "drift_share", "threshold", "signal", "weighted_drift", "weighted_threshold",
    "learned_drift", "learned_threshold", "partition", "report_url", "report_path", "drifted_columns", "performance",
    "recheck", "summary_path"}``
    (``drifted_columns``: under the learned signal, the columns past their learned bound; ``recheck``: the results
    are a re-check of a day that was already checked; the retraining trigger does not act on it unless asked).
    """

    upstream_fields = {"summary_path": "summary_path", "performance_path": "summary_path"}  # the checks' results
    template_fields: Sequence[str] = ("summary_path", "performance_path")

    def __init__(
        self,
        *,
        summary_path: str | XComArg,
        performance_path: str | XComArg | None = None,
        deferrable: bool = True,
        poll_interval: float = 10.0,
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", timedelta(hours=6).total_seconds())
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.summary_path = cast("str", summary_path)  # an upstream result is picked when rendered
        self.performance_path = cast("str | None", performance_path)  # an upstream result is picked when rendered
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        if start_from_trigger:
            from mlops_provider.triggers import start_from_trigger as start

            # the trigger reads the two paths from the checks' results, decides and ends the task
            start(
                self,
                "mlops_provider.triggers.drift.DriftResultTrigger",
                {
                    **_result_source(summary_path, "summary"),
                    **_result_source(performance_path, "performance"),
                    "poll_interval": poll_interval,
                    "decide": True,
                },
            )

    def _results(self) -> tuple[DriftSummary, PerformanceSummary | None] | None:
        from mlops_provider.triggers.drift import read_result

        summary, performance = read_result(self.summary_path), read_result(self.performance_path)
        if summary is None or (self.performance_path and performance is None):
            return None
        return cast("DriftSummary", summary), cast("PerformanceSummary | None", performance)

    def execute(self, context: Context) -> Any:
        from mlops_provider.triggers.drift import DriftResultTrigger

        if not self.deferrable:
            return super().execute(context)
        ready = self._results()
        if ready:
            return self.decide(*ready)
        self.defer(
            trigger=DriftResultTrigger(
                summary_path=str(self.summary_path),
                poll_interval=self.poll_interval,
                performance_path=self.performance_path or None,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        ready = self._results()
        return PokeReturnValue(is_done=True, xcom_value=self.decide(*ready)) if ready else False

    def execute_complete(self, context: Context, event: dict[str, Any]) -> RetrainingDecision:
        return self.decide(event["summary"], event.get("performance"))

    def decide(self, summary: DriftSummary, performance: PerformanceSummary | None = None) -> RetrainingDecision:
        from mlops_provider.triggers.drift import decide_retraining

        return decide_retraining(summary, performance, log=self.log, summary_path=self.summary_path)


def _result_source(value: Any, name: str) -> dict[str, Any]:
    """Where the trigger started by the scheduler finds a summary: a path as given (``<name>_path``), or the upstream
    task whose result (``task.output``) holds it (``<name>_task_id``: the trigger reads that XCom itself with Airflow's
    ``GetXCom``; a template's ``ti.xcom_pull`` is not answered by Airflow 3.3.2's triggerer)."""
    if value is None or isinstance(value, str):
        return {f"{name}_path": value}
    operator, key = getattr(value, "operator", None), getattr(value, "key", None)
    if operator is None or key != "return_value":
        raise ValueError(f"{name}_path: start_from_trigger takes a path or an upstream task's result, got {value!r}")
    return {f"{name}_task_id": operator.task_id}


class PreviousRunSensor(BaseSensorOperator):
    """Wait until the previous run of this DAG has decided: each of ``task_ids`` is in a decided state there
    (success, skipped, failed, upstream_failed, removed), or that run ended, or there is none.

    It keeps the days' *decisions* in date order when a backfill runs several days at once (``max_active_runs`` >
    1): the checks of later days run while an earlier day decides, and the retraining rails (cooldown, budgets)
    still count exactly the triggers of the days before, as the nightly runs do. One previous run is enough: that
    run's own sensor waited for the run before it. In a nightly run the previous day ended long ago: it passes at
    its first poke. Reschedule mode by default: a waiting day holds no worker slot.

    :param task_ids: the tasks of the previous run that must have decided.
    :param poll_interval: seconds between checks.

    XCom (return value): ``{"previous_run_id", "previous_run_state"}`` (``None`` when there is no previous run).
    """

    template_fields: Sequence[str] = ("task_ids",)

    def __init__(self, *, task_ids: Sequence[str], poll_interval: float = 5.0, **kwargs: Any) -> None:
        kwargs.setdefault("timeout", timedelta(hours=6).total_seconds())
        kwargs.setdefault("mode", "reschedule")
        super().__init__(poke_interval=poll_interval, **kwargs)
        if not task_ids:
            raise ValueError("PreviousRunSensor needs the task_ids whose decision the previous run must have made")
        self.task_ids = list(task_ids)

    def poke(self, context: Context) -> PokeReturnValue | bool:
        from mlops_provider.ml.rails import ENDED_RUN_STATES, previous_run_pending

        ti = context["ti"]
        previous = ti.get_previous_dagrun()
        run_id = getattr(previous, "run_id", None)
        state = getattr(previous, "state", None)
        run_state = str(getattr(state, "value", state)) if state is not None else None
        states: dict[str, str | None] = {}
        if run_id is not None and run_state not in ENDED_RUN_STATES:
            found = ti.get_task_states(dag_id=ti.dag_id, task_ids=self.task_ids, run_ids=[run_id])
            states = {task: (str(getattr(value, "value", value)) if value is not None else None)
                      for task, value in (found.get(run_id) or {}).items()}  # fmt: skip
        pending = previous_run_pending(run_id, run_state, states, self.task_ids)
        if pending:
            self.log.info("Waiting: %s", pending)
            return False
        return PokeReturnValue(is_done=True, xcom_value={"previous_run_id": run_id, "previous_run_state": run_state})
