"""Holdout curves agree with scikit-learn's metrics and stay small."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from mlops_provider.ml.curves import holdout_curves

pytestmark = pytest.mark.unit


def test_curves_match_scikit_learn_and_count_the_confusion() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    p = np.clip(y * 0.3 + rng.random(5000) * 0.7, 0, 1).round(3)  # ties on purpose
    curves = holdout_curves(y, p, threshold=0.5, max_points=200)
    assert curves["roc"]["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-6)
    assert curves["pr"]["average_precision"] == pytest.approx(average_precision_score(y, p), abs=1e-6)
    assert len(curves["roc"]["fpr"]) <= 200 and curves["roc"]["fpr"][0] == 0 and curves["roc"]["tpr"][-1] == 1
    c = curves["confusion"]
    assert c["tp"] == int(((p >= 0.5) & (y == 1)).sum()) and c["tn"] == int(((p < 0.5) & (y == 0)).sum())
    assert c["tp"] + c["fp"] + c["tn"] + c["fn"] == curves["rows"] == 5000 and curves["positives"] == y.sum()
    cal = curves["calibration"]
    assert sum(cal["count"]) == 5000 and all(0 <= v <= 1 for v in cal["predicted"] + cal["observed"])


def test_one_class_holdout_and_bad_shapes() -> None:
    only_negatives = holdout_curves([0, 0, 0], [0.1, 0.2, 0.3])
    assert np.isnan(only_negatives["roc"]["auc"]) and only_negatives["confusion"]["tn"] == 3
    with pytest.raises(ValueError, match="two equal 1-D arrays"):
        holdout_curves([0, 1], [0.5])
