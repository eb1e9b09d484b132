"""Importance-weighted drift: a column the model ignores does not count, one it relies on counts by its weight;
without importances the plain share decides and says so."""

from __future__ import annotations

import pytest

from mlops_provider.ml.drift_signals import decide_signal, normalized_importances, weighted_drift

pytestmark = pytest.mark.unit

COLUMNS = {
    "amount": {"drifted": True},
    "hour": {"drifted": True},
    "weather": {"drifted": True},
    "channel": {"drifted": False},
}


def test_weights_are_the_importances_of_the_checked_columns_normalized():
    weights = normalized_importances({"amount": 6.0, "channel": 2.0, "hour": 2.0, "unchecked": 90.0}, list(COLUMNS))
    assert weights == {"amount": 0.6, "hour": 0.2, "weather": 0.0, "channel": 0.2}
    assert sum(weights.values()) == pytest.approx(1.0)


def test_bad_importances_count_zero():
    weights = normalized_importances(
        {"amount": -1, "hour": float("nan"), "weather": "high", "channel": 3}, ["amount", "hour", "weather", "channel"]
    )
    assert weights == {"amount": 0.0, "hour": 0.0, "weather": 0.0, "channel": 1.0}
    assert normalized_importances({}, ["a", "b"]) == {"a": 0.0, "b": 0.0}


def test_drift_in_columns_the_model_ignores_weighs_nothing():
    # Three of four columns drift (share 0.75), but the model relies on channel, which did not.
    weights = normalized_importances({"channel": 9.0, "weather": 1.0}, list(COLUMNS))
    assert weighted_drift(COLUMNS, weights) == pytest.approx(0.1)
    # The same drift where the model relies on amount: most of its importance moved.
    weights = normalized_importances({"amount": 8.0, "channel": 2.0}, list(COLUMNS))
    assert weighted_drift(COLUMNS, weights) == pytest.approx(0.8)


def test_the_chosen_signal_decides_and_a_missing_importance_falls_back_to_the_share():
    assert decide_signal("weighted", 0.75, 0.3, 0.1, 0.3) == {
        "signal": "weighted",
        "dataset_drift": False,
        "signal_note": None,
    }
    assert decide_signal("share", 0.75, 0.3, 0.1, 0.3)["dataset_drift"] is True
    fallback = decide_signal("weighted", 0.75, 0.3, None, 0.3)
    assert (
        fallback["signal"] == "share"
        and fallback["dataset_drift"] is True
        and "no feature importances" in fallback["signal_note"]
    )
    with pytest.raises(ValueError, match="drift signal must be one of"):
        decide_signal("both", 0.1, 0.3, 0.1, 0.3)


def test_prediction_drift_compares_the_distributions_of_predicted_probabilities():
    import numpy as np

    from mlops_provider.ml.drift_signals import prediction_drift

    rng = np.random.default_rng(3)
    reference = rng.beta(1, 6, size=5000)
    same = prediction_drift(reference, rng.beta(1, 6, size=3000), 0.1, 0.5)
    assert same["drifted"] is False and same["score"] < 0.1
    shifted = prediction_drift(reference, rng.beta(2, 3, size=3000), 0.1, 0.5)  # the model predicts far more churn
    assert shifted["drifted"] is True and shifted["positive_rate_current"] > shifted["positive_rate_reference"] + 0.1
    with pytest.raises(ValueError, match="predictions on both sides"):
        prediction_drift([], [0.5], 0.1, 0.5)
