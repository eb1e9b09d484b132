"""Trigger that waits, in the triggerer, for a drift summary file to appear."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class DriftResultTrigger(BaseTrigger):
    """Fires when the drift summary at ``summary_path`` exists, with its content (no worker slot is held).

    :param summary_path: the JSON written by DriftReportOperator.
    :param poll_interval: seconds between checks.
    """

    def __init__(self, summary_path: str, poll_interval: float = 10.0) -> None:
        super().__init__()
        self.summary_path = summary_path
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "mlops_provider.triggers.drift.DriftResultTrigger",
            {"summary_path": self.summary_path, "poll_interval": self.poll_interval},
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        path = Path(self.summary_path)
        while True:
            if path.is_file():
                try:
                    summary = json.loads(path.read_text())
                except ValueError:  # being replaced right now; try again
                    summary = None
                if summary is not None:
                    yield TriggerEvent({"status": "ready", "summary": summary})
                    return
            await asyncio.sleep(self.poll_interval)
