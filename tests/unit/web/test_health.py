"""The model health page draws every monitoring series it is given (pure rendering, no services)."""

from __future__ import annotations

import pytest

from mlops_provider.web.health import render

pytestmark = pytest.mark.unit


def test_the_page_draws_drift_labels_estimates_prediction_drift_and_rebuilt_sets():
    data = {
        "model_name": "m",
        "champion": None,
        "lineage": {},
        "history": [],
        "drift": [{"day": "2026-11-01", "drift_share": 0.5, "dataset_drift": True, "reference_version": "1"}],
        "performance": [{"day": "2026-11-01", "metric": "roc_auc", "value": 0.7}],
        "estimated": [{"day": "2026-11-02", "metric": "roc_auc", "value": 0.74}],
        "prediction_drift": [
            {"day": "2026-11-02", "score": 2.5, "drifted": True, "positive_rate": 0.3, "positive_rate_holdout": 0.1}
        ],
        "rebuilt_training_sets": [
            {
                "tag": "training-set/m/2026-11-03.r2",
                "rebuilt_for": "2026-11-02",
                "partitions": "2026-11-01,2026-11-02,2026-11-03",
            }
        ],  # fmt: skip
    }
    page = render(data)
    assert page.count('class="drift"') == 1 and page.count('class="auc"') == 1
    assert page.count('class="estimated"') == 1 and page.count('class="prediction-drift"') == 1
    assert "prediction drift 2.500" in page  # the title keeps the uncapped score
    assert "training-set/m/2026-11-03.r2" in page and "fixed day" in page
    assert "Training sets rebuilt" not in render({**data, "rebuilt_training_sets": []})


def test_the_page_puts_unsent_mail_first_with_its_error():
    base = {"model_name": "m", "champion": None, "lineage": {}, "history": [], "drift": [], "performance": []}
    unsent = {"status": "unsent", "event": "promotion", "subject": "[mlops] m: v4 is the new champion",
              "to": ["oncall@example.com"], "queued_at": "2026-12-01T02:00:00+00:00", "sent_at": None,
              "via": "outbox", "attempts": 3, "error": "ConnectionRefusedError: [Errno 111] <refused>"}  # fmt: skip
    sent = {**unsent, "status": "sent", "subject": "[mlops] m: rolled back to v2", "sent_at": "2026-12-01T03:00:00"}
    page = render({**base, "notifications": [unsent, sent]})
    assert "1 on-call mail(s) not sent" in page and "mlops_notification_outbox" in page
    assert page.index("v4 is the new champion") < page.index("rolled back to v2")
    assert "ConnectionRefusedError: [Errno 111] &lt;refused&gt;" in page  # escaped
    assert "(from the outbox)" in page
    quiet = render({**base, "notifications": [sent]})
    assert "not sent" not in quiet and "No mail sent or waiting" not in quiet
    assert "No mail sent or waiting" in render(base)


def test_the_page_draws_the_interval_around_each_realised_metric_and_the_floor():
    interval = {"lower": 0.58, "upper": 0.684, "level": 0.95, "method": "DeLong", "rows": 310}
    performance = [
        {"day": "2026-11-01", "metric": "roc_auc", "value": 0.632, "floor": 0.65, "interval": interval, "rows": 310,
         "window_days": 2, "rule": "interval", "alarm": False},
        {"day": "2026-11-02", "metric": "roc_auc", "value": 0.6, "floor": 0.65, "rows": 900, "window_days": 2,
         "interval": {**interval, "lower": 0.57, "upper": 0.63, "rows": 900}, "rule": "interval", "alarm": True},
        {"day": "2026-10-31", "metric": "roc_auc", "value": 0.7, "floor": 0.65},  # a record from before intervals
    ]  # fmt: skip
    data = {"model_name": "m", "champion": None, "lineage": {}, "history": [], "drift": [], "performance": performance}
    page = render(data)
    assert page.count('class="auc-interval"') == 2 and page.count('class="auc"') == 3
    assert "Realised metric on late labels, with its interval" in page
    assert 'class="plot metric-intervals"' in page and "<title>floor 0.65</title>" in page
    assert (
        "2026-11-01: roc_auc 0.632 [0.580, 0.684] (95% DeLong) on 310 labelled rows (2-day window; rule interval)"
        in page
    )
    assert "[0.570, 0.630] (95% DeLong) on 900 labelled rows (2-day window; rule interval; alarm)" in page
    assert 'fill="#c0392b"><title>2026-11-02' in page  # the alarm's dot is red
    assert "Realised metric" not in render({**data, "performance": []})


