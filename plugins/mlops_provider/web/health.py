"""Model health: the champion with its lineage, the champion history, drift/performance over time, retraining
alarms a rail held back (with the rail's reason), and on-call mail (unsent mail waiting in the outbox first, with
its error).

``collect`` reads the registry (MLflow) and the monitoring summaries under the reports root
(``<storage root>/reports``); ``render`` turns that into one self-contained HTML page (inline SVG plot, no
JavaScript, no external assets: the page works on a closed network and inside the Airflow UI's plugin frame).
"""

from __future__ import annotations

from typing import Any

from mlops_provider.layout import (
    CHAMPION_ALIAS,
    DATA_MD5_TAG,
    DATA_REV_TAG,
    GATE_DECISION_TAG,
    GATE_REEVALUATIONS_TAG,
)
from mlops_provider.notifications import notification_status
from mlops_provider.storage import ledger_dir, reports_root
from mlops_provider.web import html

#: Version/run tags shown as the champion's lineage, in this order, with their labels.
LINEAGE = (
    ("data.rev_name", "training set"),
    (DATA_REV_TAG, "data rev"),
    (DATA_MD5_TAG, "data md5"),
    ("code.version", "code version"),
    ("training.image", "training image"),
    ("serving.image", "serving image"),
    ("airflow.run_key", "Airflow run"),
    ("trigger.reason", "trigger reason"),
    (GATE_DECISION_TAG, "gate verdict"),
    ("gate.reason", "gate reason"),
    (GATE_REEVALUATIONS_TAG, "gate re-evaluations"),
    ("promotion.promoted_at", "promoted at"),
    ("promotion.promoted_by", "promoted by"),
)


HISTORY = 50  # newest versions shown


def _run_tags(hook: Any, run_id: str | None) -> dict[str, str]:
    """Tags of the MLflow run that produced a version (trigger reason, training set), or {} when gone."""
    from mlflow.exceptions import MlflowException

    if not run_id:
        return {}
    try:
        return dict(hook.get_run(run_id).data.tags)
    except MlflowException:
        return {}


def _series(kind: str, model_name: str) -> list[dict[str, Any]]:
    """Monitoring summaries (``drift`` or ``performance``) of ``model_name``, by day: each day's record of
    decision (its first check), with ``rechecks`` counting the later checks kept beside it."""
    from mlops_provider.evidence import attempts

    points = []
    for folder in sorted((p for p in (reports_root() / kind).glob("*/*") if p.is_dir()), key=str):
        records = attempts(folder)
        if not records:
            continue
        summary = {**records[0], "rechecks": len(records) - 1}
        owner = summary.get("model_name") or (summary.get("reference") or {}).get("model_name")
        if owner not in (None, model_name):
            continue
        points.append(summary)
    return sorted(points, key=lambda s: str(s.get("partition")))


def reevaluations(model_name: str, version: str, first: str | None) -> list[dict[str, Any]]:
    """The evaluations of a version after its first (the ledger ``first``; unknown: the oldest ledger), from its
    verdict ledgers, oldest first: ``[{attempt, decision, reason, champion_version, recorded_at}]``."""
    from mlops_provider.evidence import attempts

    records = attempts(ledger_dir(model_name, version))
    first = first or (records[0].get("attempt") if records else None)
    return [
        {key: r.get(key) for key in ("attempt", "decision", "reason", "champion_version", "recorded_at")}
        for r in records
        if r.get("attempt") != first
    ]


