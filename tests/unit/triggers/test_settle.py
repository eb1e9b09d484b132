"""The pause before a trigger fires (mlops_provider.triggers.settle): against the scheduler race of Airflow 3.3
that fails a task resumed within seconds of deferring (apache/airflow#72716)."""

from __future__ import annotations

import pytest

from mlops_provider.triggers.drift import DriftResultTrigger
from mlops_provider.triggers.dvc import DvcTagTrigger
from mlops_provider.triggers.settle import RESUME_SETTLE_SECONDS, settle_delay

pytestmark = pytest.mark.unit


def test_a_result_found_early_waits_out_the_settle_time_and_a_late_one_fires_at_once() -> None:
    assert settle_delay(started=100.0, now=101.5, settle_seconds=10.0) == 8.5
    assert settle_delay(started=100.0, now=130.0, settle_seconds=10.0) == 0.0
    assert settle_delay(started=100.0, now=100.0, settle_seconds=0.0) == 0.0


def test_both_triggers_settle_by_default_and_keep_their_setting_across_serialization() -> None:
    drift = DriftResultTrigger(summary_path="/r/s.json")
    tag = DvcTagTrigger("/w", "partition/d/1", settle_seconds=2.5)
    assert drift.settle_seconds == RESUME_SETTLE_SECONDS >= 5  # past the ~5 s a deferring worker needs to exit
    assert DriftResultTrigger(**drift.serialize()[1]).settle_seconds == RESUME_SETTLE_SECONDS
    assert DvcTagTrigger(**tag.serialize()[1]).settle_seconds == 2.5
