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


@pytest.mark.parametrize(
    ("dataset_drift", "setting", "rendered"),
    [
        (False, None, False),  # a calm day: numbers only
        (False, "", False),
        (False, "drifted", False),
        (True, None, True),  # a flagged day has its report
        (True, "drifted", True),
        (False, "always", True),  # on request
        (False, " Always ", True),
    ],
)
def test_the_html_report_is_rendered_on_a_flagged_day_or_on_request(dataset_drift, setting, rendered):
    from mlops_provider.operators.evidently import renders_html

    assert renders_html(dataset_drift, setting) is rendered


def test_a_bad_html_setting_is_named():
    from mlops_provider.operators.evidently import HTML_ENV, renders_html

    with pytest.raises(ValueError, match=f"{HTML_ENV} must be one of .*'sometimes'"):
        renders_html(True, "sometimes")


def test_current_is_templated_checked_once_rendered_and_a_literal_is_checked_at_once():
    """The loop's drift-monitoring DAG passes its param ``current`` as a template: accepted when the operator is built,
    rendered per run, and a rendered value outside served/ingested fails the task naming it (before any read)."""
    from mlops_provider.operators.evidently import DriftReportOperator
    from mlops_provider.utils.compat import AirflowFailException

    def build(current: str) -> DriftReportOperator:
        return DriftReportOperator(task_id="drift_report", dataset="d", model_name="m", numerical_columns=["x"],
                                   categorical_columns=[], partition="2026-12-06", current=current)  # fmt: skip

    with pytest.raises(ValueError, match="current must be one of"):
        build("live")
    op = build("{{ params.current }}")
    assert "current" in op.template_fields
    op.render_template_fields({"params": {"current": "served"}})
    assert op.current == "served"
    bad = build("{{ params.current }}")
    bad.render_template_fields({"params": {"current": "live"}})
    with pytest.raises(AirflowFailException, match="'live'.*must be one of ingested, served"):
        bad.execute({})
