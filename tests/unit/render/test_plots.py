"""The plots of the run, ledger and health pages: what each draws, and that text in them is escaped."""

from __future__ import annotations

import pytest

from mlops_provider.ml.curves import holdout_curves
from mlops_provider.render import plots
from mlops_provider.web.health import heatmap_cells
from mlops_provider.web.records import render_ledger, run_plots

pytestmark = pytest.mark.unit

MARKUP = "<script>alert(1)</script>"


def test_run_page_plots_draw_the_curves_and_the_importances() -> None:
    curves = holdout_curves([0, 1, 0, 1, 1, 0, 1, 0], [0.1, 0.9, 0.4, 0.7, 0.6, 0.2, 0.35, 0.55])
    svgs = [str(s) for s in run_plots(curves, {"tenure_days": 0.4, MARKUP: 0.1, "note": "not a number"})]
    kinds = ["roc", "pr", "calibration", "confusion", "importance"]
    assert [s.split('class="plot ', 1)[1].split('"', 1)[0] for s in svgs] == kinds
    assert all(s.startswith("<svg") and "<script" not in s for s in svgs)
    assert "&lt;script&gt;" in svgs[-1] and "tenure_days" in svgs[-1]
    assert "ROC (AUC 0.875, 8 holdout rows)" in svgs[0]
    assert svgs[3].count("<rect") == 5  # background and four cells
    assert run_plots(None, None) == []


def test_the_ledger_page_compares_both_models_per_metric_and_segment() -> None:
    ledger = {
        "model_name": "churn", "challenger_version": "3", "champion_version": "2", "decision": "reject",
        "reason": "1 check(s) failed", "path": "/tmp/none.json",
        "challenger_metrics": {"overall": {"roc_auc": 0.71, "log_loss": 2.3}},
        "champion_metrics": {"overall": {"roc_auc": 0.70, "log_loss": 2.1}},
        "checks": [{"check": f"segment:{MARKUP}", "metric": "roc_auc", "champion": 0.7, "challenger": 0.6,
                    "delta": -0.1, "threshold": 0.05, "passed": False}],
        "human_approvals": [{"decision": "reject", "by": "ana", "at": "2026-11-28T09:00:00+00:00", "note": MARKUP}],
        "evaluation_data": {"path": "data/churn/training_set.parquet", "rev": "abc", "rows": 10},
    }  # fmt: skip
    from unittest import mock

    with mock.patch(
        "mlops_provider.links.extra_links.report_url", return_value="/mlops/reports/ledgers/churn/v3/a.json"
    ):
        page = render_ledger(ledger)
    assert page.count('class="plot metrics"') == 1 and page.count('class="plot segments"') == 1
    assert "roc_auc: champion 0.7000" in page and "log_loss" not in page.split('class="plot metrics"')[1][:2000]
    assert "<script>" not in page and page.count("&lt;script&gt;") >= 3
    assert "<td>ana</td>" in page


def test_the_health_heat_map_is_day_by_column() -> None:
    drift = [
        {"day": "2026-11-01", "columns": {"plan": {"score": 0.02, "drifted": False, "method": "psi"},
                                          MARKUP: {"score": 0.4, "drifted": True, "method": "psi"}}},
        {"day": "2026-11-02", "columns": {"plan": {"score": 0.3, "drifted": True, "method": "psi"}}},
        {"day": "2026-11-03"},
    ]  # fmt: skip
    cells = heatmap_cells(drift)
    assert cells is not None and cells[0] == ["2026-11-01", "2026-11-02"]  # the day without columns has no cells
    svg = str(plots.svg(plots.drift_heatmap(*cells)))
    assert svg.count('stroke="#c0392b"') == 2  # the two drifted cells
    assert "2026-11-02 plan: psi 0.3 (drifted)" in svg and "&lt;script&gt;" in svg and "<script" not in svg
    assert heatmap_cells([{"day": "2026-11-01"}]) is None
    assert str(plots.svg(plots.drift_heatmap([], [], {}))).startswith("<svg")


