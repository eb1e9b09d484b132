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


def _frames(rows: int, shift: float, seed: int):
    """Two frames shaped like a day of the demo: numerical (continuous, counts), categorical (strings, 0/1)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)

    def frame(n: int, delta: float) -> pd.DataFrame:
        return pd.DataFrame({
            "tenure": rng.normal(delta, 1, n), "tickets": rng.integers(0, 50, n).astype(float),
            "charges": rng.exponential(1 + delta, n), "plan": rng.choice(["basic", "plus", "pro"], n),
            "promo": rng.choice([0, 1], n),
        })  # fmt: skip

    return frame(rows, 0.0), frame(rows, shift)


def _report_scores(reference, current, numerical, categorical, share, methods, thresholds):
    """The drift share and columns as Evidently's Report with DataDriftPreset gives them (the HTML's numbers)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    preset = DataDriftPreset(
        drift_share=share, per_column_method=methods or None, per_column_threshold=thresholds or None
    )
    snapshot = Report([preset]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    columns, value = {}, None
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("DriftedColumnsCount"):
            value = float(metric["value"]["share"])
        elif config["type"].endswith("ValueDrift"):
            columns[config["column"]] = (config["method"], float(metric["value"]), float(config["threshold"]))
    return value, columns


@pytest.mark.parametrize(
    ("rows", "shift", "methods", "thresholds", "holes"),
    [
        (1000, 0.0, {}, {}, False),  # a calm demo-sized day: K-S, chi-square, Z-test
        (1000, 0.3, {}, {}, False),  # a drifted one
        (300, 0.5, {"tenure": "psi"}, {"tenure": 0.2}, False),  # a spec's per-column method and threshold
        (2000, 0.05, {"plan": "jensenshannon", "tickets": "wasserstein"}, {"tickets": 0.05}, False),
        (5000, 0.1, {}, {"plan": 0.05}, False),  # large samples: Wasserstein, Jensen-Shannon
        (800, 0.2, {}, {}, True),  # missing values and a category the reference never saw
    ],
)
def test_the_metrics_only_drift_scores_equal_the_reports(rows, shift, methods, thresholds, holes):
    """A day's verdict is computed without building the Report (its widgets are most of a calm day's check, issue
    31); the numbers must be the ones the HTML report shows for the same frames and settings."""
    pytest.importorskip("evidently")
    from mlops_provider.operators.evidently import drift_scores

    reference, current = _frames(rows, shift, seed=rows)
    if holes:
        current.loc[::7, "tenure"] = float("nan")
        current.loc[::5, "plan"] = None
        current.loc[::9, "plan"] = "enterprise"
        reference.loc[::11, "charges"] = float("nan")
    numerical, categorical = ["tenure", "tickets", "charges"], ["plan", "promo"]
    share, columns = drift_scores(reference, current, numerical, categorical, 0.3, methods, thresholds)
    expected_share, expected = _report_scores(reference, current, numerical, categorical, 0.3, methods, thresholds)
    assert share == expected_share
    assert {name: (c["method"], c["score"], c["threshold"]) for name, c in columns.items()} == expected
    assert all(c["drifted"] == column_drifted(c["method"], c["score"], c["threshold"]) for c in columns.values())
    assert list(columns) == numerical + categorical
