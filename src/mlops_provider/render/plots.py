"""Static SVG plots (no JavaScript, no external assets): each builder lays out a figure of primitives (lines,
rectangles, circles, polygons, texts) and ``figure.svg`` draws it with autoescaping, so a column name or a
segment value that carries markup stays text. The one way the package draws SVG: used by the run, ledger and
model health pages and logged as run artifacts.

A figure: ``{kind, title, width, height, heading, rects, lines, circles, polygons, texts}``; every primitive may
carry ``cls`` (its CSS class, which tests and styles select on) and ``title`` (its tooltip)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from markupsafe import Markup

from mlops_provider.render.html import render

W, H, PAD = 320, 260, 44


DEFAULTS: dict[str, dict[str, Any]] = {
    "rects": {"stroke": None, "title": None, "cls": None},
    "lines": {"dash": None, "width": 2, "title": "", "cls": None},
    "circles": {"title": "", "stroke": None, "cls": None},
    "polygons": {"title": "", "cls": None},
    "texts": {"size": 10, "anchor": "start", "fill": None, "rotate": None, "cls": None},
}
#: A per-day plot draws this many pixels per calendar day while it fits ``MAX_DAYS_WIDTH``, fewer beyond.
DAY_PX, MAX_DAYS_WIDTH = 28, 960
#: Tick spacings of a time axis: days, then months (``-n``: every n months, on the first of the month).
DAY_TICKS, MONTH_TICKS = (1, 2, 3, 7, 14), (-1, -2, -3, -6, -12)


def _date(day: str) -> dt.date:
    return dt.date.fromisoformat(str(day)[:10])


def days_width(days: list[str], margin: int, least: int = 360) -> int:
    """The width of a per-day plot: ``DAY_PX`` per calendar day from the first to the last of ``days`` (gaps
    included) plus ``margin``, at least ``least``, at most ``MAX_DAYS_WIDTH``."""
    span = (_date(max(days)) - _date(min(days))).days + 1
    return max(least, min(DAY_PX * span + margin, MAX_DAYS_WIDTH))


def time_axis(
    days: list[str], left: float, right: float
) -> tuple[dict[str, float], float, list[tuple[float, str, str]]]:
    """Days on a time axis from ``left`` to ``right``: every calendar day from the first to the last of ``days`` gets
    one slot of equal width, so a gap between records is drawn as a gap. Returns the x of each day's slot (its left
    edge), the slot width, and the ticks ``(x of the tick date's slot centre, date, label)``: at most one per ~44 px
    and 10 in all, every 1, 2, 3, 7 or 14 days from the first day (label ``MM-DD``, the first one and a new year
    ``YYYY-MM-DD``), or on the first of every 1, 2, 3, 6 or 12 months (label ``YYYY-MM``) over longer spans."""
    first, last = _date(min(days)), _date(max(days))
    span = (last - first).days + 1
    step = (right - left) / span

    def at(date: dt.date) -> float:
        return round(left + step * (date - first).days, 1)

    slots = {day: at(_date(day)) for day in days}
    room = max(2, min(10, int((right - left) // 44)))
    spacing = next((k for k in DAY_TICKS if -(-span // k) <= room), None)
    if spacing is None:
        months = (last.year - first.year) * 12 + last.month - first.month + 1
        spacing = next((k for k in MONTH_TICKS if -(-months // -k) <= room), MONTH_TICKS[-1])
    dates: list[dt.date] = []
    if spacing > 0:
        dates = [first + dt.timedelta(days=i) for i in range(0, span, spacing)]
    else:
        year, month = first.year, first.month
        while True:
            if (month - 1) % -spacing == 0:
                date = dt.date(year, month, 1)
                if date > last:
                    break
                if date >= first:
                    dates.append(date)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    ticks = []
    for i, date in enumerate(dates):
        if spacing < 0:
            label = date.strftime("%Y-%m")
        elif i == 0 or date.year != dates[i - 1].year:
            label = date.isoformat()
        else:
            label = date.strftime("%m-%d")
        ticks.append((round(at(date) + step / 2, 1), date.isoformat(), label))
    return slots, step, ticks


def _date_ticks(fig: dict[str, Any], ticks: list[tuple[float, str, str]], y: float, size: int = 9) -> None:
    """Tick labels (class ``date-tick``, ``date``: the ISO date) centred on their date's slot."""
    for x, date, label in ticks:
        fig["texts"].append({"x": x, "y": y, "text": label, "anchor": "middle", "size": size, "cls": "date-tick",
                             "date": date})  # fmt: skip


def svg(fig: dict[str, Any]) -> Markup:
    """The figure as SVG markup (safe to embed: every text in it was escaped)."""
    complete = {"heading": True, **fig,
                **{kind: [{**DEFAULTS[kind], **item} for item in fig.get(kind, [])] for kind in DEFAULTS}}  # fmt: skip
    return Markup(render("figure.svg", fig=complete))


def _figure(kind: str, title: str, width: int = W, height: int = H) -> dict[str, Any]:
    return {"kind": kind, "title": title, "width": width, "height": height, "rects": [], "lines": [], "circles": [],
            "polygons": [], "texts": []}  # fmt: skip


def _unit_axes(fig: dict[str, Any], x_label: str, y_label: str) -> tuple[Any, Any]:
    """Axes of [0, 1] x [0, 1]; returns the coordinate functions."""
    left, right, top, bottom = PAD, fig["width"] - 12, 28, fig["height"] - PAD

    def x(v: float) -> float:
        return round(left + v * (right - left), 1)

    def y(v: float) -> float:
        return round(bottom - v * (bottom - top), 1)

    fig["rects"].append({"x": left, "y": top, "w": right - left, "h": bottom - top, "fill": "none", "stroke": "#999"})
    for tick in (0.0, 0.5, 1.0):
        fig["texts"].append({"x": x(tick), "y": bottom + 14, "text": f"{tick:g}", "anchor": "middle"})
        fig["texts"].append({"x": left - 4, "y": y(tick) + 3, "text": f"{tick:g}", "anchor": "end"})
    fig["texts"].append({"x": (left + right) / 2, "y": fig["height"] - 8, "text": x_label, "anchor": "middle",
                         "size": 11})  # fmt: skip
    fig["texts"].append({"x": 12, "y": (top + bottom) / 2, "text": y_label, "anchor": "middle", "size": 11,
                         "rotate": -90})  # fmt: skip
    return x, y


def _polyline(xs: list[float], ys: list[float], fx: Any, fy: Any) -> str:
    return " ".join(f"{fx(a)},{fy(b)}" for a, b in zip(xs, ys, strict=True))


def roc(curves: dict[str, Any]) -> dict[str, Any]:
    """ROC curve with the chance diagonal."""
    data = curves["roc"]
    fig = _figure("roc", f"ROC (AUC {data['auc']:.3f}, {curves['rows']} holdout rows)")
    x, y = _unit_axes(fig, "false positive rate", "true positive rate")
    fig["lines"].append({"points": _polyline([0, 1], [0, 1], x, y), "color": "#bbb", "dash": "4 3", "width": 1,
                         "title": "chance"})  # fmt: skip
    fig["lines"].append({"points": _polyline(data["fpr"], data["tpr"], x, y), "color": "#2471a3",
                         "title": f"ROC AUC {data['auc']:.4f}"})  # fmt: skip
    return fig


def precision_recall(curves: dict[str, Any]) -> dict[str, Any]:
    """Precision-recall curve with the positive rate as baseline."""
    data = curves["pr"]
    base = curves["positives"] / curves["rows"] if curves["rows"] else 0.0
    fig = _figure("pr", f"Precision-recall (AP {data['average_precision']:.3f})")
    x, y = _unit_axes(fig, "recall", "precision")
    fig["lines"].append({"points": _polyline([0, 1], [base, base], x, y), "color": "#bbb", "dash": "4 3",
                         "width": 1, "title": f"positive rate {base:.3f}"})  # fmt: skip
    fig["lines"].append({"points": _polyline(data["recall"], data["precision"], x, y), "color": "#1e8449",
                         "title": f"average precision {data['average_precision']:.4f}"})  # fmt: skip
    return fig


def calibration(curves: dict[str, Any]) -> dict[str, Any]:
    """Reliability diagram: mean predicted vs observed positive rate per probability decile."""
    data = curves["calibration"]
    fig = _figure("calibration", "Calibration (per probability decile)")
    x, y = _unit_axes(fig, "mean predicted probability", "observed positive rate")
    fig["lines"].append({"points": _polyline([0, 1], [0, 1], x, y), "color": "#bbb", "dash": "4 3", "width": 1,
                         "title": "perfectly calibrated"})  # fmt: skip
    if data["predicted"]:
        fig["lines"].append({"points": _polyline(data["predicted"], data["observed"], x, y), "color": "#884ea0",
                             "title": "calibration"})  # fmt: skip
    for p, o, n in zip(data["predicted"], data["observed"], data["count"], strict=True):
        fig["circles"].append({"x": x(p), "y": y(o), "r": 3, "fill": "#884ea0",
                               "title": f"predicted {p:.3f}, observed {o:.3f} ({n} rows)"})  # fmt: skip
    return fig


def confusion(curves: dict[str, Any]) -> dict[str, Any]:
    """The confusion matrix at the threshold, cells shaded by their share of the rows."""
    c = curves["confusion"]
    total = max(1, c["tp"] + c["fp"] + c["tn"] + c["fn"])
    fig = _figure("confusion", f"Confusion matrix at threshold {c['threshold']:g}", width=300, height=240)
    size, left, top = 90, 100, 50
    cells = (("actual 1", "predicted 1", c["tp"], 0, 0), ("actual 1", "predicted 0", c["fn"], 0, 1),
             ("actual 0", "predicted 1", c["fp"], 1, 0), ("actual 0", "predicted 0", c["tn"], 1, 1))  # fmt: skip
    for actual, predicted, count, row, col in cells:
        share = count / total
        fig["rects"].append({"x": left + col * size, "y": top + row * size, "w": size, "h": size,
                             "fill": f"rgba(36,113,163,{0.1 + 0.8 * share:.2f})", "stroke": "#fff",
                             "title": f"{actual}, {predicted}: {count} ({share:.1%})"})  # fmt: skip
        fig["texts"].append({"x": left + col * size + size / 2, "y": top + row * size + size / 2 + 5,
                             "text": str(count), "anchor": "middle", "size": 14})  # fmt: skip
    for i, label in enumerate(("predicted 1", "predicted 0")):
        fig["texts"].append({"x": left + i * size + size / 2, "y": top - 8, "text": label, "anchor": "middle"})
    for i, label in enumerate(("actual 1", "actual 0")):
        fig["texts"].append({"x": left - 8, "y": top + i * size + size / 2 + 4, "text": label, "anchor": "end"})
    return fig


def bars(title: str, kind: str, labels: list[str], values: list[float], *, top: int = 15) -> dict[str, Any]:
    """Horizontal bars, largest first (at most ``top``)."""
    pairs = sorted(zip(labels, values, strict=True), key=lambda lv: -abs(lv[1]))[:top]
    height = 40 + 18 * len(pairs)
    fig = _figure(kind, title, width=420, height=max(80, height))
    largest = max((abs(v) for _, v in pairs), default=1.0) or 1.0
    left, span = 170, 210
    for i, (label, value) in enumerate(pairs):
        y = 28 + 18 * i
        fig["texts"].append({"x": left - 6, "y": y + 11, "text": str(label)[:28], "anchor": "end"})
        fig["rects"].append({"x": left, "y": y, "w": round(span * abs(value) / largest, 1), "h": 13,
                             "fill": "#2471a3", "title": f"{label}: {value:.4g}"})  # fmt: skip
        fig["texts"].append({"x": left + round(span * abs(value) / largest, 1) + 4, "y": y + 11,
                             "text": f"{value:.3g}"})  # fmt: skip
    return fig


def paired_bars(title: str, kind: str, rows: list[tuple[str, float | None, float | None]]) -> dict[str, Any]:
    """Champion (grey) vs challenger (blue) per row label, on a shared [0, 1] scale (metrics, segments)."""
    height = 44 + 30 * len(rows)
    fig = _figure(kind, title, width=460, height=max(90, height))
    left, span = 170, 230
    for i, (label, champion, challenger) in enumerate(rows):
        y = 30 + 30 * i
        fig["texts"].append({"x": left - 6, "y": y + 15, "text": str(label)[:28], "anchor": "end"})
        for j, (who, value, color) in enumerate((("champion", champion, "#aab7b8"),
                                                 ("challenger", challenger, "#2471a3"))):  # fmt: skip
            if value is None:
                continue
            width = round(span * max(0.0, min(1.0, float(value))), 1)
            fig["rects"].append({"x": left, "y": y + 12 * j, "w": width, "h": 11, "fill": color,
                                 "title": f"{label}: {who} {float(value):.4f}"})  # fmt: skip
            fig["texts"].append({"x": left + width + 4, "y": y + 12 * j + 9, "text": f"{float(value):.3f}",
                                 "size": 9})  # fmt: skip
    fig["texts"].append({"x": left, "y": fig["height"] - 6, "text": "grey: champion, blue: challenger"})
    return fig


def drift_heatmap(days: list[str], columns: list[str], cells: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """Day x column: each cell's drift score (darker: further from the reference), drifted cells outlined red."""
    cell_w, cell_h, left, top = 22, 16, 150, 34
    fig = _figure("heatmap", "Per-column drift by day", width=left + cell_w * len(days) + 20,
                  height=top + cell_h * len(columns) + 40)  # fmt: skip
    scores = [float(c.get("score") or 0.0) for c in cells.values()]
    largest = max(scores, default=1.0) or 1.0
    for r, column in enumerate(columns):
        fig["texts"].append({"x": left - 6, "y": top + r * cell_h + 12, "text": column[:24], "anchor": "end"})
        for c, day in enumerate(days):
            cell = cells.get((day, column))
            if cell is None:
                continue
            score = float(cell.get("score") or 0.0)
            fig["rects"].append({
                "x": left + c * cell_w, "y": top + r * cell_h, "w": cell_w - 1, "h": cell_h - 1,
                "fill": f"rgba(230,126,34,{0.08 + 0.9 * min(1.0, score / largest):.2f})",
                "stroke": "#c0392b" if cell.get("drifted") else None,
                "title": f"{day} {column}: {cell.get('method') or 'score'} {score:.4g}"
                + (" (drifted)" if cell.get("drifted") else ""),
            })  # fmt: skip
    every = max(1, -(-len(days) // 10))
    for c, day in enumerate(days):
        if c % every == 0:
            fig["texts"].append({"x": left + c * cell_w + cell_w / 2, "y": top + cell_h * len(columns) + 14,
                                 "text": day[5:], "anchor": "middle", "size": 9})  # fmt: skip
    return fig


def metric_intervals(points: list[dict[str, Any]]) -> dict[str, Any]:
    """A realised metric per day (dot) with its confidence interval (vertical bar) and the floor (dashed, red); the
    y axis spans the values, bounds and floors. A dot is red when the day raised the alarm. ``points``:
    ``[{day, metric, value, floor, interval: {lower, upper, level, method} | None, rows, rule, alarm}]``."""
    days = sorted({str(p["day"]) for p in points})
    metric = points[0].get("metric") or "metric"
    fig = _figure("metric-intervals", f"{metric} on late labels, with its interval", width=days_width(days, 90))
    values = [float(v) for p in points for v in (p["value"], p.get("floor"),
              *((p.get("interval") or {}).get(k) for k in ("lower", "upper"))) if v is not None]  # fmt: skip
    low, high = min(values), max(values)
    low, high = max(0.0, low - 0.02), min(1.0, high + 0.02)
    if high - low < 0.05:
        low, high = max(0.0, low - 0.025), min(1.0, high + 0.025)
    left, right, top, bottom = PAD + 6, fig["width"] - 16, 28, fig["height"] - PAD
    slots, step, ticks = time_axis(days, left, right)
    x = {day: round(slot + step / 2, 1) for day, slot in slots.items()}

    def y(v: float) -> float:
        return round(bottom - (v - low) / (high - low) * (bottom - top), 1)

    fig["rects"].append({"x": left, "y": top, "w": right - left, "h": bottom - top, "fill": "none", "stroke": "#999"})
    for tick in (low, (low + high) / 2, high):
        fig["texts"].append({"x": left - 4, "y": y(tick) + 3, "text": f"{tick:.2f}", "anchor": "end"})
    floors = sorted({float(p["floor"]) for p in points if p.get("floor") is not None})
    for floor in floors:
        fig["lines"].append({"points": f"{left},{y(floor)} {right},{y(floor)}", "color": "#c0392b", "dash": "4 3",
                             "width": 1, "title": f"floor {floor:g}"})  # fmt: skip
    for p in points:
        cx, value, interval = x[str(p["day"])], float(p["value"]), p.get("interval") or {}
        bounds = ""
        if interval.get("lower") is not None and interval.get("upper") is not None:
            lower, upper = float(interval["lower"]), float(interval["upper"])
            bounds = (f" [{lower:.3f}, {upper:.3f}] ({float(interval.get('level', 0.95)):.0%} "
                      f"{interval.get('method')})")  # fmt: skip
            fig["lines"].append({"points": f"{cx},{y(upper)} {cx},{y(lower)}", "color": "#1e8449", "width": 2,
                                 "title": f"{p['day']}: interval{bounds}"})  # fmt: skip
        fig["circles"].append({
            "x": cx, "y": y(value), "r": 3.5, "fill": "#c0392b" if p.get("alarm") else "#1e8449",
            "title": f"{p['day']}: {metric} {value:.3f}{bounds} on {p.get('rows')} labelled rows "
            f"({p.get('window_days', 1)}-day window; rule {p.get('rule', 'point')}"
            + ("; alarm)" if p.get("alarm") else ")"),
        })  # fmt: skip
    _date_ticks(fig, ticks, bottom + 14)
    fig["texts"].append({"x": left, "y": fig["height"] - 8, "text": "labelled day; bar: confidence interval; "
                         "dashed: floor; red dot: alarm"})  # fmt: skip
    return fig


def monitoring_by_day(
    drift: list[dict[str, Any]],
    performance: list[dict[str, Any]],
    line: float | None = None,
    estimated: list[dict[str, Any]] | None = None,
    predictions: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """The model health page's main plot, days on a time axis (:func:`time_axis`: a gap between records is a gap,
    the ticks are dates) on a [0, 1] scale: per day the drift signal that decided
    the day's verdict (bars, capped at 1, orange when the day drifted; :func:`mlops_provider.layout.deciding_signal`)
    with that signal's line across its bar, the newest day's line across the plot (dashed, red), the metric on late
    labels (dots, with a bar for its interval), the metric estimated before the labels (rings, with a bar for its
    interval) and the prediction drift score (triangles, capped at 1; red when drifted). ``line``: the line of a
    record that names none (default 0.3). ``None`` when there is no day to draw. Points: the health page's
    ``drift``, ``performance``, ``estimated`` and ``prediction_drift`` series."""
    from mlops_provider.layout import deciding_signal

    estimated, predictions = estimated or [], predictions or []
    days = sorted({p["day"] for p in drift} | {p["day"] for p in [*performance, *estimated, *predictions] if p["day"]})
    if not days:
        return None
    width, height, pad = days_width(days, 80), 220, 40
    fig = {**_figure("monitoring", "Drift per day", width=width, height=height), "heading": False}
    x, step, ticks = time_axis(days, pad, width - pad)
    bar = min(step - 4, DAY_PX - 4) if step >= 12 else max(1.5, round(step * 0.7, 1))  # centred in its slot

    def y(value: float) -> float:
        return round(height - pad - value * (height - 2 * pad), 1)

    default_line = 0.3 if line is None else line
    newest = deciding_signal(max(drift, key=lambda p: str(p["day"])), default_line) if drift else None
    line_value = newest["line"] if newest else default_line
    line_name = newest["name"] if newest else "drift share"
    right = width - pad
    fig["lines"].append({"points": f"{pad},{y(0)} {right},{y(0)}", "color": "#888", "width": 1, "title": ""})
    fig["lines"].append({"points": f"{pad},{y(min(1.0, line_value))} {right},{y(min(1.0, line_value))}",
                         "color": "#c0392b", "width": 1, "dash": "4 3", "cls": "drift-line",
                         "title": f"{line_name} line {line_value}"})  # fmt: skip
    fig["texts"].append({"x": right + 2, "y": y(min(1.0, line_value)) + 4, "text": str(line_value), "fill": "#c0392b"})
    for point in drift:
        decided = deciding_signal(point, default_line)
        drawn = min(1.0, decided["value"])
        others = "" if decided["signal"] == "share" else f"; drift share {float(point.get('drift_share') or 0):.2f}"
        note = f"; {point['signal_note']}" if point.get("signal_note") else ""
        fig["rects"].append({
            "x": round(x[point["day"]] + (step - bar) / 2, 1), "y": y(drawn), "w": round(bar, 1),
            "h": round(y(0) - y(drawn), 1), "fill": "#e67e22" if point["dataset_drift"] else "#5dade2",
            "cls": "drift", "signal": decided["signal"],
            "title": f"{point['day']}: {decided['name']} {decided['value']:.2f} (line {decided['line']:.2f}{others}; "
            f"reference v{point.get('reference_version')}){note}",
        })  # fmt: skip
        mark_y = y(min(1.0, decided["line"]))
        fig["lines"].append({
            "points": f"{round(x[point['day']] + 1, 1)},{mark_y} {round(x[point['day']] + step - 1, 1)},{mark_y}",
            "color": "#c0392b", "width": 1, "dash": "2 2", "cls": "drift-mark",
            "title": f"{point['day']}: {decided['name']} line {decided['line']:.2f}",
        })  # fmt: skip
    for p in performance:
        if p.get("interval"):
            cx = round(x[p["day"]] + step / 2, 1)
            fig["lines"].append({
                "points": f"{cx},{y(float(p['interval']['upper']))} {cx},{y(float(p['interval']['lower']))}",
                "color": "#27ae60", "width": 1.5, "cls": "auc-interval",
                "title": f"{p['day']}: {p['metric']}" + _interval_text(p),
            })  # fmt: skip
    for p in performance:
        fig["circles"].append({
            "x": round(x[p["day"]] + step / 2, 1), "y": y(float(p["value"])), "r": 3.5, "fill": "#27ae60", "cls": "auc",
            "title": f"{p['day']}: {p['metric']} {float(p['value']):.3f} on labels" + _interval_text(p),
        })  # fmt: skip
    for p in estimated:
        if p.get("low") is not None and p.get("high") is not None:
            cx = round(x[p["day"]] + step / 2 + 3, 1)
            fig["lines"].append({
                "points": f"{cx},{y(float(p['high']))} {cx},{y(float(p['low']))}", "color": "#8e44ad", "width": 1,
                "cls": "estimated-interval", "title": f"{p['day']}: {p['metric']} estimated" + _estimate_text(p),
            })  # fmt: skip
        fig["circles"].append({
            "x": round(x[p["day"]] + step / 2, 1), "y": y(float(p["value"])), "r": 4, "fill": "none",
            "stroke": "#8e44ad", "cls": "estimated",
            "title": f"{p['day']}: {p['metric']} {float(p['value']):.3f} estimated before labels" + _estimate_text(p),
        })  # fmt: skip
    for point in predictions:
        cx, cy = x[point["day"]] + step / 2, y(min(1.0, float(point["score"] or 0.0)))
        fig["polygons"].append({
            "points": f"{cx:.1f},{cy - 4:.1f} {cx - 4:.1f},{cy + 3:.1f} {cx + 4:.1f},{cy + 3:.1f}",
            "fill": "#c0392b" if point["drifted"] else "#7f8c8d", "cls": "prediction-drift",
            "title": f"{point['day']}: prediction drift {float(point['score'] or 0):.3f}, predicted positive rate "
            f"{float(point['positive_rate'] or 0):.3f} (holdout {float(point['positive_rate_holdout'] or 0):.3f})"
            + (f"; sampling noise reaches {float(point['noise_bound']):.3f} at this day's rows"
               if point.get("noise_bound") is not None else ""),
        })  # fmt: skip
    _date_ticks(fig, ticks, height - 26)
    fig["line"], fig["line_name"], fig["zero"] = line_value, line_name, y(0)
    return fig


def _estimate_text(point: dict[str, Any]) -> str:
    """`` [low, high] (calibration <method>)`` of an estimate, or nothing for a record without an interval."""
    if point.get("low") is None or point.get("high") is None:
        return ""
    method = (point.get("calibration") or {}).get("method")
    return f" [{float(point['low']):.3f}, {float(point['high']):.3f}]" + (f" (calibration {method})" if method else "")


def _interval_text(point: dict[str, Any]) -> str:
    """`` [lower, upper] (95% DeLong, n rows)`` of a realised metric, or nothing for a record without one."""
    interval = point.get("interval")
    if not interval:
        return ""
    return (
        f" [{float(interval['lower']):.3f}, {float(interval['upper']):.3f}] ({float(interval['level']):.0%} "
        f"{interval.get('method')}, {interval.get('rows')} rows)"
    )


def study_trials(summary: dict[str, Any]) -> dict[str, Any]:
    """A tuning study: each trial's value in the order the trials ran (dots; pruned and failed trials as grey marks at
    the bottom), the best value so far (a step line) and the best trial (red). ``summary``: the tuner's study
    summary (``metric``, ``direction``, ``trials``: ``[{number, state, value, params, seconds}]``, ``best``)."""
    trials = sorted(summary.get("trials") or [], key=lambda t: int(t["number"]))
    metric, direction = str(summary.get("metric") or "value"), str(summary.get("direction") or "maximize")
    best_number = (summary.get("best") or {}).get("number")
    counted = [t for t in trials if t.get("state") in ("COMPLETE", "PRUNED")]
    fig = _figure("tuning-trials", f"Tuning: {metric} per trial ({len(counted)} trials, {direction})",
                  width=max(360, 14 * len(trials) + 100))  # fmt: skip
    values = [float(t["value"]) for t in trials if t.get("value") is not None]
    left, right, top, bottom = PAD + 6, fig["width"] - 16, 28, fig["height"] - PAD
    fig["rects"].append({"x": left, "y": top, "w": right - left, "h": bottom - top, "fill": "none", "stroke": "#999"})
    if not trials:
        return fig
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.01, high + 0.01
    span = high - low
    low, high = low - 0.05 * span, high + 0.05 * span
    step = (right - left) / len(trials)

    def x(i: int) -> float:
        return round(left + step * (i + 0.5), 1)

    def y(v: float) -> float:
        return round(bottom - (v - low) / (high - low) * (bottom - top), 1)

    for tick in (low, (low + high) / 2, high):
        fig["texts"].append({"x": left - 4, "y": y(tick) + 3, "text": f"{tick:.3g}", "anchor": "end"})
    best: float | None = None
    path: list[str] = []
    for i, trial in enumerate(trials):
        value = trial.get("value")
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in (trial.get("params") or {}).items())  # fmt: skip
        if value is None:
            fig["rects"].append(
                {
                    "x": x(i) - 3,
                    "y": bottom - 8,
                    "w": 6,
                    "h": 6,
                    "fill": "#aab7b8",
                    "title": f"trial {trial['number']}: {str(trial.get('state')).lower()} ({params})",
                }
            )
            continue
        value = float(value)
        if best is None or (value > best if direction == "maximize" else value < best):
            best = value
        path.append(f"{x(i)},{y(best)}")
        fig["circles"].append({
            "x": x(i), "y": y(value), "r": 4 if trial["number"] == best_number else 3,
            "fill": "#c0392b" if trial["number"] == best_number else "#2471a3",
            "title": f"trial {trial['number']}: {metric} {value:.4f} in {trial.get('seconds', 0):.1f} s ({params})",
        })  # fmt: skip
    if path:
        fig["lines"].append({"points": " ".join(path), "color": "#1e8449", "width": 1.5, "title": "best so far"})
    every = max(1, -(-len(trials) // 10))
    for i, trial in enumerate(trials):
        if i % every == 0:
            fig["texts"].append({"x": x(i), "y": bottom + 14, "text": str(trial["number"]), "anchor": "middle",
                                 "size": 9})  # fmt: skip
    fig["texts"].append({"x": left, "y": fig["height"] - 8, "text": "trial (in the order run); green: best so far; "
                         "red: best trial; grey: pruned or failed"})  # fmt: skip
    return fig


def study_figures(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A tuning study's plots by artifact name: the trials over time with the best so far (:func:`study_trials`),
    and Optuna's parameter importances when the study has them."""
    figures = [("tuning_trials", study_trials(summary))]
    importance = {str(k): float(v) for k, v in (summary.get("importance") or {}).items()}
    if importance:
        title = f"Parameter importance for {summary.get('metric') or 'the metric'} (Optuna)"
        figures.append(
            ("tuning_importance", bars(title, "tuning-importance", list(importance), list(importance.values())))
        )
    return figures


def live_traffic(window: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per serving version: the traffic weight the deployment gives it (grey) and the share it answered over
    ``window`` (blue), in percent, with its rate, error rate and p95 latency as text. ``rows``:
    ``[{version, weight, share, rate, error_rate, p95_ms}]`` (None where unknown)."""
    height = 52 + 34 * len(rows)
    fig = _figure("live-traffic", f"Traffic per version over {window}: weight vs answered", width=520,
                  height=max(90, height))  # fmt: skip
    left, span = 60, 200
    for i, row in enumerate(rows):
        y = 30 + 34 * i
        fig["texts"].append({"x": left - 6, "y": y + 15, "text": f"v{row['version']}", "anchor": "end"})
        for j, (who, value, color) in enumerate((("weight", row.get("weight"), "#aab7b8"),
                                                 ("answered", row.get("share"), "#2471a3"))):  # fmt: skip
            if value is None:
                continue
            width = round(span * max(0.0, min(100.0, float(value))) / 100, 1)
            fig["rects"].append({"x": left, "y": y + 13 * j, "w": width, "h": 12, "fill": color, "cls": who,
                                 "title": f"v{row['version']}: {who} {float(value):.1f}%"})  # fmt: skip
            fig["texts"].append({"x": left + width + 4, "y": y + 13 * j + 10, "text": f"{float(value):.1f}%",
                                 "size": 9})  # fmt: skip
        details = []
        if row.get("rate") is not None:
            details.append(f"{row['rate']:.1f} req/s")
        if row.get("error_rate") is not None:
            details.append(f"5xx {100 * row['error_rate']:.2f}%")
        if row.get("p95_ms") is not None:
            details.append(f"p95 {row['p95_ms']:.1f} ms")
        fig["texts"].append({"x": left + span + 50, "y": y + 15, "text": ", ".join(details) or "no traffic",
                             "size": 10})  # fmt: skip
    fig["texts"].append({"x": left, "y": fig["height"] - 6, "text": "grey: weight in the deployment record, "
                         "blue: share of the requests answered"})  # fmt: skip
    return fig