def collect(model_name: str) -> dict[str, Any]:
    """Everything the page shows, as JSON-able data (also served at ``/mlops/health.json``)."""
    from mlflow.exceptions import MlflowException

    from mlops_provider.hooks.mlflow import MlflowHook

    hook = MlflowHook()
    versions = hook.model_versions(model_name)
    try:
        aliases = hook.aliases_by_version(model_name)
    except MlflowException:
        aliases = {}
    history: list[dict[str, Any]] = []
    for mv in sorted(versions, key=lambda v: int(v.version))[-HISTORY:]:
        tags = {**_run_tags(hook, mv.run_id), **dict(mv.tags or {})}
        history.append({
            "version": str(mv.version),
            "run_id": mv.run_id,
            "created": mv.creation_timestamp,
            "aliases": aliases.get(str(mv.version), []),
            "trigger_reason": tags.get("trigger.reason"),
            "training_set": tags.get("data.rev_name"),
            "decision": tags.get(GATE_DECISION_TAG),  # the first verdict: later ones are re-evaluations
            "reason": tags.get("gate.reason"),
            "reevaluations": reevaluations(model_name, str(mv.version), tags.get("gate.ledger"))
            if tags.get(GATE_DECISION_TAG)
            else [],
            "promoted_at": tags.get("promotion.promoted_at"),
            "replaced_at": tags.get("promotion.replaced_at"),
        })  # fmt: skip
    champion = next((h for h in history if CHAMPION_ALIAS in h["aliases"]), None)
    lineage: dict[str, str] = {}
    if champion is not None:
        version_tags = hook.model_version_tags(model_name, champion["version"])
        tags = {**_run_tags(hook, champion["run_id"]), **version_tags}
        lineage = {label: tags[key] for key, label in LINEAGE if tags.get(key)}
    drift = [
        {"day": s.get("partition"), "drift_share": s.get("drift_share"), "dataset_drift": s.get("dataset_drift"),
         "threshold": s.get("threshold"), "weighted_drift": s.get("weighted_drift"),
         "weighted_threshold": s.get("weighted_threshold"), "learned_drift": s.get("learned_drift"),
         "learned_threshold": s.get("learned_threshold"), "signal": s.get("signal", "share"),
         "signal_note": s.get("signal_note"),
         "reference_version": (s.get("reference") or {}).get("model_version"), "report_url": s.get("report_url"),
         "columns": {name: {k: c.get(k) for k in ("score", "drifted", "method")}
                     for name, c in (s.get("columns") or {}).items() if isinstance(c, dict)}}
        for s in _series("drift", model_name)
    ]  # fmt: skip
    performance = [
        {"day": s.get("labelled_day"), "metric": s.get("metric"), "value": s.get("value"), "floor": s.get("floor"),
         "model_version": s.get("model_version"), "interval": s.get("interval"), "rows": s.get("labelled_rows"),
         "window_days": s.get("label_window_days", 1), "alarm": s.get("below_floor"),
         "rule": (s.get("alarm") or {}).get("rule", "point")}
        for s in _series("performance", model_name)
        if s.get("status") == "scored"
    ]  # fmt: skip
    return {
        "model_name": model_name,
        "champion": champion,
        "lineage": lineage,
        "history": history,
        "drift": drift,
        "performance": performance,
        "estimated": [
            {**s["estimated"], "model_version": s.get("model_version")}
            for s in _series("performance", model_name)
            if s.get("estimated") and s["estimated"].get("value") is not None
        ],
        "prediction_drift": [
            {
                "day": s["prediction_drift"].get("day"),
                "score": s["prediction_drift"].get("score"),
                "drifted": s["prediction_drift"].get("drifted"),
                "positive_rate": s["prediction_drift"].get("positive_rate_current"),
                "positive_rate_holdout": s["prediction_drift"].get("positive_rate_reference"),
                "noise_bound": (s["prediction_drift"].get("noise") or {}).get("bound"),
            }
            for s in _series("performance", model_name)
            if s.get("prediction_drift")
        ],  # fmt: skip
        "rebuilt_training_sets": rebuilt_training_sets(model_name),
        "held_back": held_back(model_name),
        "notifications": notification_status(model_name),
    }


def held_back(model_name: str) -> list[dict[str, Any]]:
    """Retraining alarms (and scheduled trainings) the rails held back, newest first: ``[{recorded_at, window_end,
    mode, rail, message, frees, monitoring_run}]`` (the DAG factory's training DAG of ``model_name``)."""
    from mlops_provider.operators.retraining import held_back_alarms

    keys = ("recorded_at", "window_end", "mode", "rail", "message", "frees", "monitoring_run")
    return [{k: r.get(k) for k in keys} for r in held_back_alarms(f"{model_name}__training")]


