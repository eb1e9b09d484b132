"""The late-label check's rules on exact cases: DeLong's AUC variance, the bootstrap interval, pooling windows,
the too-few-labels verdict, and the alarm rules (point / interval, consecutive days)."""

from __future__ import annotations

import datetime as dt
from statistics import NormalDist

import numpy as np
import pytest

from mlops_provider.ml.label_check import (
    bootstrap_interval,
    crosses_floor,
    delong_auc,
    labelled_rows_warning,
    labels_verdict,
    metric_interval,
    performance_alarm,
    prediction_drift_noise,
    suite_min_rows,
    window_days,
)

pytestmark = pytest.mark.unit


def brute_force_delong(y, s):
    """DeLong's variance straight from its definition (O(m n) kernel), as a reference for the midrank form."""
    x, z = s[y == 1], s[y == 0]
    psi = (x[:, None] > z[None, :]).astype(float) + 0.5 * (x[:, None] == z[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return psi.mean(), v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(z)


def test_delong_variance_of_a_two_by_two_case_computed_by_hand():
    # positives 0.9, 0.6; negatives 0.7, 0.2: V10 = [1, 0.5], V01 = [0.5, 1] -> AUC 0.75,
    # var = var([1, .5])/2 + var([.5, 1])/2 = 0.125/2 + 0.125/2 = 0.125
    auc, var = delong_auc([1, 1, 0, 0], [0.9, 0.6, 0.7, 0.2])
    assert auc == 0.75 and var == pytest.approx(0.125, abs=1e-12)


def test_delong_counts_a_tie_as_one_half():
    # positives 0.5, 0.8; negatives 0.5, 0.3: V10 = [0.75, 1], V01 = [0.75, 1] -> AUC 0.875, var 0.03125
    auc, var = delong_auc([1, 1, 0, 0], [0.5, 0.8, 0.5, 0.3])
    assert auc == 0.875 and var == pytest.approx(0.03125, abs=1e-12)


def test_delong_matches_its_definition_and_sklearn_on_a_tied_sample():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(int)
    s = np.round(rng.normal(size=300) + 0.8 * y, 1)  # rounded: many ties
    auc, var = delong_auc(y, s)
    ref_auc, ref_var = brute_force_delong(y, s)
    assert auc == pytest.approx(ref_auc, abs=1e-12) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert var == pytest.approx(ref_var, rel=1e-10)


def test_delong_refuses_one_class():
    with pytest.raises(ValueError, match="needs both classes; got 3 positive and 0 negative"):
        delong_auc([1, 1, 1], [0.1, 0.2, 0.3])


def test_delong_interval_covers_the_true_auc_about_95_percent_of_seeded_samples():
    mu = 0.9  # binormal: positives N(mu, 1), negatives N(0, 1) -> true AUC = Phi(mu / sqrt 2) ~ 0.738
    truth = NormalDist().cdf(mu / 2**0.5)
    rng = np.random.default_rng(7)
    hits, runs = 0, 1000
    for _ in range(runs):
        y = (rng.random(180) < 0.3).astype(int)  # a small day: ~54 positives
        s = rng.normal(size=180) + mu * y
        interval = metric_interval("roc_auc", y, s)
        hits += interval["lower"] <= truth <= interval["upper"]
    assert 0.93 <= hits / runs <= 0.97, hits / runs


def test_the_roc_auc_interval_reports_its_numbers():
    interval = metric_interval("roc_auc", [1, 1, 0, 0], [0.9, 0.6, 0.7, 0.2], level=0.9)
    se = 0.125**0.5
    assert interval["method"] == "DeLong" and interval["level"] == 0.9
    assert interval["se"] == pytest.approx(se)
    assert interval["lower"] == pytest.approx(0.75 - 1.6448536 * se) and interval["upper"] == 1.0  # clipped
    assert (interval["rows"], interval["positives"], interval["negatives"]) == (4, 2, 2)


def test_the_bootstrap_is_seeded_stratified_and_covers_accuracy():
    rng = np.random.default_rng(11)
    y = (rng.random(400) < 0.4).astype(int)
    p = np.clip(0.4 + 0.3 * (y - 0.4) + rng.normal(0, 0.25, 400), 0, 1)
    first = bootstrap_interval("f1", y, p, 0.5, resamples=300, seed=5)
    assert first == bootstrap_interval("f1", y, p, 0.5, resamples=300, seed=5)
    assert first["lower"] < first["value"] < first["upper"]
    assert (first["positives"], first["negatives"]) == (int(y.sum()), int(len(y) - y.sum()))
    assert first["method"] == "stratified bootstrap (300 resamples, seed 5, percentile)"
    # coverage on accuracy: the true accuracy of a rule correct with probability 0.8 is 0.8
    hits, runs = 0, 200
    for _ in range(runs):
        yy = (rng.random(200) < 0.5).astype(int)
        correct = rng.random(200) < 0.8
        pp = np.where(correct, yy, 1 - yy).astype(float)
        interval = bootstrap_interval("accuracy", yy, pp, 0.5, resamples=200, seed=int(rng.integers(1 << 30)))
        hits += interval["lower"] <= 0.8 <= interval["upper"]
    assert 0.9 <= hits / runs <= 0.99, hits / runs


def test_metric_interval_refuses_a_bad_level_and_an_unknown_metric():
    with pytest.raises(ValueError, match="level must be in"):
        metric_interval("roc_auc", [0, 1], [0.1, 0.9], level=1.0)
    with pytest.raises(ValueError, match="no interval for metric 'log_loss'"):
        metric_interval("log_loss", [0, 1], [0.1, 0.9])


def test_the_window_is_the_labelled_day_and_the_days_before_it_oldest_first():
    day = dt.date(2026, 11, 12)
    assert window_days(day, 1) == [day]
    assert window_days(day, 3) == [dt.date(2026, 11, 10), dt.date(2026, 11, 11), day]
    with pytest.raises(ValueError, match="label_window_days must be >= 1"):
        window_days(day, 0)


def test_a_window_too_small_to_decide_says_so_with_its_numbers():
    status, reason = labels_verdict({"2026-11-11": 150, "2026-11-12": None}, 200)
    assert status == "too_few_labels"
    assert reason.startswith("150 labelled holdout rows in the 2-day window 2026-11-11..2026-11-12")
    assert "2026-11-12: not versioned" in reason and "min_labelled_rows 200" in reason
    assert labels_verdict({"2026-11-11": 150, "2026-11-12": 60}, 200) == ("scored", None)
    status, reason = labels_verdict({"2026-11-12": None}, 200)
    assert status == "no_labels" and "no day of the 1-day window" in reason


def test_the_point_rule_alarms_on_a_noise_dip_the_interval_rule_does_not():
    # the demo's case: 0.632 under the floor 0.65 on a few hundred rows, interval reaching over the floor
    assert crosses_floor(0.632, 0.58, 0.684, 0.65, "point") is True
    assert crosses_floor(0.632, 0.58, 0.684, 0.65, "interval") is False
    assert crosses_floor(0.60, 0.57, 0.63, 0.65, "interval") is True
    with pytest.raises(ValueError, match="performance_alarm must be one of point, interval"):
        crosses_floor(0.6, 0.5, 0.7, 0.65, "mean")


def test_consecutive_days_need_an_unbroken_run_of_crossings():
    assert performance_alarm(True, [], 1) == (True, "the floor is crossed on 1 consecutive day(s) (needed 1)")
    assert performance_alarm(True, [True], 2)[0] is True
    assert performance_alarm(True, [True, False, True], 3) == (
        False, "the floor is crossed on 2 consecutive day(s), under the 3 needed",
    )  # fmt: skip
    assert performance_alarm(True, [None, True], 2)[0] is False  # a day without a decision breaks the run
    assert performance_alarm(False, [True, True], 2) == (False, "today does not cross the floor")
    with pytest.raises(ValueError, match="consecutive_days must be >= 1"):
        performance_alarm(True, [], 0)


def test_the_expected_labelled_rows_come_from_the_suites_minimum_row_count():
    suite = {"expectations": [{"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 900}}]}
    assert suite_min_rows(suite) == 900 and suite_min_rows({"expectations": []}) is None
    # the case: ~900 rows a day, 20 % holdout -> ~180 a day: one day is too few, two are enough
    warning = labelled_rows_warning(900, 0.2, 1, 200)
    assert warning is not None and "~180 labelled holdout rows per 1-day label window" in warning
    assert "label_window_days to 2 or more" in warning
    assert labelled_rows_warning(900, 0.2, 2, 200) is None


def test_the_prediction_drift_noise_bound_shrinks_with_the_day_and_is_over_0_1_at_150_rows():
    from mlops_provider.ml.drift_signals import prediction_drift

    reference = np.random.default_rng(0).beta(2, 5, 4000)
    small, large = prediction_drift_noise(reference, 150), prediction_drift_noise(reference, 2000)
    assert small == prediction_drift_noise(reference, 150)  # seeded
    assert small["bound"] > 0.1 > large["bound"] and (small["rows"], small["level"]) == (150, 0.95)
    # calm days of 150 rows drawn from the reference: many cross the 0.1 line, about 5 % the bound
    rng = np.random.default_rng(4)
    scores = [prediction_drift(reference, rng.choice(reference, 150), 0.1, 0.5)["score"] for _ in range(400)]
    over_line, over_bound = np.mean(np.array(scores) >= 0.1), np.mean(np.array(scores) >= small["bound"])
    assert over_line > 0.25 and 0.02 <= over_bound <= 0.09, (over_line, over_bound)
    with pytest.raises(ValueError, match="needs reference predictions"):
        prediction_drift_noise([], 10)


def test_the_bootstrap_metrics_are_the_training_metrics():
    """The bootstrap's own thresholded metrics (fast, per resample) give what the training metrics give
    (``scoring.classification_metrics``, scikit-learn's) on the same labels and probabilities."""
    import numpy as np

    from mlops_provider.ml.label_check import bootstrap_interval
    from mlops_provider.ml.scoring import classification_metrics

    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 500)
    proba = np.clip(0.35 * y + rng.uniform(0, 0.65, 500), 0, 1)
    expected = classification_metrics(y, proba, threshold=0.5)
    for metric in ("accuracy", "precision", "recall", "f1"):
        got = bootstrap_interval(metric, y, proba, threshold=0.5, resamples=5)["value"]
        assert got == pytest.approx(expected[metric]), metric
