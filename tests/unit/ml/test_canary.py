"""The canary rules: rollout steps, /metrics parsing, window deltas, quantiles, the distance and every alarm."""

from __future__ import annotations

import math

import pytest

from mlops_provider.ml.canary import (
    Thresholds,
    analyse,
    bucket_shares,
    delta,
    histogram_quantile,
    jensen_shannon_distance,
    resume_index,
    rollout_steps,
    snapshot_from_text,
    step_weights,
)

pytestmark = pytest.mark.unit

INF = math.inf
LATENCY_LE = [0.001, 0.005, 0.01, 0.05, INF]
PRED_LE = [0.25, 0.5, 0.75, 1.0, INF]


def window(ok=100, bad=0, client=0, latency=(0, 50, 100, 100, 100), predictions=(25, 50, 75, 100, 100)):
    """A window: cumulative latency/prediction buckets (must end at the request count)."""
    total = ok + bad
    scale = total / 100 if total else 0
    return {
        "requests": {"2xx": ok, "4xx": client, "5xx": bad},
        "latency": [[le, c * scale] for le, c in zip(LATENCY_LE, latency, strict=True)],
        "predictions": [[le, c * ok / 100] for le, c in zip(PRED_LE, predictions, strict=True)],
    }


LIMITS = Thresholds(min_requests=50)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([5, 25], "last rollout step must be 100"),
        ([25, 5, 100], "must increase"),
        ([0, 100], "1..100"),
        ([5.5, 100], "whole"),
        ([], "last rollout step"),
    ],  # fmt: skip
)
def test_bad_rollout_steps_are_named(steps, message):
    with pytest.raises(ValueError, match=message):
        rollout_steps(steps)


def test_rollout_steps_and_weights():
    assert rollout_steps((5, 25, 100)) == [5, 25, 100]
    assert rollout_steps([100]) == [100]
    assert step_weights("4", "3", 5) == {"3": 95, "4": 5}


def test_thresholds_refuse_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="unknown canary threshold.*max_errors"):
        Thresholds.from_mapping({"max_errors": 1})
    with pytest.raises(ValueError, match="max_latency_ratio"):
        Thresholds(max_latency_ratio=-1)
    with pytest.raises(ValueError, match="min_requests"):
        Thresholds(min_requests=-1)
    assert Thresholds.from_mapping({"min_requests": 7}).min_requests == 7


METRICS = """# HELP mlops_serving_requests_total x
# TYPE mlops_serving_requests_total counter
mlops_serving_requests_total{model="m",status_class="2xx",version="2"} 90.0
mlops_serving_requests_total{model="m",status_class="4xx",version="2"} 3.0
mlops_serving_requests_total{model="m",status_class="5xx",version="2"} 10.0
# TYPE mlops_serving_request_duration_seconds histogram
mlops_serving_request_duration_seconds_bucket{le="0.005",model="m",version="2"} 60.0
mlops_serving_request_duration_seconds_bucket{le="0.01",model="m",version="2"} 100.0
mlops_serving_request_duration_seconds_bucket{le="+Inf",model="m",version="2"} 103.0
mlops_serving_request_duration_seconds_count{model="m",version="2"} 103.0
mlops_serving_request_duration_seconds_sum{model="m",version="2"} 0.5
# TYPE mlops_serving_prediction histogram
mlops_serving_prediction_bucket{le="0.5",model="m",version="2"} 40.0
mlops_serving_prediction_bucket{le="1.0",model="m",version="2"} 90.0
mlops_serving_prediction_bucket{le="+Inf",model="m",version="2"} 90.0
"""


def test_a_snapshot_is_read_from_the_metrics_text():
    snap = snapshot_from_text(METRICS)
    assert snap["requests"] == {"2xx": 90.0, "4xx": 3.0, "5xx": 10.0}
    assert snap["latency"] == [[0.005, 60.0], [0.01, 100.0], [INF, 103.0]]
    assert snap["predictions"] == [[0.5, 40.0], [1.0, 90.0], [INF, 90.0]]


def test_delta_is_the_window_and_a_restart_starts_it_over():
    before = snapshot_from_text(METRICS)
    later = snapshot_from_text(METRICS.replace(" 90.0\n", " 190.0\n", 1))
    assert delta(before, later)["requests"] == {"2xx": 100.0, "4xx": 0.0, "5xx": 0.0}
    restarted = snapshot_from_text(METRICS.replace(" 90.0\n", " 5.0\n", 1))
    assert delta(before, restarted) == restarted  # a counter went down: the backend restarted
    assert delta(None, later) == later


def test_a_snapshot_that_went_through_the_triggers_serialization_still_subtracts():
    """The step's starting snapshot reaches the trigger through Airflow's serialization of its kwargs, which stores
    the +Inf bucket bound as null (the demo's second canary failed on it: TypeError in the triggerer)."""
    import json

    before = snapshot_from_text(METRICS)
    stored = json.loads(json.dumps(before).replace("Infinity", "null"))  # what the trigger got back
    later = snapshot_from_text(METRICS.replace(" 90.0\n", " 190.0\n", 1))
    window = delta(stored, later)
    assert window == delta(before, later)
    assert window["latency"][-1][0] == INF
    restarted = delta(later, stored)  # its counters are lower: the whole (normalised) snapshot is the window
    assert histogram_quantile(0.5, restarted["latency"]) == histogram_quantile(0.5, before["latency"])