def rebuilt_training_sets(name: str) -> list[dict[str, Any]]:
    """The training sets (named ``name``, as the DAG factory names them) rebuilt after a left-out day was fixed:
    ``[{tag, rebuilt_for, partitions}]``, newest day first. Empty when the data registry does not exist yet."""
    from mlops_provider.hooks.dvc import DvcError, DvcHook
    from mlops_provider.layout import training_set_tag

    hook = DvcHook()
    if not (hook.workspace / ".git").exists():
        return []
    found = []
    try:
        for tag in hook.tags(training_set_tag(name, "*") + ".r*"):
            trailers = hook.describe_commit(tag)["trailers"]
            if "Training-Set-Rebuilt-For" in trailers:
                found.append({"tag": tag, "rebuilt_for": trailers["Training-Set-Rebuilt-For"],
                              "partitions": trailers.get("Training-Set-Partitions", "")})  # fmt: skip
    except DvcError:
        return []
    return sorted(found, key=lambda r: r["tag"], reverse=True)


#: The drift signals a record can be decided by: its value and line fields, and the name drawn.
SIGNAL_FIELDS = {
    "learned": ("learned_drift", "learned_threshold", "learned drift"),
    "weighted": ("weighted_drift", "weighted_threshold", "weighted drift"),
    "share": ("drift_share", "threshold", "drift share"),
}


def deciding_signal(point: dict[str, Any], default_line: float = 0.3) -> dict[str, Any]:
    """The signal that decided a day's drift verdict, as drawn: ``{"signal", "name", "value", "line"}``. The
    record's ``signal`` is the one that decided (the learned drift when the spec's signal is ``learned`` and
    thresholds were learned; the share when the record fell back to it); a record without the signal's value or line
    (written before they were recorded) falls back to the drift share and ``default_line``."""
    signal = point.get("signal") or "share"
    value_key, line_key, name = SIGNAL_FIELDS.get(signal, SIGNAL_FIELDS["share"])
    if point.get(value_key) is None:
        signal, (value_key, line_key, name) = "share", SIGNAL_FIELDS["share"]
    line = point.get(line_key)
    return {"signal": signal, "name": name, "value": float(point.get(value_key) or 0.0),
            "line": float(default_line if line is None else line)}  # fmt: skip


