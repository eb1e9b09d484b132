"""Which per-column drift scores count as drifted."""

from __future__ import annotations

import pytest

from mlops_provider.operators.evidently import column_drifted

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("method", "score", "threshold", "drifted"),
    [
        ("Wasserstein distance (normed)", 0.1, 0.1, True),
        ("Wasserstein distance (normed)", 0.09, 0.1, False),
        ("Jensen-Shannon distance", 0.5, 0.1, True),
        ("K-S p_value", 0.01, 0.05, True),
        ("chi-square p_value", 0.2, 0.05, False),
    ],
)
def test_distances_drift_at_or_above_the_threshold_p_values_below_it(method, score, threshold, drifted):
    assert column_drifted(method, score, threshold) is drifted