def test_the_bars_draw_the_signal_that_decided_each_day_against_its_own_line_and_the_estimate_its_interval():
    """Issue 28: with the spec's signal learned the page draws the learned drift against its line, not the share
    (which calls every calm autocorrelated day drifted); a day that fell back to the share draws the share against
    the share's line; the estimate is drawn with its interval."""
    from mlops_provider.layout import deciding_signal
    from mlops_provider.render.plots import monitoring_by_day

    learned_calm = {
        "day": "2026-11-01",
        "drift_share": 0.8,
        "threshold": 0.3,
        "dataset_drift": False,
        "signal": "learned",
        "learned_drift": 0.12,
        "learned_threshold": 0.4,
        "weighted_drift": 0.7,
        "weighted_threshold": 0.3,
        "reference_version": "3",
    }
    learned_season = {**learned_calm, "day": "2026-11-02", "learned_drift": 0.65, "dataset_drift": True}
    fell_back = {
        **learned_calm,
        "day": "2026-11-03",
        "signal": "share",
        "learned_drift": None,
        "drift_share": 0.2,
        "threshold": 0.25,
        "signal_note": "1 validated day(s) in the reference: the share decided",
    }
    before_issue_28 = {"day": "2026-10-31", "drift_share": 0.5, "dataset_drift": True}  # no signal recorded
    assert deciding_signal(learned_calm) == {"signal": "learned", "name": "learned drift", "value": 0.12, "line": 0.4}
    assert deciding_signal(fell_back)["signal"] == "share" and deciding_signal(fell_back)["line"] == 0.25
    assert deciding_signal(before_issue_28) == {"signal": "share", "name": "drift share", "value": 0.5, "line": 0.3}
    assert deciding_signal({**learned_calm, "signal": "weighted"})["value"] == 0.7

    estimated = [{"day": "2026-11-02", "metric": "roc_auc", "value": 0.74, "low": 0.70, "high": 0.78,
                  "calibration": {"method": "none"}}]  # fmt: skip
    fig = monitoring_by_day([before_issue_28, learned_calm, learned_season, fell_back], [], estimated=estimated)
    zero = fig["zero"]
    drawn = {r["title"][:10]: (r["signal"], round(zero - r["y"], 1), r["h"]) for r in fig["rects"]}
    line_y = float(next(ln for ln in fig["lines"] if ln.get("cls") == "drift-line")["points"].split(",")[1].split()[0])
    unit = zero - line_y  # the newest day's (share) line, 0.25, in pixels
    assert drawn["2026-11-01"][0] == "learned" and drawn["2026-11-01"][1] == pytest.approx(0.12 / 0.25 * unit, abs=0.2)
    assert drawn["2026-11-02"][0] == "learned" and drawn["2026-11-02"][1] == pytest.approx(0.65 / 0.25 * unit, abs=0.2)
    assert drawn["2026-11-03"][0] == "share" and drawn["2026-11-03"][1] == pytest.approx(0.2 / 0.25 * unit, abs=0.2)
    assert drawn["2026-10-31"][0] == "share"
    marks = {
        m["title"][:10]: float(m["points"].split(",")[1].split()[0])
        for m in fig["lines"]
        if m.get("cls") == "drift-mark"
    }
    assert marks["2026-11-01"] == marks["2026-11-02"] < marks["2026-11-03"]  # line 0.4 drawn above line 0.25
    assert fig["line"] == 0.25 and fig["line_name"] == "drift share"  # the newest day's signal
    rings = [c for c in fig["circles"] if c.get("cls") == "estimated"]
    assert len([ln for ln in fig["lines"] if ln.get("cls") == "estimated-interval"]) == 1
    assert "[0.700, 0.780] (calibration none)" in rings[0]["title"]

    data = {"model_name": "m", "champion": None, "lineage": {}, "history": [], "performance": [],
            "drift": [learned_calm, learned_season], "estimated": estimated}  # fmt: skip
    page = render(data)
    assert page.count('data-signal="learned"') == 2 and page.count('class="drift-mark"') == 2
    assert "2026-11-01: learned drift 0.12 (line 0.40; drift share 0.80; reference v3)" in page
    assert "drift share 0.80 (" not in page  # the share is not what is drawn
    assert page.count('class="estimated-interval"') == 1 and "<title>learned drift line 0.4</title>" in page


def test_the_live_section_draws_weight_and_answered_share_per_version_and_escapes():
    live = {
        "port": 8600, "versions": ["1", "2"], "source": "backends", "weights": {"1": 95.0, "2": 5.0},
        "unreachable": ["2"], "events": [{"at": "t", "event": "weights", "weights": {"1": 95, "2": 5}}],
        "windows": {"60s": {"1": {"requests": 570, "rate": 9.5, "error_rate": 0.0, "bad_input_rate": 0.1,
                                  "p95_ms": 4.2, "since_start": False},
                            "2": {"requests": 30, "rate": 0.5, "error_rate": 0.5, "bad_input_rate": 0.0,
                                  "p95_ms": 80.0, "since_start": False}}},
    }  # fmt: skip
    data = {"model_name": "m", "champion": None, "lineage": {}, "history": [], "drift": [], "performance": []}
    page = render({**data, "live": live})
    assert "<h2>Live serving</h2>" in page and page.count('class="plot live-traffic"') == 1
    assert page.count('class="weight"') == 2 and page.count('class="answered"') == 2
    assert "v2: answered 5.0%" in page and "5xx 50.00%" in page and "p95 80.0 ms" in page
    assert "No <code>/metrics</code> from v2" in page
    assert "Live serving" not in render({**data, "live": None})
    hostile = {**live, "versions": ["<b>x</b>"], "windows": {"60s": {}}, "unreachable": []}
    assert "<b>x</b>" not in render({**data, "live": hostile})
