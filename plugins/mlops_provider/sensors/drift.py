"""Drift sensor: lets the retraining trigger go ahead only when the drift result of its window crossed the line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowSkipException

from mlops_provider.triggers.drift import DriftResultTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class DriftSensor(BaseSensorOperator):
    """Wait for the drift summary of a window, then decide.

    Succeeds (the retraining trigger goes ahead) when the share of drifted columns is at least
    ``drift_share_threshold``; otherwise the path ends as skipped (no drift is not a failure). Deferrable by
    default: the wait happens in the triggerer (DriftResultTrigger), no worker slot is held. With
    ``deferrable=False`` it pokes (``mode="poke"`` or ``"reschedule"``).

    :param summary_path: the drift summary JSON of the window (templated).
    :param drift_share_threshold: share of drifted columns that calls for retraining.

    XCom (return value): ``{"reason": "drift", "drift_share", "threshold", "partition", "report_url",
    "drifted_columns"}``.
    """

    template_fields: Sequence[str] = ("summary_path",)

    def __init__(
        self,
        *,
        summary_path: str,
        drift_share_threshold: float = 0.3,
        deferrable: bool = True,
        poll_interval: float = 10.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", timedelta(hours=6).total_seconds())
        super().__init__(poke_interval=poll_interval, **kwargs)
        self.summary_path = summary_path
        self.drift_share_threshold = drift_share_threshold
        self.deferrable = deferrable
        self.poll_interval = poll_interval

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=DriftResultTrigger(summary_path=str(self.summary_path), poll_interval=self.poll_interval),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        path = Path(self.summary_path)
        if not path.is_file():
            return False
        return PokeReturnValue(is_done=True, xcom_value=self.decide(json.loads(path.read_text())))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        return self.decide(event["summary"])

    def decide(self, summary: dict[str, Any]) -> dict[str, Any]:
        share = float(summary["drift_share"])
        drifted = sorted(name for name, col in summary.get("columns", {}).items() if col.get("drifted"))
        if share < self.drift_share_threshold:
            raise AirflowSkipException(
                f"no retraining: drift share {share:.3f} < {self.drift_share_threshold} for {summary.get('partition')}"
            )
        self.log.warning("Drift share %.3f >= %s: retraining is called for", share, self.drift_share_threshold)
        return {
            "reason": "drift",
            "drift_share": share,
            "threshold": self.drift_share_threshold,
            "partition": summary.get("partition"),
            "report_url": summary.get("report_url"),
            "report_path": summary.get("report_path"),
            "drifted_columns": drifted,
        }