def test_the_health_plot_draws_each_series_on_the_shared_figure() -> None:
    drift = [{"day": "2026-11-01", "drift_share": 0.5, "dataset_drift": True, "reference_version": MARKUP}]
    interval = {"lower": 0.6, "upper": 0.7, "level": 0.95, "method": "DeLong", "rows": 10}
    performance = [{"day": "2026-11-01", "metric": "roc_auc", "value": 0.65, "interval": interval}]
    estimated = [{"day": "2026-11-02", "metric": "roc_auc", "value": 0.74}]
    predictions = [{"day": "2026-11-03", "score": 2.5, "drifted": True, "positive_rate": 0.3,
                    "positive_rate_holdout": 0.1, "noise_bound": 0.2}]  # fmt: skip
    fig = plots.monitoring_by_day(drift, performance, 0.3, estimated, predictions)
    assert fig is not None and (fig["width"], fig["height"], fig["heading"]) == (360, 220, False)
    (bar,) = fig["rects"]
    assert (bar["cls"], bar["fill"], bar["y"], bar["h"]) == ("drift", "#e67e22", 110.0, 70.0)  # 0.5 of 140 px
    assert [c["cls"] for c in fig["circles"]] == ["auc", "estimated"]
    # zero, the newest day's line, the day's own line across its bar, the labelled metric's interval
    assert [line.get("cls") for line in fig["lines"]] == [None, "drift-line", "drift-mark", "auc-interval"]
    (triangle,) = fig["polygons"]
    assert triangle["points"].split()[0].endswith(",36.0")  # a score of 2.5 is drawn at the top (capped at 1)
    assert "prediction drift 2.500" in triangle["title"] and "sampling noise reaches 0.200" in triangle["title"]
    svg = str(plots.svg(fig))
    assert svg.count('class="drift"') == 1 and svg.count('class="prediction-drift"') == 1
    assert "&lt;script&gt;" in svg and "<script" not in svg
    assert ">Drift per day</text>" not in svg  # no heading: the page's own heading names it
    assert plots.monitoring_by_day([], [], 0.3) is None


def test_the_run_page_draws_a_tuning_study_trials_best_so_far_and_importances() -> None:
    from mlops_provider.web.records import study_plots

    study = {
        "metric": "roc_auc", "direction": "maximize", "best": {"number": 2, "value": 0.8, "params": {}},
        "trials": [
            {"number": 0, "state": "COMPLETE", "value": 0.7, "params": {"max_depth": 3}, "seconds": 1.0},
            {"number": 1, "state": "PRUNED", "value": None, "params": {MARKUP: 0.1}, "seconds": 0.5},
            {"number": 2, "state": "COMPLETE", "value": 0.8, "params": {"learning_rate": 0.05}, "seconds": 1.2},
            {"number": 3, "state": "COMPLETE", "value": 0.75, "params": {"max_depth": 6}, "seconds": 1.1},
        ],
        "importance": {"learning_rate": 0.7, MARKUP: 0.3},
    }  # fmt: skip
    svgs = [str(s) for s in study_plots(study)]
    assert [s.split('class="plot ', 1)[1].split('"', 1)[0] for s in svgs] == ["tuning-trials", "tuning-importance"]
    trials = svgs[0]
    assert trials.count("<circle") == 3 and 'fill="#c0392b"' in trials  # three values, the best one red
    assert "trial 2: roc_auc 0.8000" in trials and "trial 1: pruned" in trials
    best_line = trials.split("<title>best so far</title>")[0].rsplit("<polyline", 1)[1]
    assert best_line.count(",") == 3  # one point per valued trial, never down
    assert "<script" not in "".join(svgs) and "&lt;script&gt;" in svgs[1]
    assert study_plots(None) == [] and [f for f, _ in plots.study_figures({**study, "importance": {}})] == [
        "tuning_trials"
    ]


