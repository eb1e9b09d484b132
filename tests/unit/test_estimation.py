"""Confidence-based performance estimation: exact on calibrated probabilities in expectation, and checked against
the realised metric on labels drawn from those probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from mlops_provider.estimation import estimated_metric, estimated_roc_auc, expected_confusion

pytestmark = pytest.mark.unit


def test_the_expected_confusion_matrix_sums_the_probability_mass():
    c = expected_confusion([0.9, 0.8, 0.2, 0.1], 0.5)
    assert c == pytest.approx({"tp": 1.7, "fp": 0.3, "fn": 0.3, "tn": 1.7})


def test_certain_predictions_estimate_perfectly_and_no_mass_gives_none():
    assert estimated_roc_auc([1.0, 1.0, 0.0, 0.0]) == pytest.approx(1.0)
    assert estimated_roc_auc([1.0, 1.0]) is None  # no expected negative
    assert estimated_metric([1.0, 0.0], "accuracy", 0.5) == pytest.approx(1.0)


def test_estimates_track_the_realised_metrics_of_labels_drawn_from_calibrated_probabilities():
    rng = np.random.default_rng(7)
    proba = rng.beta(0.6, 2.5, size=20_000)  # a skewed, realistic score distribution
    labels = (rng.uniform(size=proba.size) < proba).astype(int)  # calibrated by construction
    assert estimated_metric(proba, "roc_auc", 0.5) == pytest.approx(roc_auc_score(labels, proba), abs=0.01)
    predicted = (proba >= 0.4).astype(int)
    assert estimated_metric(proba, "accuracy", 0.4) == pytest.approx(accuracy_score(labels, predicted), abs=0.01)
    assert estimated_metric(proba, "f1", 0.4) == pytest.approx(f1_score(labels, predicted), abs=0.02)


def test_an_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="cannot be estimated"):
        estimated_metric([0.5], "log_loss", 0.5)
