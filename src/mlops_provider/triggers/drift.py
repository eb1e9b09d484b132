"""Trigger that waits, in the triggerer, for the monitoring results of a window (drift, and performance)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

from airflow.triggers.base import BaseTrigger, TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from mlops_provider.triggers.settle import RESUME_SETTLE_SECONDS, settle_delay
from mlops_provider.utils.compat import AirflowFailException, AirflowSkipException

if TYPE_CHECKING:
    from mlops_provider.layout import DriftSummary, PerformanceSummary, RetrainingDecision


def read_result(path: str | None) -> dict[str, Any] | None:
    """The JSON at ``path`` (a local path or an object-storage URL: :mod:`mlops_provider.utils.storage`), or None while
    it is missing or being replaced."""
    from mlops_provider.utils.storage import stored

    if not path:
        return None
    target = stored(path)
    try:
        return json.loads(target.read_text()) if target.is_file() else None
    except (ValueError, FileNotFoundError):
        return None


def decide_retraining(
    summary: DriftSummary,
    performance: PerformanceSummary | None = None,
    *,
    log: Any = None,
    summary_path: str | None = None,
) -> RetrainingDecision:
    """The drift sensor's rule (``mlops_provider.sensors.drift.DriftSensor``), in a task or in its trigger: the
    decision, or AirflowSkipException (no retraining, the reason), or AirflowFailException (a summary without a
    verdict)."""
    import logging

    log = log or logging.getLogger(__name__)
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
            f"drift summary {summary.get('summary_path') or summary_path} has no dataset_drift verdict: it "
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
    log.warning(
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


class DriftResultTrigger(BaseTrigger):
    """Fires when the drift summary at ``summary_path`` (and the performance summary at ``performance_path``,
    when given) exist, with their content; no worker slot is held while waiting.

    :param summary_path: the JSON written by DriftReportOperator.
    :param poll_interval: seconds between checks.
    :param performance_path: the JSON written by ModelPerformanceOperator, or None.
    :param settle_seconds: the earliest it fires after it started (:mod:`mlops_provider.triggers.settle`).
    :param decide: decide here and end the task (the drift sensor started from this trigger, ``start_from_trigger``):
        the decision as the task's XCom (``TaskSuccessEvent``), no retraining (``TaskSkippedEvent``, the reason in
        the trigger's log) or a summary without a verdict (``TaskFailedEvent``), by the sensor's own rule
        (:func:`mlops_provider.sensors.drift.decide_retraining`).
    """

    def __init__(
        self,
        summary_path: str | None = None,
        poll_interval: float = 10.0,
        performance_path: str | None = None,
        settle_seconds: float = RESUME_SETTLE_SECONDS,
        decide: bool = False,
        summary_task_id: str | None = None,
        performance_task_id: str | None = None,
    ) -> None:
        super().__init__()
        self.decide = decide
        self.summary_task_id = summary_task_id
        self.performance_task_id = performance_task_id
        self.summary_path = summary_path
        self.poll_interval = poll_interval
        self.performance_path = performance_path
        self.settle_seconds = settle_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "mlops_provider.triggers.drift.DriftResultTrigger",
            {"summary_path": self.summary_path, "poll_interval": self.poll_interval,
             "performance_path": self.performance_path, "settle_seconds": self.settle_seconds,
             "decide": self.decide, "summary_task_id": self.summary_task_id,
             "performance_task_id": self.performance_task_id},
        )  # fmt: skip

    def _decided(self, summary: dict[str, Any], performance: dict[str, Any] | None) -> TriggerEvent:
        try:
            decision: Any = decide_retraining(
                summary,  # type: ignore[arg-type]  # the summaries as read: dicts of the writers' shapes
                performance,  # type: ignore[arg-type]
                log=self.log,
                summary_path=self.summary_path,
            )
        except AirflowSkipException as skip:
            self.log.info("Skipping the task: %s", skip)
            return TaskSkippedEvent()
        except AirflowFailException as failure:
            self.log.error("Failing the task: %s", failure)
            return TaskFailedEvent()
        return TaskSuccessEvent(xcoms={"return_value": decision})

    def _upstream_paths(self) -> None:
        """``summary_task_id`` / ``performance_task_id``: the paths from those tasks' results (field ``summary_path``)
        in this trigger's run, read with Airflow's ``GetXCom`` (from the triggerer, as ``ingest_run_counts``)."""
        from airflow.sdk.execution_time.xcom import XCom

        ti: Any = self.task_instance  # the runtime task instance the triggerer gives a task's trigger
        if ti is None:
            raise ValueError("summary_task_id/performance_task_id: this trigger runs for no task instance")
        for task_id, attribute in ((self.summary_task_id, "summary_path"),
                                   (self.performance_task_id, "performance_path")):  # fmt: skip
            if task_id and not getattr(self, attribute):
                result = XCom.get_one(run_id=ti.run_id, key="return_value", dag_id=ti.dag_id, task_id=task_id,
                                      map_index=getattr(ti, "map_index", -1))  # fmt: skip
                path = result.get("summary_path") if isinstance(result, dict) else result
                setattr(self, attribute, str(path) if path else None)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        if self.summary_task_id or self.performance_task_id:
            from asgiref.sync import sync_to_async

            await sync_to_async(self._upstream_paths)()
        while True:
            # in a thread: object storage is read with blocking calls (and its client runs its own event loop)
            summary = await asyncio.to_thread(read_result, self.summary_path)
            performance = await asyncio.to_thread(read_result, self.performance_path)
            wants_performance = self.performance_path is not None or self.performance_task_id is not None
            if summary is not None and (not wants_performance or performance is not None):
                await asyncio.sleep(settle_delay(started, time.monotonic(), self.settle_seconds))
                if self.decide:
                    yield self._decided(summary, performance)
                else:
                    yield TriggerEvent({"status": "ready", "summary": summary, "performance": performance})
                return
            await asyncio.sleep(self.poll_interval)