def test_histogram_quantile_interpolates_like_prometheus():
    buckets = [[0.001, 0.0], [0.005, 50.0], [0.01, 100.0], [INF, 100.0]]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.005)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.0095)
    assert histogram_quantile(0.25, buckets) == pytest.approx(0.003)
    assert histogram_quantile(0.99, [[0.01, 0.0], [INF, 10.0]]) == 0.01  # in +Inf: the highest finite bound
    assert histogram_quantile(0.5, [[INF, 0.0]]) is None


def test_jensen_shannon_distance_bounds():
    assert jensen_shannon_distance([0.5, 0.5], [0.5, 0.5]) == 0
    assert jensen_shannon_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert 0 < jensen_shannon_distance([0.6, 0.4], [0.5, 0.5]) < 0.1
    with pytest.raises(ValueError, match="different buckets"):
        jensen_shannon_distance([1.0], [0.5, 0.5])
    assert bucket_shares([[0.5, 2.0], [1.0, 4.0], [INF, 4.0]]) == [0.5, 0.5, 0.0]


def test_a_canary_like_its_baseline_passes_when_the_window_is_over():
    verdict = analyse(window(), window(ok=400), LIMITS, window_over=True)
    assert verdict.passed and verdict.final and verdict.alarm is None
    early = analyse(window(), window(ok=400), LIMITS, window_over=False)
    assert early.passed and not early.final  # a pass waits for the whole baking period


def test_the_error_rate_alarm_counts_5xx_not_4xx():
    failing = analyse(window(ok=90, bad=10), window(ok=400), LIMITS, window_over=False)
    assert not failing.passed and failing.final and failing.alarm == "error_rate"  # final before the window ends
    assert failing.canary["error_rate"] == pytest.approx(0.1)
    bad_input = analyse(window(ok=100, client=80), window(ok=400), LIMITS, window_over=True)
    assert bad_input.passed  # 4xx are the client's: they never fail a canary
    assert bad_input.canary["requests"]["4xx"] == 80
    same_as_baseline = analyse(window(ok=98, bad=2), window(ok=392, bad=8), LIMITS, window_over=True)
    assert same_as_baseline.passed  # the baseline fails as often: not the canary's fault


def test_the_latency_alarm_needs_the_ratio_and_the_margin():
    slow = window(latency=(0, 0, 0, 50, 100))  # p95 in the +Inf bucket: 50 ms
    fast = window(ok=400, latency=(0, 50, 100, 100, 100))  # p95 9.5 ms
    verdict = analyse(slow, fast, LIMITS, window_over=True)
    assert verdict.alarm == "latency_p95" and verdict.canary["p95_ms"] > verdict.baseline["p95_ms"] * 1.5
    tolerant = analyse(slow, fast, Thresholds(min_requests=50, min_latency_increase_ms=100), window_over=True)
    assert tolerant.passed  # 40 ms more, under the 100 ms margin


def test_a_constant_prediction_is_a_prediction_shift():
    constant = window(predictions=(0, 0, 0, 100, 100))
    verdict = analyse(constant, window(ok=400), LIMITS, window_over=True)
    assert verdict.alarm == "prediction_shift" and verdict.prediction_shift > 0.3


def test_too_little_traffic_waits_then_fails():
    thin = window(ok=10)
    assert analyse(thin, window(ok=400), LIMITS, window_over=False).final is False
    verdict = analyse(thin, window(ok=400), LIMITS, window_over=True)
    assert not verdict.passed and verdict.alarm == "insufficient_traffic"
    # ... and an alarm on too few requests is not trusted: the window goes on
    assert analyse(window(ok=5, bad=5), window(ok=400), LIMITS, window_over=False).final is False


def test_an_unreachable_canary_fails_at_once():
    verdict = analyse(None, window(ok=400), LIMITS, window_over=False)
    assert verdict.final and not verdict.passed and verdict.alarm == "canary_unreachable"
    assert verdict.as_dict()["thresholds"]["min_requests"] == 50


def test_with_min_requests_0_a_step_without_traffic_passes_with_the_reason_and_traffic_is_still_judged():
    idle = Thresholds(min_requests=0)
    none = window(ok=0)
    assert analyse(none, window(ok=400), idle, window_over=False).final is False  # the window goes on
    verdict = analyse(none, window(ok=400), idle, window_over=True)
    assert verdict.passed and verdict.final and "no traffic to judge" in verdict.reason
    assert analyse(window(ok=3), window(ok=0), idle, window_over=True).passed  # the baseline idle: the same
    early = analyse(window(ok=90, bad=10), window(ok=400), idle, window_over=False)
    assert early.passed and not early.final  # no early verdict on an unknown number of requests
    failing = analyse(window(ok=90, bad=10), window(ok=400), idle, window_over=True)
    assert failing.final and failing.alarm == "error_rate"  # the traffic that came is judged at the end


@pytest.mark.parametrize(
    ("weight", "index"),
    [(0, 0), (5, 0), (10, 1), (25, 1), (60, 2), (100, 2)],
)
def test_a_rollout_resumes_at_the_step_the_canary_is_in_never_below_its_weight(weight, index):
    assert resume_index([5, 25, 100], weight) == index
