"""DriftSensor.decide: the drift report's verdict decides (one rule, one place); the performance alarm is the
second reason; a re-check is marked."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from mlops_provider.sensors.drift import DriftSensor

pytestmark = pytest.mark.unit


def summary(share: float, drifted: bool, threshold: float = 0.3, **extra) -> dict:
    return {"drift_share": share, "dataset_drift": drifted, "threshold": threshold, "partition": "2026-11-20",
            "columns": {"a": {"drifted": True}, "b": {"drifted": False}}, **extra}  # fmt: skip


def sensor() -> DriftSensor:
    return DriftSensor(task_id="drift_sensor", summary_path="-")


def test_the_reports_verdict_decides_not_a_second_threshold():
    decision = sensor().decide(summary(0.31, True))
    assert decision["reason"] == "drift" and decision["threshold"] == 0.3 and decision["drifted_columns"] == ["a"]
    # A report made with a higher line says no drift at 0.4: the sensor does not overrule it.
    with pytest.raises(AirflowSkipException, match=r"drift share 0\.400 < 0\.5"):
        sensor().decide(summary(0.4, False, threshold=0.5))


def test_a_summary_without_a_verdict_is_refused_naming_it():
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="has no dataset_drift verdict"):
        sensor().decide({"drift_share": 0.9, "summary_path": "/r/x.json"})


def test_performance_below_the_floor_is_the_second_reason_and_rechecks_are_marked():
    performance = {"status": "scored", "below_floor": True, "metric": "roc_auc", "value": 0.6, "floor": 0.65}
    decision = sensor().decide(summary(0.1, False, recheck=True), performance)
    assert decision["reason"] == "performance" and decision["recheck"] is True
    with pytest.raises(AirflowSkipException, match=r"roc_auc 0\.700 >= floor 0\.65"):
        sensor().decide(summary(0.1, False), {**performance, "below_floor": False, "value": 0.7})


def test_a_value_under_the_floor_without_an_alarm_quotes_the_checks_verdict_not_a_false_comparison():
    verdict = "roc_auc 0.6320, 95% interval [0.5800, 0.6840] (DeLong, 310 rows: 80 positive) vs floor 0.65: ..."
    noise = {"status": "scored", "below_floor": False, "metric": "roc_auc", "value": 0.632, "floor": 0.65,
             "verdict": verdict}  # fmt: skip
    with pytest.raises(AirflowSkipException) as info:
        sensor().decide(summary(0.1, False), noise)
    assert verdict in str(info.value) and ">= floor" not in str(info.value)
    few = {"status": "too_few_labels", "below_floor": False, "reason": "150 labelled holdout rows in the 1-day window"}
    with pytest.raises(AirflowSkipException, match=r"no performance decision \(too_few_labels\): 150 labelled"):
        sensor().decide(summary(0.1, False), few)
