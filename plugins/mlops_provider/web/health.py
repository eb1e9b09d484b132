"""Model health: the champion with its lineage, the champion history, and drift/performance over time.

``collect`` reads the registry (MLflow) and the monitoring summaries under ``$MLOPS_HOME/reports``; ``render``
turns that into one self-contained HTML page (inline SVG plot, no JavaScript, no external assets: the page
works on a closed network and inside the Airflow UI's plugin frame).
"""

from __future__ import annotations

from typing import Any

from mlops_provider.layout import CHAMPION_ALIAS, DATA_MD5_TAG, DATA_REV_TAG, GATE_DECISION_TAG
from mlops_provider.paths import reports_dir
from mlops_provider.web.html import esc, fields, page

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
    for folder in sorted(p for p in (reports_dir() / kind).glob("*/*") if p.is_dir()):
        records = attempts(folder)
        if not records:
            continue
        summary = {**records[0], "rechecks": len(records) - 1}
        owner = summary.get("model_name") or (summary.get("reference") or {}).get("model_name")
        if owner not in (None, model_name):
            continue
        points.append(summary)
    return sorted(points, key=lambda s: str(s.get("partition")))


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
            "decision": tags.get(GATE_DECISION_TAG),
            "reason": tags.get("gate.reason"),
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
         "weighted_drift": s.get("weighted_drift"), "signal": s.get("signal", "share"),
         "reference_version": (s.get("reference") or {}).get("model_version"), "report_url": s.get("report_url")}
        for s in _series("drift", model_name)
    ]  # fmt: skip
    performance = [
        {"day": s.get("labelled_day"), "metric": s.get("metric"), "value": s.get("value"), "floor": s.get("floor"),
         "model_version": s.get("model_version")}
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
            }
            for s in _series("performance", model_name)
            if s.get("prediction_drift")
        ],  # fmt: skip
        "rebuilt_training_sets": rebuilt_training_sets(model_name),
    }


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