def plot_shapes(
    drift: list[dict[str, Any]],
    performance: list[dict[str, Any]],
    line: float | None = None,
    estimated: list | None = None,
    predictions: list | None = None,
) -> dict[str, Any] | None:
    """The inline SVG's shapes (the template draws them): per day the drift signal that decided the day's verdict
    (bars, capped at 1; :func:`deciding_signal`) with that signal's line across its bar, the newest day's line across
    the plot, labelled AUC per day (dots, with their interval), the AUC estimated before the labels (rings, with
    their interval), the prediction drift score (triangles, capped at 1). ``line``: the line of a record that names
    none (default 0.3). ``None`` when there is no day to draw."""
    estimated, predictions = estimated or [], predictions or []
    days = sorted({p["day"] for p in drift} | {p["day"] for p in [*performance, *estimated, *predictions] if p["day"]})
    if not days:
        return None
    width, height, pad = max(360, 28 * len(days) + 60), 220, 40
    step = (width - 2 * pad) / len(days)
    x = {day: pad + step * i for i, day in enumerate(days)}

    def y(value: float) -> float:
        return round(height - pad - value * (height - 2 * pad), 1)

    default_line = 0.3 if line is None else line
    bars, marks = [], []
    for point in drift:
        decided = deciding_signal(point, default_line)
        drawn = min(1.0, decided["value"])
        others = "" if decided["signal"] == "share" else f"; drift share {float(point.get('drift_share') or 0):.2f}"
        note = f"; {point['signal_note']}" if point.get("signal_note") else ""
        bars.append({
            "x": round(x[point["day"]] + 2, 1), "y": y(drawn), "width": round(step - 4, 1),
            "height": round(y(0) - y(drawn), 1), "color": "#e67e22" if point["dataset_drift"] else "#5dade2",
            "signal": decided["signal"], "value": decided["value"],
            "title": f"{point['day']}: {decided['name']} {decided['value']:.2f} (line {decided['line']:.2f}{others}; "
            f"reference v{point.get('reference_version')}){note}",
        })  # fmt: skip
        marks.append({"x1": round(x[point["day"]] + 1, 1), "x2": round(x[point["day"]] + step - 1, 1),
                      "y": y(min(1.0, decided["line"])), "title": f"{point['day']}: {decided['name']} line "
                      f"{decided['line']:.2f}"})  # fmt: skip
    newest = deciding_signal(max(drift, key=lambda p: str(p["day"])), default_line) if drift else None
    line_value = newest["line"] if newest else default_line
    line_name = newest["name"] if newest else "drift share"
    dots = [
        {"x": round(x[p["day"]] + step / 2, 1), "y": y(float(p["value"])),
         "title": f"{p['day']}: {p['metric']} {float(p['value']):.3f} on labels" + _interval_text(p)}
        for p in performance
    ]  # fmt: skip
    whiskers = [
        {"x": round(x[p["day"]] + step / 2, 1), "y1": y(float(p["interval"]["upper"])),
         "y2": y(float(p["interval"]["lower"])), "title": f"{p['day']}: {p['metric']}" + _interval_text(p)}
        for p in performance
        if p.get("interval")
    ]  # fmt: skip
    rings = [
        {"x": round(x[p["day"]] + step / 2, 1), "y": y(float(p["value"])),
         "title": f"{p['day']}: {p['metric']} {float(p['value']):.3f} estimated before labels" + _estimate_text(p)}
        for p in estimated
    ]  # fmt: skip
    ring_whiskers = [
        {"x": round(x[p["day"]] + step / 2 + 3, 1), "y1": y(float(p["high"])), "y2": y(float(p["low"])),
         "title": f"{p['day']}: {p['metric']} estimated" + _estimate_text(p)}
        for p in estimated
        if p.get("low") is not None and p.get("high") is not None
    ]  # fmt: skip
    triangles = []
    for point in predictions:
        cx, cy = x[point["day"]] + step / 2, y(min(1.0, float(point["score"] or 0.0)))
        triangles.append({
            "points": f"{cx:.1f},{cy - 4:.1f} {cx - 4:.1f},{cy + 3:.1f} {cx + 4:.1f},{cy + 3:.1f}",
            "color": "#c0392b" if point["drifted"] else "#7f8c8d",
            "title": f"{point['day']}: prediction drift {float(point['score'] or 0):.3f}, predicted positive rate "
            f"{float(point['positive_rate'] or 0):.3f} (holdout {float(point['positive_rate_holdout'] or 0):.3f})"
            + (f"; sampling noise reaches {float(point['noise_bound']):.3f} at this day's rows"
               if point.get("noise_bound") is not None else ""),
        })  # fmt: skip
    every = max(1, -(-len(days) // 8))  # at most ~8 labels
    labels = [{"x": round(x[day], 1), "text": day[5:]} for i, day in enumerate(days) if i % every == 0]
    return {
        "width": width, "height": height, "left": pad, "right": width - pad, "zero": y(0), "line": line_value,
        "line_name": line_name, "line_y": y(min(1.0, line_value)), "bars": bars, "marks": marks, "dots": dots,
        "whiskers": whiskers, "rings": rings, "ring_whiskers": ring_whiskers, "triangles": triangles,
        "labels": labels,
    }  # fmt: skip


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


def realised_metric(performance: list[dict[str, Any]]) -> Any:
    """The realised metric per labelled day with its interval and the floor, as SVG (None before the first score)."""
    from mlops_provider.web import plots

    if not performance:
        return None
    return plots.svg(plots.metric_intervals(performance))


def drift_heatmap(drift: list[dict[str, Any]]) -> Any:
    """The per-column drift heat map (day x column) as SVG, or None before the first check with columns."""
    from mlops_provider.web import plots

    days = [str(p["day"]) for p in drift if p.get("columns")]
    if not days:
        return None
    columns = sorted({name for p in drift for name in (p.get("columns") or {})})
    cells = {(str(p["day"]), name): cell for p in drift for name, cell in (p.get("columns") or {}).items()}
    return plots.svg(plots.drift_heatmap(days, columns, cells))


def render(data: dict[str, Any], drift_line: float | None = None) -> str:
    """The page."""
    return html.render(
        "health.html",
        title=f"Model health: {data['model_name']}",
        champion=data["champion"],
        lineage=data["lineage"],
        plot=plot_shapes(
            data["drift"], data["performance"], drift_line, data.get("estimated"), data.get("prediction_drift")
        ),
        rebuilt=data.get("rebuilt_training_sets") or [],
        heatmap=drift_heatmap(data["drift"]),
        realised=realised_metric(data["performance"]),
        history=data["history"],
        held_back=data.get("held_back") or [],
        notifications=data.get("notifications") or [],
    )


def registered_models() -> list[str]:
    """Names of the registered models, sorted."""
    from mlops_provider.hooks.mlflow import MlflowHook

    return MlflowHook().registered_model_names()
