"""The canary analysis trigger carries what the rollout needs back across a deferral."""

from __future__ import annotations

import asyncio

import pytest

from mlops_provider.triggers.canary import CanaryAnalysisTrigger

pytestmark = pytest.mark.unit


def test_the_step_and_baseline_come_back_in_the_event_also_after_serialization() -> None:
    """``dag.test()`` (Airflow 3.3) resumes a deferred task with the event only, not the ``defer(kwargs=...)``: the
    trigger echoes them, and they survive the triggerer's serialization."""
    trigger = CanaryAnalysisTrigger(canary_url="http://127.0.0.1:9", baseline_url="http://127.0.0.1:9", before={},
                                    started_at=0.0, bake_seconds=0.01, poll_seconds=0.01, settle_seconds=0.0,
                                    echo={"index": 1, "baseline": "3"})  # fmt: skip
    path, kwargs = trigger.serialize()
    assert path == "mlops_provider.triggers.canary.CanaryAnalysisTrigger"
    again = CanaryAnalysisTrigger(**kwargs)

    async def first() -> dict:
        async for event in again.run():
            return event.payload
        raise AssertionError("no event")

    event = asyncio.run(first())  # nothing answers on port 9: the baseline is unreachable when the bake is over
    assert event["alarm"] == "baseline_unreachable" and event["echo"] == {"index": 1, "baseline": "3"}
