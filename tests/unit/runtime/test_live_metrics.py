"""The live numbers of a window from two reads of a backend's /metrics, and the PromQL the dashboard shares."""

from __future__ import annotations

import pytest

from mlops_provider.runtime import live_metrics as q

pytestmark = pytest.mark.unit


def snap(ok: float, bad: float, err: float, fast: float, slow: float) -> dict:
    total = fast + slow
    return {"requests": {"2xx": ok, "4xx": bad, "5xx": err},
            "latency": [[0.01, fast], [0.1, total], [float("inf"), total]],
            "predictions": [[0.5, 0.0], [1.0, ok], [float("inf"), ok]]}  # fmt: skip


def test_window_numbers_are_deltas_over_the_seconds_between_reads():
    numbers = q.window_numbers(snap(100, 5, 0, 90, 15), snap(290, 15, 10, 280, 35), 10.0)
    assert numbers["requests"] == 210 and numbers["rate"] == 21.0 and numbers["bad_input_rate"] == 1.0
    assert numbers["error_rate"] == pytest.approx(10 / 200)  # 4xx are not judged
    assert 10 < numbers["p95_ms"] < 100


def test_without_an_earlier_read_or_after_a_restart_the_window_is_the_whole_life_without_a_rate():
    whole = q.window_numbers(None, snap(10, 0, 0, 10, 0), None)
    assert whole["requests"] == 10 and whole["rate"] is None
    restarted = q.window_numbers(snap(100, 0, 0, 100, 0), snap(10, 0, 0, 10, 0), 5.0)
    assert restarted["requests"] == 10 and restarted["rate"] is None


def test_the_window_starts_at_the_oldest_read_inside_it():
    history = [{"at": 100.0}, {"at": 150.0}, {"at": 190.0}]
    assert q.window_from_history(history, 200.0, 60) == {"at": 150.0}
    assert q.window_from_history(history, 200.0, 300) == {"at": 100.0}
    assert q.window_from_history(history, 200.0, 5) is None
    assert q.window_from_history([{"at": 200.0}], 200.0, 60) is None  # not the read of now itself


def test_queries_select_the_model_and_count_errors_among_judged_requests():
    error = q.query_error_rate("churn", "1m")
    assert 'status_class="5xx"' in error and 'status_class!="4xx"' in error and error.count('model="churn"') == 2
    assert q.query_latency("churn", "5m", 0.95).startswith("histogram_quantile(0.95, sum by (version, le)")
    assert 'component="proxy"' in q.query_proxy_latency("churn", "1m", 0.99)
    assert q.query_weight("churn") == 'max by (version) (mlops_serving_traffic_weight{model="churn"})'
