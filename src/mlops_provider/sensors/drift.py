"""Drift sensor: lets the retraining trigger go ahead only when the window's data drifted past the line or the
champion's performance on late labels fell below its floor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from mlops_provider.hooks.mixins import UpstreamResultMixin
from mlops_provider.layout import DriftSummary, PerformanceSummary, RetrainingDecision
from mlops_provider.utils.compat import AirflowFailException, AirflowSkipException

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
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", timedelta(hours=6).total_seconds())
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.summary_path = cast("str", summary_path)  # an upstream result is picked when rendered
        self.performance_path = cast("str | None", performance_path)  # an upstream result is picked when rendered
        self.deferrable = deferrable
        self.poll_interval = poll_interval

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
        share = float(summary["drift_share"])
        learned = summary.get("signal") == "learned"
        # under the learned signal, "drifted" columns are those past their learned bound
        drifted = sorted(
            name
            for name, col in cast("dict[str, dict[str, Any]]", summary.get("columns", {})).items()
            if ((col.get("learned") or {}).get("past") if learned else col.get("drifted"))
        )
        degraded = bool(
            performance
            and (
                (performance.get("status") == "scored" and performance.get("below_floor"))
                or (performance.get("trigger_on_estimate") and performance.get("estimated_below_floor"))
            )
        )
        if "dataset_drift" not in summary:
            raise AirflowFailException(
                f"drift summary {summary.get('summary_path') or self.summary_path} has no dataset_drift verdict: it "
                "was not written by DriftReportOperator (the report decides; this sensor only reads its verdict)"
            )
        threshold = summary.get("threshold")
        drifted_verdict = bool(summary["dataset_drift"])
        predictions = bool(
            performance
            and performance.get("trigger_on_prediction_drift")
            and (performance.get("prediction_drift") or {}).get("drifted")
        )
        if not drifted_verdict and not degraded and not predictions:
            perf = ""
            if performance and performance.get("status") == "scored":
                value, floor = performance["value"], performance["floor"]
                # under the floor without an alarm (interval rule, consecutive days): the record's verdict says why
                perf = (
                    f"; {performance['metric']} {value:.3f} >= floor {floor}"
                    if value >= floor
                    else (f"; {performance.get('verdict') or 'under the floor, no alarm by the performance rule'}")
                )
            elif performance and performance.get("reason"):
                perf = f"; no performance decision ({performance['status']}): {performance['reason']}"
            weighted = summary.get("weighted_drift")
            line = (
                f"weighted drift {weighted:.3f} < {summary.get('weighted_threshold')} (share {share:.3f})"
                if summary.get("signal") == "weighted" and weighted is not None
                else f"learned drift {summary.get('learned_drift', 0.0):.3f} < {summary.get('learned_threshold')} "
                f"(share {share:.3f}; columns past their learned bound: {drifted or 'none'})"
                if learned
                else f"drift share {share:.3f} < {threshold}"
            )
            raise AirflowSkipException(f"no retraining: {line}{perf} for {summary.get('partition')}")
        reason = "drift" if drifted_verdict else "performance" if degraded else "prediction_drift"
        self.log.warning(
            "Retraining is called for (%s): drift share %.3f (line %s), signal %s (learned drift %s, line %s), "
            "performance %s",
            reason, share, threshold, summary.get("signal", "share"), summary.get("learned_drift"),
            summary.get("learned_threshold"), performance,
        )  # fmt: skip
        return {
            "reason": reason,
            "drift_share": share,
            "threshold": threshold,
            "signal": summary.get("signal", "share"),
            "weighted_drift": summary.get("weighted_drift"),
            "weighted_threshold": summary.get("weighted_threshold"),
            "learned_drift": summary.get("learned_drift"),
            "learned_threshold": summary.get("learned_threshold"),
            "partition": summary.get("partition"),
            "report_url": summary.get("report_url"),
            "report_path": summary.get("report_path"),
            "drifted_columns": drifted,
            "performance": performance,
            "recheck": bool(summary.get("recheck") or (performance or {}).get("recheck")),
            "first_recorded_at": summary.get("first_recorded_at"),
            "summary_path": summary.get("summary_path"),
        }


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
