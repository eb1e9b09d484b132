"""Pages for what the operators produced: an MLflow run, a registered model version, a DVC data version.

The operators' extra links point here (``/mlops/mlflow/runs/<id>``, ``/mlops/mlflow/models/<name>/versions/<v>``,
``/mlops/dvc/versions/<rev>``), so a link resolves in the running Airflow UI in every mode: the embedded mode
runs no MLflow server. When an MLflow UI is known (a tracking server, or ``MLFLOW_UI_URL``) the page links to it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import quote

from mlops_provider.exceptions import RecordNotFound
from mlops_provider.links.extra_links import mlflow_run_url, model_version_url
from mlops_provider.ml.curves import CURVES_ARTIFACT
from mlops_provider.ml.tuning import STUDY_ARTIFACT
from mlops_provider.render.html import link, render


def _time(millis: int | None) -> str:
    if not millis:
        return ""
    return dt.datetime.fromtimestamp(millis / 1000, tz=dt.timezone.utc).isoformat(timespec="seconds")


def _mlflow_ui(tracking_uri: str) -> str | None:
    import os

    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    configured = os.environ.get("MLFLOW_UI_URL")
    return configured.rstrip("/") if configured else None


def mlflow_run(run_id: str) -> dict[str, Any]:
    """The run's info, parameters, metrics, tags, top-level artifacts and registered versions."""
    from mlflow.exceptions import MlflowException

    from mlops_provider.hooks.mlflow import MlflowHook

    hook = MlflowHook()
    try:
        run, experiment, artifacts, registered = hook.run_record(run_id)
    except MlflowException as error:
        raise RecordNotFound(f"no MLflow run {run_id!r}: {error.message}") from error
    versions = [{"name": mv.name, "version": str(mv.version)} for mv in registered]
    ui = _mlflow_ui(hook.tracking_uri)
    return {
        "run_id": run_id,
        "run_name": run.info.run_name,
        "experiment": experiment.name,
        "status": run.info.status,
        "start": _time(run.info.start_time),
        "end": _time(run.info.end_time),
        "params": dict(sorted(run.data.params.items())),
        "metrics": dict(sorted(run.data.metrics.items())),
        "tags": {k: v for k, v in sorted(run.data.tags.items()) if not k.startswith("mlflow.")},
        "artifacts": artifacts,
        "versions": versions,
        "tracking_uri": hook.tracking_uri,
        "mlflow_ui": f"{ui}/#/experiments/{run.info.experiment_id}/runs/{run_id}" if ui else None,
        "curves": hook.load_run_dict(run_id, CURVES_ARTIFACT),
        "importance": hook.load_run_dict(run_id, "feature_importance.json"),
        "study": hook.load_run_dict(run_id, STUDY_ARTIFACT),
    }


def model_version(name: str, version: str) -> dict[str, Any]:
    """The version's status, source run, aliases and tags."""
    from mlflow.exceptions import MlflowException

    from mlops_provider.hooks.mlflow import MlflowHook

    hook = MlflowHook()
    try:
        mv = hook.model_version(name, version)
        aliases = hook.aliases_by_version(name)
    except MlflowException as error:
        raise RecordNotFound(f"no version {version!r} of model {name!r}: {error.message}") from error
    ui = _mlflow_ui(hook.tracking_uri)
    return {
        "name": name,
        "version": str(mv.version),
        "status": mv.status,
        "created": _time(mv.creation_timestamp),
        "run_id": mv.run_id,
        "source": mv.source,
        "aliases": aliases.get(str(mv.version), []),
        "description": mv.description or "",
        "tags": dict(sorted((mv.tags or {}).items())),
        "mlflow_ui": f"{ui}/#/models/{name}/versions/{mv.version}" if ui else None,
    }


def dvc_version(rev: str) -> dict[str, Any]:
    """The data registry commit ``rev``: message, trailers (the Airflow run), tags, and each versioned file."""
    from mlops_provider.hooks.dvc import DvcHook, RevisionNotFound

    try:
        return DvcHook().describe_commit(rev)
    except RevisionNotFound as error:  # the hook's message names the workspace folder: not for the browser
        raise RecordNotFound(f"data version {rev!r} does not exist in the data registry") from error


def render_run(data: dict[str, Any]) -> str:
    """The MLflow run page."""
    return render(
        "run.html",
        title=f"MLflow run {data['run_name'] or data['run_id']}",
        mlflow_ui=data["mlflow_ui"],
        run_id=data["run_id"],
        run_name=data["run_name"],
        experiment=data["experiment"],
        status=data["status"],
        start=data["start"],
        end=data["end"],
        versions=[link(model_version_url(v["name"], v["version"]), f"{v['name']} v{v['version']}")
                  for v in data["versions"]],
        tracking_uri=data["tracking_uri"],
        metrics={k: f"{v:.6g}" for k, v in data["metrics"].items()},
        params=data["params"],
        tags=data["tags"],
        artifacts=data["artifacts"],
        plots=run_plots(data.get("curves"), data.get("importance")),
        study_plots=study_plots(data.get("study")),
    )  # fmt: skip


def run_plots(curves: dict[str, Any] | None, importance: dict[str, Any] | None) -> list[Any]:
    """The run page's plots: the holdout curves the provider logged, the entrypoint's feature importances."""
    from mlops_provider.render import plots

    figures = []
    if curves:
        figures += [plots.roc(curves), plots.precision_recall(curves), plots.calibration(curves),
                    plots.confusion(curves)]  # fmt: skip
    if importance:
        values = {str(k): float(v) for k, v in importance.items() if isinstance(v, int | float)}
        if values:
            figures.append(plots.bars("Feature importance", "importance", list(values), list(values.values())))
    return [plots.svg(fig) for fig in figures]