def test_the_health_plots_put_days_on_a_time_axis_a_gap_shows_as_a_gap_and_ticks_are_dates() -> None:
    """Issue 30, item 9: a loop that ran in July and again from November drew both stretches side by side (one
    column per recorded day): the 4-month gap was invisible and the ticks were just the recorded days."""
    import datetime as dt

    days = ["2026-07-01", "2026-07-02", "2026-07-03", "2026-11-01", "2026-11-02"]
    drift = [{"day": d, "drift_share": 0.2, "dataset_drift": False} for d in days]
    performance = [{"day": d, "metric": "roc_auc", "value": 0.8} for d in days]
    fig = plots.monitoring_by_day(drift, performance, 0.3)
    assert fig is not None
    bars = {r["title"][:10]: r["x"] + r["w"] / 2 for r in fig["rects"] if r["cls"] == "drift"}
    dots = {c["title"][:10]: c["x"] for c in fig["circles"] if c["cls"] == "auc"}
    one_day = (bars["2026-11-02"] - bars["2026-07-01"]) / 124  # the axis' scale: 124 days apart
    assert bars["2026-07-02"] - bars["2026-07-01"] == pytest.approx(one_day, abs=0.2)
    assert bars["2026-07-03"] - bars["2026-07-02"] == pytest.approx(one_day, abs=0.2)
    # 2026-07-03 -> 2026-11-01 is 121 days: 121 times one day's width, not one column.
    assert bars["2026-11-01"] - bars["2026-07-03"] == pytest.approx(121 * one_day, rel=0.01)
    assert dots == pytest.approx(bars, abs=0.2)  # every series on the same axis

    # Ticks are dates, placed where those dates are on the axis (the same scale as the bars).
    ticks = [t for t in fig["texts"] if t.get("cls") == "date-tick"]
    assert len(ticks) >= 3
    origin = dt.date(2026, 7, 1)
    for tick in ticks:
        date = tick["date"]
        assert tick["x"] == pytest.approx(bars["2026-07-01"] + (dt.date.fromisoformat(date) - origin).days * one_day,
                                          abs=0.2)  # fmt: skip
    labels = [t["text"] for t in ticks]
    assert any(label.startswith(("2026-08", "2026-09", "2026-10", "08-", "09-", "10-")) for label in labels), labels
    assert 'class="date-tick"' in str(plots.svg(fig))

    # The labelled metric's plot uses the same rule.
    interval_fig = plots.metric_intervals(
        [{"day": d, "metric": "roc_auc", "value": 0.8, "floor": 0.7, "rows": 10} for d in days]
    )
    xs = {c["title"][:10]: c["x"] for c in interval_fig["circles"]}
    step = xs["2026-07-02"] - xs["2026-07-01"]
    assert xs["2026-11-01"] - xs["2026-07-03"] == pytest.approx(121 * step, rel=0.01)
    assert [t for t in interval_fig["texts"] if t.get("cls") == "date-tick"]


def test_a_long_time_axis_ticks_the_first_of_the_month_and_names_the_year() -> None:
    slots, step, ticks = plots.time_axis(["2026-01-15", "2026-12-20"], 0, 440)
    assert step == pytest.approx(440 / 340) and slots["2026-01-15"] == 0.0
    assert [(date, label) for _, date, label in ticks] == [
        ("2026-03-01", "2026-03"), ("2026-05-01", "2026-05"), ("2026-07-01", "2026-07"), ("2026-09-01", "2026-09"),
        ("2026-11-01", "2026-11"),
    ]  # fmt: skip
    _, _, short = plots.time_axis(["2026-12-30", "2027-01-02"], 0, 400)
    assert [label for _, _, label in short] == ["2026-12-30", "12-31", "2027-01-01", "01-02"]  # a new year is named