def _plot(
    drift: list[dict[str, Any]],
    performance: list[dict[str, Any]],
    line: float,
    estimated: list | None = None,
    predictions: list | None = None,
) -> str:
    """An inline SVG: drift share per day (bars), the retraining line, labelled AUC per day (dots), the AUC
    estimated before the labels (rings), the prediction drift score (triangles, capped at 1)."""
    estimated, predictions = estimated or [], predictions or []
    days = sorted({p["day"] for p in drift} | {p["day"] for p in [*performance, *estimated, *predictions] if p["day"]})
    if not days:
        return "<p>No drift checks yet.</p>"
    width, height, pad = max(360, 28 * len(days) + 60), 220, 40
    step = (width - 2 * pad) / len(days)
    x = {day: pad + step * i for i, day in enumerate(days)}

    def y(value: float) -> float:
        return height - pad - value * (height - 2 * pad)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             'aria-label="drift share per day">']  # fmt: skip
    parts.append(f'<line x1="{pad}" y1="{y(0):.1f}" x2="{width - pad}" y2="{y(0):.1f}" stroke="#888"/>')
    parts.append(f'<line x1="{pad}" y1="{y(line):.1f}" x2="{width - pad}" y2="{y(line):.1f}" stroke="#c0392b" '
                 f'stroke-dasharray="4 3"/><text x="{width - pad + 2}" y="{y(line) + 4:.1f}" font-size="10" '
                 f'fill="#c0392b">{line}</text>')  # fmt: skip
    for point in drift:
        share = float(point["drift_share"] or 0.0)
        color = "#e67e22" if point["dataset_drift"] else "#5dade2"
        parts.append(
            f'<rect class="drift" x="{x[point["day"]] + 2:.1f}" y="{y(share):.1f}" width="{step - 4:.1f}" '
            f'height="{y(0) - y(share):.1f}" fill="{color}"><title>{esc(point["day"])}: drift share '
            f"{share:.2f} (reference v{esc(point['reference_version'])})</title></rect>"
        )
    for point in performance:
        value = float(point["value"])
        parts.append(
            f'<circle class="auc" cx="{x[point["day"]] + step / 2:.1f}" cy="{y(value):.1f}" r="3.5" fill="#27ae60">'
            f"<title>{esc(point['day'])}: {esc(point['metric'])} {value:.3f} on labels"
            "</title></circle>"
        )
    for point in estimated:
        value = float(point["value"])
        parts.append(
            f'<circle class="estimated" cx="{x[point["day"]] + step / 2:.1f}" cy="{y(value):.1f}" r="4" fill="none" '
            f'stroke="#8e44ad"><title>{esc(point["day"])}: {esc(point["metric"])} {value:.3f} estimated before '
            "labels</title></circle>"
        )
    for point in predictions:
        score = min(1.0, float(point["score"] or 0.0))
        cx, cy = x[point["day"]] + step / 2, y(score)
        color = "#c0392b" if point["drifted"] else "#7f8c8d"
        parts.append(
            f'<polygon class="prediction-drift" points="{cx:.1f},{cy - 4:.1f} {cx - 4:.1f},{cy + 3:.1f} '
            f'{cx + 4:.1f},{cy + 3:.1f}" fill="{color}"><title>{esc(point["day"])}: prediction drift '
            f"{float(point['score'] or 0):.3f}, predicted positive rate {float(point['positive_rate'] or 0):.3f} "
            f"(holdout {float(point['positive_rate_holdout'] or 0):.3f})</title></polygon>"
        )
    for i, day in enumerate(days):
        if i % max(1, -(-len(days) // 8)) == 0:  # at most ~8 labels
            parts.append(f'<text x="{x[day]:.1f}" y="{height - pad + 14}" font-size="10">{day[5:]}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _rebuilt(sets: list[dict[str, Any]]) -> str:
    if not sets:
        return ""
    rows = "".join(
        f"<tr><td>{esc(s['tag'])}</td><td>{esc(s['rebuilt_for'])}</td><td>{esc(s['partitions'])}</td></tr>"
        for s in sets
    )
    return (
        "<h2>Training sets rebuilt with a fixed day</h2><p>A day left out (quarantined or missing) was fixed and "
        "re-ingested; the later sets built without it got a new version with it (the old version stays).</p>"
        f'<table class="rebuilt"><tr><th>new version</th><th>fixed day</th><th>partitions</th></tr>{rows}</table>'
    )


def render(data: dict[str, Any], drift_line: float = 0.3) -> str:
    """The page."""
    champion = data["champion"]
    head = (
        f"<p>Champion: <b>v{esc(champion['version'])}</b></p>{fields(data['lineage'])}"
        if champion
        else "<p>No champion yet: the first training is triggered by <code>drift_monitoring</code>.</p>"
    )
    history = "".join(
        f"<tr><td>v{esc(h['version'])}</td><td>{esc(', '.join(h['aliases']))}</td>"
        f"<td>{esc(h['trigger_reason'])}</td><td>{esc(h['training_set'])}</td>"
        f"<td>{esc(h['decision'] or 'pending')}</td><td>{esc(h['promoted_at'])}</td>"
        f"<td>{esc(h['reason'])[:160]}</td></tr>"
        for h in reversed(data["history"])
    )
    body = f"""<h2>Champion and lineage</h2>
{head}
<h2>Drift share per day and ROC AUC on late labels</h2>
<p>Bars: share of drifted columns vs the champion's training set (orange: over the retraining line).
Dots: the champion's ROC AUC on the labels that arrived for that day; rings: the ROC AUC estimated from its
probabilities on the day itself, before the labels; triangles: how far the champion's predictions on the day
moved from its predictions on its holdout (red: drifted).</p>
{_plot(data["drift"], data["performance"], drift_line, data.get("estimated"), data.get("prediction_drift"))}
{_rebuilt(data.get("rebuilt_training_sets") or [])}
<h2>Champion history</h2>
<table class="history"><tr><th>version</th><th>aliases</th><th>trained because</th><th>training set</th>
<th>gate</th><th>promoted at</th><th>gate reason</th></tr>{history}</table>"""
    return page(f"Model health: {data['model_name']}", body)


def registered_models() -> list[str]:
    """Names of the registered models, sorted."""
    from mlops_provider.hooks.mlflow import MlflowHook

    return MlflowHook().registered_model_names()