def study_plots(study: dict[str, Any] | None) -> list[Any]:
    """The run page's tuning plots (a run that tuned: ``tuning/study.json``): trials over time with the best value so
    far, Optuna's parameter importances."""
    from mlops_provider.render import plots

    return [plots.svg(fig) for _, fig in plots.study_figures(study)] if study else []


def render_model_version(data: dict[str, Any]) -> str:
    """The model version page."""
    return render(
        "model_version.html",
        title=f"Model {data['name']} v{data['version']}",
        mlflow_ui=data["mlflow_ui"],
        name=data["name"],
        version=data["version"],
        aliases=data["aliases"],
        status=data["status"],
        created=data["created"],
        source_run=link(mlflow_run_url(data["run_id"]), data["run_id"]) if data["run_id"] else None,
        source=data["source"],
        description=data["description"],
        tags=data["tags"],
    )


def render_dvc_version(data: dict[str, Any]) -> str:
    """The data version page."""
    trailers = data["trailers"]
    made_by = None
    if trailers.get("Airflow-Dag-Id") and trailers.get("Airflow-Run-Id"):
        dag_id, run_id = trailers["Airflow-Dag-Id"], trailers["Airflow-Run-Id"]
        made_by = link(f"/dags/{quote(dag_id)}/runs/{quote(run_id)}", f"{dag_id} / {run_id}")
    return render(
        "dvc_version.html",
        title=f"Data version {data['tags'][0] if data['tags'] else data['rev'][:10]}",
        rev=data["rev"],
        tags=data["tags"],
        date=data["date"],
        subject=data["subject"],
        made_by=made_by,
        workspace=data["workspace"],
        remote=data["remote"],
        files=data["files"],
        trailers=trailers,
        provenance_json=json.dumps({"rev": data["rev"], "files": data["files"]}, indent=2),
    )


def capture_day(name: str, day: str) -> dict[str, Any]:
    """What model ``name``'s live endpoint captured on ``day``: the capture files, rows per version and per file
    (:func:`mlops_provider.runtime.capture.describe_day`)."""
    from mlops_provider.runtime.capture import describe_day

    try:
        dt.date.fromisoformat(day)
    except ValueError as error:
        raise RecordNotFound(f"{day!r} is not a day (YYYY-MM-DD)") from error
    data = describe_day(name, day)
    if not data["files"]:
        raise RecordNotFound(f"{name!r} has no captured rows on {day} (capture off, nothing served, or removed by "
                             "serving.capture.retention_days)")  # fmt: skip
    return data


def render_capture_day(data: dict[str, Any]) -> str:
    """The captured-traffic page of a day."""
    from mlops_provider.links.extra_links import model_version_url

    return render(
        "capture.html",
        title=f"Captured traffic: {data['model_name']} on {data['day']}",
        summary={
            "model": data["model_name"], "day (UTC)": data["day"], "folder": data["folder"], "rows": data["rows"],
            "files": len(data["files"]),
        },
        versions=[{"version": link(model_version_url(data["model_name"], v), f"v{v}"), "rows": rows,
                   "share": f"{rows / data['rows']:.1%}" if data["rows"] else ""}
                  for v, rows in data["versions"].items()],
        files=data["files"],
        lineage_hint=f"mlops lineage {data['model_name']} <request-id> --day {data['day']}",
    )  # fmt: skip


def ledger(name: str, version: str, attempt: str) -> dict[str, Any]:
    """A verdict ledger of ``name`` v``version`` (``version`` may carry its ``v``), by attempt."""
    from mlops_provider.utils.records import ledger_dir
    from mlops_provider.utils.storage import location

    missing = RecordNotFound(f"no verdict ledger {attempt!r} of model {name!r} version {version!r}")
    if not attempt or "/" in attempt or "\\" in attempt or attempt.startswith(".") or "\x00" in attempt:
        raise missing  # one file name of the ledger folder, nothing else
    path = ledger_dir(name, version.removeprefix("v")) / f"{attempt}.json"
    try:
        data = json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict):
        raise missing
    return {**data, "path": location(path)}


def ledger_plots(data: dict[str, Any]) -> list[Any]:
    """Challenger vs champion per metric (overall) and per segment (the gate's segment metric)."""
    from mlops_provider.render import plots

    challenger = (data.get("challenger_metrics") or {}).get("overall", {})
    champion = ((data.get("champion_metrics") or {}).get("overall")) or {}
    bounded = [m for m, v in challenger.items() if isinstance(v, int | float) and 0.0 <= v <= 1.0]
    figures = [plots.paired_bars("Overall metrics", "metrics", [(m, champion.get(m), challenger[m]) for m in bounded])]
    segments = [c for c in data.get("checks", []) if str(c.get("check", "")).startswith("segment:")]
    if segments:
        metric = segments[0]["metric"]
        rows = [(c["check"].split(":", 1)[1], c.get("champion"), c.get("challenger")) for c in segments]
        figures.append(plots.paired_bars(f"{metric} per segment", "segments", rows))
    return [plots.svg(fig) for fig in figures]


def render_ledger(data: dict[str, Any]) -> str:
    """The verdict ledger page."""
    from mlops_provider.links.extra_links import report_url

    evaluation = {"path": None, "rev": None, "rows": None, **(data.get("evaluation_data") or {})}
    data = {"shadow": None, "human_approvals": [], "checks": [], "champion_version": None, **data,
            "evaluation_data": evaluation}  # fmt: skip
    return render(
        "ledger.html",
        title=f"Verdict ledger: {data.get('model_name')} v{data.get('challenger_version')}",
        data=data,
        plots=ledger_plots(data),
        json_link=link(report_url(data["path"]), "the ledger as JSON"),
    )
