"""Trigger that waits, in the triggerer, for the monitoring results of a window (drift, and performance)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from mlops_provider.triggers.settle import RESUME_SETTLE_SECONDS, settle_delay


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


class DriftResultTrigger(BaseTrigger):
    """Fires when the drift summary at ``summary_path`` (and the performance summary at ``performance_path``,
    when given) exist, with their content; no worker slot is held while waiting.

    :param summary_path: the JSON written by DriftReportOperator.
    :param poll_interval: seconds between checks.
    :param performance_path: the JSON written by ModelPerformanceOperator, or None.
    :param settle_seconds: the earliest it fires after it started (:mod:`mlops_provider.triggers.settle`).
    """

    def __init__(
        self,
        summary_path: str,
        poll_interval: float = 10.0,
        performance_path: str | None = None,
        settle_seconds: float = RESUME_SETTLE_SECONDS,
    ) -> None:
        super().__init__()
        self.summary_path = summary_path
        self.poll_interval = poll_interval
        self.performance_path = performance_path
        self.settle_seconds = settle_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "mlops_provider.triggers.drift.DriftResultTrigger",
            {"summary_path": self.summary_path, "poll_interval": self.poll_interval,
             "performance_path": self.performance_path, "settle_seconds": self.settle_seconds},
        )  # fmt: skip

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        while True:
            # in a thread: object storage is read with blocking calls (and its client runs its own event loop)
            summary = await asyncio.to_thread(read_result, self.summary_path)
            performance = await asyncio.to_thread(read_result, self.performance_path)
            if summary is not None and (self.performance_path is None or performance is not None):
                await asyncio.sleep(settle_delay(started, time.monotonic(), self.settle_seconds))
                yield TriggerEvent({"status": "ready", "summary": summary, "performance": performance})
                return
            await asyncio.sleep(self.poll_interval)
