"""Model health: the champion with its lineage, the champion history, drift/performance over time, retraining
alarms a rail held back (with the rail's reason), and on-call mail (unsent mail waiting in the outbox first, with
its error).

``collect`` reads the registry (MLflow) and the monitoring summaries under the reports root
(:mod:`mlops_provider.utils.records`); ``render`` turns that into one self-contained HTML page (inline SVG drawn
by :mod:`mlops_provider.render.plots`, no JavaScript, no external assets: the page works on a closed network and
inside the Airflow UI's plugin frame).
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from mlops_provider.layout import (
    CHAMPION_ALIAS,
    DATA_MD5_TAG,
    DATA_REV_TAG,
    GATE_DECISION_TAG,
    GATE_REEVALUATIONS_TAG,
)
from mlops_provider.notifications.mail import notification_status
from mlops_provider.render import html
from mlops_provider.utils.records import folder as record_folder
from mlops_provider.utils.records import ledger_dir

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
    """Monitoring summaries (``drift`` or ``performance``: a record folder, ``<model>/<day>/``) of ``model_name``,
    by day: each day's record of decision (its first check), with ``rechecks`` counting the later checks kept
    beside it."""
    from mlops_provider.utils.evidence import attempts

    points = []
    for folder in sorted((p for p in record_folder(kind).glob("*/*") if p.is_dir()), key=str):
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
    from mlops_provider.utils.evidence import attempts

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
        if s.get("status") != "too_few_served_rows"  # not judged: not drawn as a day without drift
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
        "live": live_section(model_name),
        "captures": captured_days(model_name),
    }


def live_section(model_name: str, prometheus_url: str | None = None) -> dict[str, Any] | None:
    """The endpoint's live numbers per version (None: the model has no endpoint): read from the deployment record
    and the backends' ``/metrics``, or from Prometheus when ``prometheus_url`` (default ``$MLOPS_PROMETHEUS_URL``)
    is set (:mod:`mlops_provider.runtime.live_metrics`)."""
    import json
    import os

    from mlops_provider.runtime.deployment import Endpoint, serving_records
    from mlops_provider.runtime.live_metrics import PROMETHEUS_ENV, live

    path = serving_records(model_name) / "deployment.json"
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    history = Endpoint(model_name, int(record.get("port") or 0)).state_dir / "scrapes.json"
    return live(record, history, prometheus_url or os.environ.get(PROMETHEUS_ENV) or None)


def live_rows(data: dict[str, Any], window: str) -> list[dict[str, Any]]:
    """The rows of :func:`mlops_provider.render.plots.live_traffic` for one window of :func:`live_section`."""
    numbers = data["windows"].get(window, {})
    total = sum(n.get("rate") or 0.0 for n in numbers.values())
    rows = []
    for version in data["versions"]:
        n = numbers.get(version, {})
        rate = n.get("rate")
        rows.append({"version": version, "weight": (data.get("weights") or {}).get(version),
                     "share": None if rate is None or not total else 100 * rate / total, "rate": rate,
                     "error_rate": n.get("error_rate"), "p95_ms": n.get("p95_ms"),
                     "bad_input_rate": n.get("bad_input_rate"), "requests": n.get("requests"),
                     "since_start": n.get("since_start", False)})  # fmt: skip
    return rows


def render_live(data: dict[str, Any] | None) -> Markup:
    """The live section (an HTML fragment of the health page, escaped by its template)."""
    from mlops_provider.render import plots

    if not data:
        return Markup("")
    windows = {w: live_rows(data, w) for w in data["windows"]}
    figures = [plots.svg(plots.live_traffic(w, rows)) for w, rows in windows.items()]
    return Markup(html.render("live.html", live=data, windows=windows, figures=figures))


CAPTURE_DAYS = 7  # newest captured days linked


def captured_days(model_name: str) -> list[dict[str, Any]]:
    """The newest captured days of the model's live endpoint (file listing only; the linked page counts the rows):
    ``[{"day", "files", "url"}]``, newest first."""
    from mlops_provider.links.extra_links import capture_url
    from mlops_provider.runtime.capture import capture_days, capture_files

    return [
        {"day": day, "files": len(capture_files(model_name, day)), "url": capture_url(model_name, day)}
        for day in capture_days(model_name)[:CAPTURE_DAYS]
    ]


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


def heatmap_cells(
    drift: list[dict[str, Any]],
) -> tuple[list[str], list[str], dict[tuple[str, str], dict[str, Any]]] | None:
    """The per-column drift heat map's data from the drift series: ``(days, columns, {(day, column): cell})``, the
    arguments of :func:`mlops_provider.render.plots.drift_heatmap`; None before the first check with columns."""
    days = [str(p["day"]) for p in drift if p.get("columns")]
    if not days:
        return None
    columns = sorted({name for p in drift for name in (p.get("columns") or {})})
    cells = {(str(p["day"]), name): cell for p in drift for name, cell in (p.get("columns") or {}).items()}
    return days, columns, cells


def figures(data: dict[str, Any], drift_line: float | None) -> dict[str, Any]:
    """The page's SVG figures, drawn by :mod:`mlops_provider.render.plots` (None where there is nothing to draw):
    ``plot`` (drift share, labels, estimates and prediction drift per day), ``heatmap`` (per-column drift) and
    ``realised`` (the realised metric with its interval)."""
    from mlops_provider.render import plots

    by_day = plots.monitoring_by_day(
        data["drift"], data["performance"], drift_line, data.get("estimated"), data.get("prediction_drift")
    )
    cells = heatmap_cells(data["drift"])
    return {
        "plot": plots.svg(by_day) if by_day else None,
        "heatmap": plots.svg(plots.drift_heatmap(*cells)) if cells else None,
        "realised": plots.svg(plots.metric_intervals(data["performance"])) if data["performance"] else None,
    }


def render(data: dict[str, Any], drift_line: float | None = None) -> str:
    """The page."""
    return html.render(
        "health.html",
        title=f"Model health: {data['model_name']}",
        champion=data["champion"],
        lineage=data["lineage"],
        rebuilt=data.get("rebuilt_training_sets") or [],
        **figures(data, drift_line),
        history=data["history"],
        held_back=data.get("held_back") or [],
        notifications=data.get("notifications") or [],
        live=render_live(data.get("live")),
        captures=data.get("captures") or [],
    )


def registered_models() -> list[str]:
    """Names of the registered models, sorted."""
    from mlops_provider.hooks.mlflow import MlflowHook

    return MlflowHook().registered_model_names()
