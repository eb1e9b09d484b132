"""Trigger of one canary step: it watches the canary and the baseline backends over the step's baking period.

Every ``poll_seconds`` it reads both backends' ``/metrics``, takes the deltas since the step started (the
snapshots the operator took when it set the step's weights) and judges them with
:func:`mlops_provider.ml.canary.analyse`. It fires with the verdict (``Verdict.as_dict()`` plus ``elapsed``) as
soon as the verdict is final: an alarm with enough traffic (a fast rollback), the canary's metrics unreadable twice
in a row (its backend died), or the baking period over (pass, or ``insufficient_traffic``; ``baseline_unreachable``
when the baseline's metrics were unreadable twice in a row by then: one slow read of a busy backend, each read
bounded to 5 s, is read again). It never fires before
``settle_seconds`` after it started (:mod:`mlops_provider.triggers.settle`).

The window is anchored on ``started_at`` (wall clock, from the operator), so a triggerer restart resumes the same
window instead of starting a new one.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from mlops_provider.ml.canary import Thresholds, analyse, delta, snapshot_from_text
from mlops_provider.triggers.settle import RESUME_SETTLE_SECONDS, settle_delay

#: consecutive failed reads of the canary's /metrics that count as "canary unreachable"
UNREACHABLE_AFTER = 2


def read_snapshot(url: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """The snapshot of the backend at ``url`` (its ``/metrics``), None when it does not answer."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=timeout) as response:
            return snapshot_from_text(response.read().decode())
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
        return None


class CanaryAnalysisTrigger(BaseTrigger):
    """Judge one canary step live (see the module's docstring).

    :param canary_url: the canary backend's base URL.
    :param baseline_url: the baseline backend's base URL.
    :param before: ``{"canary": snapshot, "baseline": snapshot}`` taken when the step's weights were set.
    :param started_at: wall-clock seconds (epoch) when the step started.
    :param bake_seconds: the baking period.
    :param poll_seconds: seconds between two reads.
    :param thresholds: :class:`~mlops_provider.ml.canary.Thresholds` as a mapping.
    :param settle_seconds: the earliest it fires after it started (0 when the operator runs it inline).
    :param echo: JSON the operator needs back with the verdict (its step and baseline), returned under ``echo`` in
        every event: Airflow's triggerer keeps ``defer(kwargs=...)`` for the resumed method, ``dag.test()``'s
        inline trigger runner (3.3) replaces them with the event, so the event carries them.
    """

    def __init__(
        self,
        *,
        canary_url: str,
        baseline_url: str,
        before: dict[str, Any],
        started_at: float,
        bake_seconds: float,
        poll_seconds: float = 2.0,
        thresholds: dict[str, Any] | None = None,
        settle_seconds: float = RESUME_SETTLE_SECONDS,
        echo: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.echo = dict(echo or {})
        self.canary_url = canary_url
        self.baseline_url = baseline_url
        self.before = before
        self.started_at = started_at
        self.bake_seconds = bake_seconds
        self.poll_seconds = poll_seconds
        self.thresholds = dict(thresholds or {})
        self.settle_seconds = settle_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "mlops_provider.triggers.canary.CanaryAnalysisTrigger", {
            "canary_url": self.canary_url,
            "baseline_url": self.baseline_url,
            "before": self.before,
            "started_at": self.started_at,
            "bake_seconds": self.bake_seconds,
            "poll_seconds": self.poll_seconds,
            "thresholds": self.thresholds,
            "settle_seconds": self.settle_seconds,
            "echo": self.echo,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        thresholds = Thresholds.from_mapping(self.thresholds)
        began = time.monotonic()
        failures = baseline_failures = 0
        while True:
            await asyncio.sleep(self.poll_seconds)
            canary, baseline = await asyncio.gather(
                asyncio.to_thread(read_snapshot, self.canary_url), asyncio.to_thread(read_snapshot, self.baseline_url)
            )
            failures = failures + 1 if canary is None else 0
            baseline_failures = baseline_failures + 1 if baseline is None else 0
            elapsed = time.time() - self.started_at
            window_over = elapsed >= self.bake_seconds
            if baseline is None:
                if window_over and baseline_failures >= UNREACHABLE_AFTER:
                    yield TriggerEvent({"passed": False, "final": True, "alarm": "baseline_unreachable",
                                        "reason": "the baseline's /metrics could not be read", "elapsed": elapsed,
                                        "decided_at": time.time(), "echo": self.echo})  # fmt: skip
                    return
                continue
            if canary is None and failures < UNREACHABLE_AFTER:
                continue
            verdict = analyse(
                None if canary is None else delta(self.before.get("canary"), canary),
                delta(self.before.get("baseline"), baseline),
                thresholds,
                window_over=window_over,
            )
            if verdict.final:
                await asyncio.sleep(settle_delay(began, time.monotonic(), self.settle_seconds))
                yield TriggerEvent({**verdict.as_dict(), "elapsed": round(elapsed, 3), "decided_at": time.time(),
                                    "echo": self.echo})  # fmt: skip
                return
